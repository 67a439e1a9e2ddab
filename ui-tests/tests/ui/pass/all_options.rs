//! Every accepted `#[job(...)]` form, every parameter kind, sync, async and instance jobs.

use std::sync::Arc;

use jobs::prelude::*;

/// Payments, injected.
pub struct Payments;

/// A receipt, the job's stored result.
#[derive(serde::Serialize)]
pub struct Receipt {
    /// The charged order.
    pub order_id: i64,
}

/// Every option at once, a blocking fn, every parameter kind, the path form of `crate`.
#[job(
    name = "billing.charge",
    aliases = ["charge", "billing.charge_v1"],
    queue = "critical",
    priority = 0,
    retries = 3,
    retry_delays = [1, 5, 30],
    on_exhausted = "delete",
    timeout = "30s",
    crate = ::jobs,
)]
pub fn charge(
    order_id: i64,
    #[inject] _payments: Arc<Payments>,
    _ctx: JobContext,
    _token: CancellationToken,
) -> anyhow::Result<Receipt> {
    Ok(Receipt { order_id })
}

/// The string form of `crate`, every timeout unit, trailing commas, `mut` parameters.
#[job(crate = "jobs", timeout = "500ms", on_exhausted = "fail",)]
async fn export(mut rows: u64, token: jobs::CancellationToken) -> Result<u64, std::io::Error> {
    if token.is_cancelled() {
        rows = 0;
    }
    Ok(rows)
}

#[job(timeout = "5m", retries = 0)]
async fn minutes() {}

#[job(timeout = "1h", queue = "a-b_c9")]
fn hours() {}

/// `#[serde]` attributes move to the generated field.
#[job]
pub async fn send_welcome(
    user_id: i64,
    #[serde(default)] template: String,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let _ = (user_id, template);
    Ok(())
}

/// A service whose `&self` methods are jobs.
pub struct EmailService;

#[job(queue = "mail", retries = 5)]
impl EmailService {
    /// Not a job: no receiver.
    pub fn new() -> Self {
        EmailService
    }

    /// An async instance job: `EmailService::send`.
    pub async fn send(&self, to: String, ctx: JobContext) -> anyhow::Result<()> {
        let _ = (to, ctx.id());
        Ok(())
    }

    /// A blocking instance job with its own options.
    #[job(name = "mail.digest", aliases = ["digest"], queue = "bulk", timeout = "1h")]
    pub fn digest(&self, #[inject] _payments: Arc<Payments>, week: u32) -> anyhow::Result<u32> {
        Ok(week)
    }

    /// `self: Arc<Self>` is accepted too.
    pub async fn flush(self: Arc<Self>) {}

    /// So is `self: &Self`.
    fn count(self: &Self) -> Result<usize, std::convert::Infallible> {
        Ok(0)
    }

    /// Consts and other items are left alone.
    pub const LIMIT: usize = 10;
}

/// Options passed through `macro_rules!` fragments arrive wrapped in invisible groups.
macro_rules! job_in_queue {
    ($queue:expr, $retries:literal) => {
        #[job(queue = $queue, retries = $retries)]
        async fn from_macro(n: u8) {
            let _ = n;
        }
    };
}

job_in_queue!("macro-queue", 2);

fn main() {
    // A job declared inside a function body.
    #[job(queue = "local")]
    async fn local_job(n: u8) {
        let _ = n;
    }
    let _ = LocalJob::new(1);
    let _ = FromMacro::new(1);
    let _ = Charge::new(1);
    const _: () = assert!(<Charge as jobs::Job>::PRIORITY == 0);
    const _: () = assert!(<Export as jobs::Job>::PRIORITY == jobs::DEFAULT_PRIORITY);
    let _ = Export::new(10);
    let _ = Minutes::new();
    let _ = Hours::new();
    let _ = SendWelcome::new(1, String::new());
    let _ = EmailServiceSend::new("a@example.com".to_owned());
    let _ = EmailServiceDigest::new(3);
    let _ = EmailServiceFlush::new();
    let _ = EmailServiceCount::new();
    let _ = EmailService::new();
    let _ = EmailService::LIMIT;
}
