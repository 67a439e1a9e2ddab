//! The `#[job]` attribute of the [`jobs`](https://docs.rs/jobs) crate. Use it through
//! `jobs::job` (or `jobs::prelude::*`): the generated code names `::jobs::__private`, so this
//! crate is not meant to be a direct dependency.
//!
//! The work is split in three steps over `proc_macro2` token streams, so each can be unit
//! tested: `attr` parses the options, `input` validates the item into a small model, `expand`
//! generates the code. `errors` collects every problem so users see them all at once.
//!
//! Set `JOBS_MACROS_DEBUG=1` while building to print every expansion to stderr
//! (`cargo expand` shows them too).

mod attr;
mod errors;
mod expand;
mod input;

use proc_macro::TokenStream;

/// Turns a function, or the `&self` methods of an impl block, into a background job.
///
/// ```ignore
/// use jobs::prelude::*;
///
/// /// Sends the welcome mail.
/// #[job]
/// async fn send_welcome(user_id: i64, template: String) -> Result<(), MailError> {
///     // ...
/// }
///
/// // Enqueue it with the generated arguments struct:
/// let id = SendWelcome::new(7, "hi".into()).enqueue(&client).await?;
/// ```
///
/// # Options
///
/// | option | default | meaning |
/// | --- | --- | --- |
/// | `name = "billing.charge"` | the function's name, `"Type::method"` for methods | the stored name (the job's wire format) |
/// | `aliases = ["old_name"]` | none | former names that still run this job |
/// | `queue = "critical"` | `"default"` | the queue; must match `^[a-z0-9_-]+$` |
/// | `priority = 0` | `1` | its place within its queue, 0 (first) to 255: lower first, FIFO among equals |
/// | `retries = 3` | the server's (10) | retries after the first attempt |
/// | `retry_delays = [1, 5, 30]` | the server's retry policy | seconds before each retry; the last one repeats |
/// | `on_exhausted = "fail"` or `"delete"` | `"fail"` | the state of a job whose retries are used up |
/// | `timeout = "30s"` | none | fails an attempt running longer; units `ms`, `s`, `m`, `h` |
/// | `unique` | not unique | no new job while one with the same name and arguments is Enqueued, Scheduled, Awaiting or Processing (a job with no arguments: at most one pending) |
/// | `unique_for = "10m"` | none | `unique`, and a job with the same key created within this period (a `humantime` duration, at least 1ms) blocks too, whatever its state; wins over `unique` |
/// | `mutex = "account-{account_id}"` | none | at most one job per rendered key Processing at once; each `{name}` is an argument rendered with `Display`, `{{` and `}}` escape braces |
/// | `concurrency = 5` | unlimited | at most this many of its jobs Processing at once, across every server (at least 1) |
/// | `rate = "100/1m"` | unlimited | at most `count` of its jobs started per window of `period` (`count/period`, the period in `humantime` units) |
/// | `crate = ::jobs` or `crate = "jobs"` | `::jobs` | the path of the `jobs` crate, if renamed |
///
/// # Parameters
///
/// - `name: Type`: an argument, stored as JSON. The type must implement `Serialize`,
///   `DeserializeOwned`, `Debug` and `Clone`, and be owned (no references, no `impl Trait`).
///   `#[serde(...)]` attributes on it are moved to the generated field
///   (`#[serde(default)] locale: String` keeps jobs stored before the parameter was added runnable;
///   an `Option<T>` parameter reads as `None` without it). A type without the serde impls gets
///   one error, at the type. With `#[serde(with, serialize_with, deserialize_with, skip*,
///   flatten, borrow)]` serde's derive alone serializes the field, and the type need not
///   implement serde's traits itself.
/// - `#[inject] name: Arc<T>`: a service resolved from the server's container; `T` may be a
///   trait object (`Arc<dyn Mailer>`) that is `Send + Sync`.
/// - `ctx: JobContext`: the job's context (id, attempt, ...).
/// - `token: CancellationToken`: cancelled on shutdown or deletion.
///
/// The function is `async`, or a plain `fn` run on the blocking thread pool. It returns `()` or
/// `Result<T, E>` with `T: Serialize` (stored as the result) and `E: Into<BoxError>`. It must
/// not be generic, and stays callable exactly as written (tests can call it directly).
///
/// # Instance jobs
///
/// On an inherent impl block, every method taking `&self` (or `self: Arc<Self>`) is a job whose
/// service is resolved from the container when the job runs; associated functions without a
/// receiver are left alone. The options apply to every method; a method can override them with
/// its own `#[job(...)]` (where `name` and `aliases` are also allowed). Each method is its own
/// job kind: `concurrency` or `rate` on the impl block limits each method's jobs separately, and
/// a `mutex` template there must name an argument of every method.
///
/// ```ignore
/// pub struct EmailService { /* ... */ }
///
/// #[job(queue = "mail")]
/// impl EmailService {
///     pub fn new() -> Self { /* ... */ }                               // not a job
///     pub async fn send(&self, to: String) -> anyhow::Result<()> { /* ... */ } // "EmailService::send"
///     #[job(name = "mail.digest", retries = 0)]
///     pub fn digest(&self) -> anyhow::Result<()> { /* ... */ }         // "mail.digest"
/// }
///
/// EmailServiceSend::new("a@example.com".into()).enqueue(&client).await?;
/// ```
///
/// # What it generates
///
/// For `send_welcome` above (paths shortened; the real code names `::jobs::__private::..`):
///
/// ```ignore
/// /// Sends the welcome mail.
/// #[derive(Serialize, Deserialize, Debug, Clone)]
/// pub struct SendWelcome {
///     // each field (de)serialized through the helpers below
///     #[serde(serialize_with = "SendWelcome::__jobs_serialize_user_id", deserialize_with = "..")]
///     pub user_id: i64,
///     #[serde(serialize_with = "SendWelcome::__jobs_serialize_template", deserialize_with = "..")]
///     pub template: String,
/// }
///
/// const _: () = {
///     impl SendWelcome {
///         pub fn new(user_id: i64, template: String) -> Self { .. }
///         pub async fn enqueue(&self, client: &Client) -> Result<JobId> { .. }
///         pub async fn enqueue_with(&self, client: &Client, opts: EnqueueOptions) -> Result<Enqueued> { .. }
///         pub async fn schedule(&self, client: &Client, delay: Duration) -> Result<JobId> { .. }
///         pub async fn schedule_at(&self, client: &Client, at: DateTime<Utc>) -> Result<JobId> { .. }
///         pub async fn continue_after(&self, client: &Client, parent: JobId) -> Result<JobId> { .. }
///     }
///     impl SendWelcome {
///         // the field's own serde impl, or, for a type without one (which then fails the
///         // check in `__jobs_run`), a fallback that keeps the derive from adding errors
///         fn __jobs_serialize_user_id<S: Serializer>(value: &i64, serializer: S) -> .. { .. }
///         fn __jobs_deserialize_user_id<'de, D: Deserializer<'de>>(deserializer: D) -> .. { .. }
///         // and the same for `template`
///     }
///     impl Job for SendWelcome {
///         const NAME: &'static str = "send_welcome";
///         const QUEUE: &'static str = "default";
///         // and, when given: PRIORITY, UNIQUE, CONCURRENCY, RATE, and `fn mutex_key(&self)`
///     }
///     // compile-time checks spanned at each argument type and at the return type
///     fn __jobs_run(invocation: Invocation) -> BoxFuture<'static, RunResult> {
///         // deserialize SendWelcome, resolve services, call send_welcome(..).await
///     }
///     inventory::submit! { JobEntry { name: "send_welcome", queue: "default", run: __jobs_run, .. } }
/// };
/// ```
///
/// The arguments struct is named after the function in `UpperCamelCase` (`EmailServiceSend` for
/// `EmailService::send`), with the function's visibility and doc comment.
#[proc_macro_attribute]
pub fn job(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::job(args.into(), item.into()).into()
}
