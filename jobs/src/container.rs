//! Dependency injection: the [`Container`] trait and its default implementation, [`Services`].
//!
//! Instance jobs (`#[job] impl EmailService { .. }`) and `#[inject] x: Arc<T>` parameters are
//! resolved from the server's container each time a job runs. A service is either shared (one
//! `Arc<T>` for every job) or made by a factory once per job execution (a per-job scope, like
//! Hangfire's `JobActivator.BeginScope`): within one execution every request for `T` gets the
//! same instance.
//!
//! `T` may be a trait object: a job takes `#[inject] mailer: Arc<dyn Mailer>` and the
//! application registers its implementation under `dyn Mailer`
//! (`Services::new().with::<dyn Mailer>(Arc::new(Smtp))`). A service is found by its exact type,
//! so `dyn Mailer` and `dyn Mailer + Send + Sync` are two services: register the one the job
//! injects. A trait object can only be injected when it is `Send + Sync`, either through the
//! trait's supertraits (`trait Mailer: Send + Sync`) or spelled out in the parameter's type
//! (`Arc<dyn Mailer + Send + Sync>`).
//!
//! ```
//! use std::sync::Arc;
//! use jobs::prelude::*;
//!
//! trait Mailer: Send + Sync {
//!     fn send(&self, to: &str) -> anyhow::Result<()>;
//! }
//!
//! struct Smtp;
//!
//! impl Mailer for Smtp {
//!     fn send(&self, to: &str) -> anyhow::Result<()> {
//!         println!("mailing {to}");
//!         Ok(())
//!     }
//! }
//!
//! #[job]
//! async fn welcome(to: String, #[inject] mailer: Arc<dyn Mailer>) -> anyhow::Result<()> {
//!     mailer.send(&to)
//! }
//!
//! let services = Services::new().with::<dyn Mailer>(Arc::new(Smtp));
//! # let _ = services;
//! ```

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A resolved service, type-erased: the `Arc<T>` of the service's [`ServiceKey`], where `T` is a
/// sized type or a trait object (`dyn Mailer`).
///
/// A [`Container`] makes one with [`AnyService::new`]; the server gets the `Arc<T>` back with
/// [`AnyService::downcast`].
#[derive(Clone)]
pub struct AnyService {
    /// Holds an `Arc<T>`: an `Arc<dyn Trait>` cannot be turned into an `Arc<dyn Any>` itself.
    service: Arc<dyn Any + Send + Sync>,
    type_name: &'static str,
}

impl AnyService {
    /// Erases `service`, registered or made for the type `T`.
    pub fn new<T: ?Sized + Send + Sync + 'static>(service: Arc<T>) -> AnyService {
        AnyService {
            service: Arc::new(service),
            type_name: std::any::type_name::<T>(),
        }
    }

    /// The service as an `Arc<T>`, or `None` if it was made for another type than `T`.
    pub fn downcast<T: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.service.downcast_ref::<Arc<T>>().cloned()
    }

    /// The name of the type the service was made for.
    pub fn type_name(&self) -> &'static str {
        self.type_name
    }
}

impl fmt::Debug for AnyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AnyService").field(&self.type_name).finish()
    }
}

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
/// For the key of `T` (a sized type or a trait object), `resolve` must return the service's
/// `Arc<T>` as [`AnyService::new::<T>`](AnyService::new).
pub trait Container: Send + Sync + 'static {
    /// Returns the service registered for `key`, or `None`.
    fn resolve(&self, key: &ServiceKey) -> Option<AnyService>;

    /// Whether `key` can be resolved, without building it. Used at server build to report
    /// every job whose services are missing before any job runs.
    fn provides(&self, key: &ServiceKey) -> bool;
}

enum Provider {
    Shared(AnyService),
    Factory(Box<dyn Fn() -> AnyService + Send + Sync>),
}

/// The default [`Container`]: a map from type to a shared instance or a per-job factory. A type
/// may be a trait object (`dyn Mailer`), registered with its implementation as an
/// `Arc<dyn Mailer>`.
///
/// ```
/// use std::sync::Arc;
/// use jobs::Services;
///
/// struct Mailer;
/// struct RequestScope { id: u64 }
/// trait Clock: Send + Sync {}
/// struct SystemClock;
/// impl Clock for SystemClock {}
/// trait Transaction: Send + Sync {}
/// struct InMemoryTransaction;
/// impl Transaction for InMemoryTransaction {}
///
/// let services = Services::new()
///     .with(Arc::new(Mailer))
///     .with_factory(|| RequestScope { id: 7 })
///     .with::<dyn Clock>(Arc::new(SystemClock))
///     .with_arc_factory(|| Arc::new(InMemoryTransaction) as Arc<dyn Transaction>);
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
    ///
    /// `T` may be a trait object: `.with::<dyn Mailer>(Arc::new(Smtp))`, or
    /// `.with(Arc::new(Smtp) as Arc<dyn Mailer>)`, serves `#[inject] mailer: Arc<dyn Mailer>`.
    #[must_use]
    pub fn with<T: ?Sized + Send + Sync + 'static>(mut self, service: Arc<T>) -> Self {
        let service = AnyService::new(service);
        self.providers
            .insert(TypeId::of::<T>(), Arc::new(Provider::Shared(service)));
        self
    }

    /// Registers a factory called once per job execution that needs `T`.
    #[must_use]
    pub fn with_factory<T, F>(self, factory: F) -> Self
    where
        T: Send + Sync + 'static,
        F: Fn() -> T + Send + Sync + 'static,
    {
        self.with_arc_factory(move || Arc::new(factory()))
    }

    /// Registers a factory of `Arc<T>` called once per job execution that needs `T`: the form
    /// for a trait object, `.with_arc_factory(|| Arc::new(Tx::begin()) as Arc<dyn Transaction>)`.
    #[must_use]
    pub fn with_arc_factory<T, F>(mut self, factory: F) -> Self
    where
        T: ?Sized + Send + Sync + 'static,
        F: Fn() -> Arc<T> + Send + Sync + 'static,
    {
        let make = Box::new(move || AnyService::new(factory()));
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

    pub(crate) fn resolve<T: ?Sized + Send + Sync + 'static>(&self) -> Option<Arc<T>> {
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
        service.downcast::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Greet: Send + Sync {
        fn greet(&self) -> String;
    }

    struct English;

    impl Greet for English {
        fn greet(&self) -> String {
            "hello".to_owned()
        }
    }

    fn scope(services: Services) -> Scope {
        Scope::new(Arc::new(services))
    }

    #[test]
    fn a_shared_trait_object_resolves_to_the_registered_instance() {
        let english: Arc<dyn Greet> = Arc::new(English);
        let services = Services::new().with::<dyn Greet>(english.clone());
        assert!(services.provides(&ServiceKey::of::<dyn Greet>()));
        let resolved = scope(services).resolve::<dyn Greet>().unwrap();
        assert_eq!(resolved.greet(), "hello");
        assert!(Arc::ptr_eq(&resolved, &english));
    }

    #[test]
    fn a_trait_object_factory_runs_once_per_scope() {
        let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = made.clone();
        let services = Services::new().with_arc_factory(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Arc::new(English) as Arc<dyn Greet>
        });
        let first_scope = scope(services.clone());
        let first = first_scope.resolve::<dyn Greet>().unwrap();
        let again = first_scope.resolve::<dyn Greet>().unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = scope(services).resolve::<dyn Greet>().unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_trait_object_is_its_own_type() {
        // `dyn Greet` and `dyn Greet + Send + Sync` are different types, so different services;
        // and the concrete type is not the trait object.
        let services = Services::new().with::<dyn Greet>(Arc::new(English));
        assert!(!services.provides(&ServiceKey::of::<dyn Greet + Send + Sync>()));
        assert!(!services.provides(&ServiceKey::of::<English>()));
        let scope = scope(services);
        assert!(scope.resolve::<dyn Greet + Send + Sync>().is_none());
        assert!(scope.resolve::<English>().is_none());
    }

    #[test]
    fn sized_services_still_resolve() {
        let services = Services::new()
            .with(Arc::new(English))
            .with_factory(|| 7_u64);
        let scope = scope(services);
        assert_eq!(scope.resolve::<English>().unwrap().greet(), "hello");
        assert_eq!(*scope.resolve::<u64>().unwrap(), 7);
    }

    #[test]
    fn any_service_downcasts_only_to_its_type() {
        let service = AnyService::new::<dyn Greet>(Arc::new(English));
        assert_eq!(service.type_name(), std::any::type_name::<dyn Greet>());
        assert!(service.downcast::<dyn Greet>().is_some());
        assert!(service.downcast::<English>().is_none());
        assert!(format!("{service:?}").contains("Greet"), "{service:?}");
    }
}
