//! Dependency injection: the [`Container`] trait and its default implementation, [`Services`].
//!
//! Instance jobs (`#[job] impl EmailService { .. }`) and `#[inject] x: Arc<T>` parameters are
//! resolved from the server's container each time a job runs. A service is either shared (one
//! `Arc<T>` for every job) or made by a factory once per job execution (a per-job scope, like
//! Hangfire's `JobActivator.BeginScope`): within one execution every request for `T` gets the
//! same instance.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A resolved service, type-erased.
pub type AnyService = Arc<dyn Any + Send + Sync>;

/// The key of a service: its type id and, for messages, its type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// `TypeId::of::<T>()`.
    pub type_id: TypeId,
    /// `std::any::type_name::<T>()`.
    pub type_name: &'static str,
}

impl ServiceKey {
    /// The key of `T`.
    pub fn of<T: ?Sized + 'static>() -> ServiceKey {
        ServiceKey {
            type_id: TypeId::of::<T>(),
            type_name: std::any::type_name::<T>(),
        }
    }
}

/// Resolves services by type. Object-safe, so it can wrap any DI framework.
///
/// `resolve` must return an `Arc<T>` (as `Arc<dyn Any + Send + Sync>`) for the `TypeId` of `T`.
pub trait Container: Send + Sync + 'static {
    /// Returns the service registered for `key`, or `None`.
    fn resolve(&self, key: &ServiceKey) -> Option<AnyService>;

    /// Whether `key` can be resolved, without building it. Used at server build to report
    /// every job whose services are missing before any job runs.
    fn provides(&self, key: &ServiceKey) -> bool;
}

enum Provider {
    Shared(AnyService),
    Factory(Arc<dyn Fn() -> AnyService + Send + Sync>),
}

/// The default [`Container`]: a map from type to a shared instance or a per-job factory.
///
/// ```
/// use std::sync::Arc;
/// use jobs::Services;
///
/// struct Mailer;
/// struct RequestScope { id: u64 }
///
/// let services = Services::new()
///     .with(Arc::new(Mailer))
///     .with_factory(|| RequestScope { id: 7 });
/// # let _ = services;
/// ```
#[derive(Default, Clone)]
pub struct Services {
    providers: HashMap<TypeId, Arc<Provider>>,
}

impl Services {
    /// An empty container.
    pub fn new() -> Self {
        Services::default()
    }

    /// Registers a shared instance: every job gets this `Arc<T>`.
    #[must_use]
    pub fn with<T: Send + Sync + 'static>(mut self, service: Arc<T>) -> Self {
        self.providers
            .insert(TypeId::of::<T>(), Arc::new(Provider::Shared(service)));
        self
    }

    /// Registers a factory called once per job execution that needs `T`.
    #[must_use]
    pub fn with_factory<T, F>(mut self, factory: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Fn() -> T + Send + Sync + 'static,
    {
        let make: Arc<dyn Fn() -> AnyService + Send + Sync> =
            Arc::new(move || Arc::new(factory()) as AnyService);
        self.providers
            .insert(TypeId::of::<T>(), Arc::new(Provider::Factory(make)));
        self
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("services", &self.providers.len())
            .finish()
    }
}

/// A shared container is a container.
impl<C: Container + ?Sized> Container for Arc<C> {
    fn resolve(&self, key: &ServiceKey) -> Option<AnyService> {
        (**self).resolve(key)
    }

    fn provides(&self, key: &ServiceKey) -> bool {
        (**self).provides(key)
    }
}

impl Container for Services {
    fn resolve(&self, key: &ServiceKey) -> Option<AnyService> {
        match self.providers.get(&key.type_id)?.as_ref() {
            Provider::Shared(service) => Some(service.clone()),
            Provider::Factory(make) => Some(make()),
        }
    }

    fn provides(&self, key: &ServiceKey) -> bool {
        self.providers.contains_key(&key.type_id)
    }
}

/// The services resolved during one job execution: each type is resolved at most once.
pub(crate) struct Scope {
    container: Arc<dyn Container>,
    resolved: std::sync::Mutex<Vec<(TypeId, AnyService)>>,
}

impl Scope {
    pub(crate) fn new(container: Arc<dyn Container>) -> Self {
        Scope {
            container,
            resolved: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn resolve<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        let key = ServiceKey::of::<T>();
        let mut resolved = self
            .resolved
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let service = match resolved.iter().find(|(id, _)| *id == key.type_id) {
            Some((_, service)) => service.clone(),
            None => {
                let service = self.container.resolve(&key)?;
                resolved.push((key.type_id, service.clone()));
                service
            }
        };
        service.downcast::<T>().ok()
    }
}
