//! [`JobContext`]: what a running job may know about itself.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::job::JobId;

/// Information about the running job, given to a job function that takes a `JobContext` parameter.
///
/// ```
/// use jobs::prelude::*;
///
/// #[job]
/// async fn report(day: String, ctx: JobContext) {
///     println!("job {} (attempt {}) reports {day}", ctx.id(), ctx.attempt());
/// }
/// ```
#[derive(Debug, Clone)]
pub struct JobContext {
    inner: Arc<ContextInner>,
}

#[derive(Debug)]
struct ContextInner {
    id: JobId,
    name: Arc<str>,
    queue: Arc<str>,
    attempt: u32,
    created_at: DateTime<Utc>,
    server_id: Arc<str>,
    token: CancellationToken,
    parent: Option<JobId>,
    parent_result: Option<serde_json::Value>,
}

/// The fields a [`JobContext`] is built from.
#[derive(Debug)]
pub(crate) struct ContextParts {
    pub(crate) id: JobId,
    pub(crate) name: Arc<str>,
    pub(crate) queue: Arc<str>,
    pub(crate) attempt: u32,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) server_id: Arc<str>,
    pub(crate) token: CancellationToken,
    pub(crate) parent: Option<JobId>,
    pub(crate) parent_result: Option<serde_json::Value>,
}

impl JobContext {
    pub(crate) fn new(parts: ContextParts) -> Self {
        JobContext {
            inner: Arc::new(ContextInner {
                id: parts.id,
                name: parts.name,
                queue: parts.queue,
                attempt: parts.attempt,
                created_at: parts.created_at,
                server_id: parts.server_id,
                token: parts.token,
                parent: parts.parent,
                parent_result: parts.parent_result,
            }),
        }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.inner.id
    }

    /// The job's stored name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The queue the job was fetched from.
    pub fn queue(&self) -> &str {
        &self.inner.queue
    }

    /// Which attempt this is: 1 for the first run, 2 for the first retry, ...
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// When the job was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.inner.created_at
    }

    /// The id of the server running the job.
    pub fn server_id(&self) -> &str {
        &self.inner.server_id
    }

    /// The job's cancellation token: fires on server shutdown and when the job is deleted.
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.inner.token
    }

    /// The parent job, for a continuation.
    pub fn parent(&self) -> Option<JobId> {
        self.inner.parent
    }

    /// The parent's result, for a continuation whose parent succeeded with a value.
    /// `Ok(None)` when there is no parent or it returned nothing.
    pub fn parent_result<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        self.inner
            .parent_result
            .as_ref()
            .map(|value| T::deserialize(value))
            .transpose()
    }
}
