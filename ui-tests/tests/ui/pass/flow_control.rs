//! The flow-control options of `#[job(...)]` on a free function and on instance jobs: the
//! `Job` constants, the mutex key, the registry entry, and `enqueue_with`.

use std::sync::Arc;
use std::time::Duration;

use jobs::prelude::*;
use jobs::{Rate, Registry, Unique};

/// A ledger, injected.
pub struct Ledger;

/// Every flow-control option at once on a free function.
#[job(
    unique,
    unique_for = "10m",
    mutex = "account-{account_id}/{{{kind}}}",
    concurrency = 4,
    rate = "100/1m"
)]
pub async fn transfer(
    account_id: i64,
    kind: String,
    #[inject] ledger: Arc<Ledger>,
    _ctx: JobContext,
) {
    let _ = (account_id, kind, ledger);
}

/// `unique` on a job with nothing to key on: at most one pending.
#[job(unique)]
async fn refresh_cache(#[inject] ledger: Arc<Ledger>) {
    let _ = ledger;
}

/// A template without fields: one key for every job of this kind, `r#` names by their name.
#[job(mutex = "reports-{type}", rate = "5/1s 500ms")]
fn report(r#type: u8) {
    let _ = r#type;
}

/// A service whose jobs share the impl block's options.
pub struct Mailer;

#[job(queue = "mail", concurrency = 2, rate = "1000/1h")]
impl Mailer {
    /// Overrides them with its own.
    #[job(unique_for = "1h 30m", mutex = "mail-{to}", concurrency = 1)]
    pub async fn send(&self, to: String, #[inject] _ledger: Arc<Ledger>) {
        let _ = to;
    }

    /// Keeps the impl block's.
    pub fn flush(&self) {}
}

/// Options written inside a `macro_rules!` body, or passed as fragments, keep working: the
/// template's span comes from the macro.
macro_rules! keyed_jobs {
    ($template:literal, $rate:expr) => {
        #[job(mutex = $template, rate = $rate)]
        async fn passed_in(user: u32) {
            let _ = user;
        }

        #[job(mutex = "user-{user}", unique_for = "1s")]
        async fn written_in(user: u32) {
            let _ = user;
        }
    };
}

keyed_jobs!("user-{user}", "10/1s");

#[tokio::main(flavor = "current_thread")]
async fn main() -> jobs::Result<()> {
    assert_eq!(
        <Transfer as Job>::UNIQUE,
        Some(Unique {
            window: Some(Duration::from_secs(600))
        })
    );
    assert_eq!(<Transfer as Job>::CONCURRENCY, Some(4));
    assert_eq!(<Transfer as Job>::RATE, Some("100/1m".parse::<Rate>()?));
    let transfer = Transfer::new(7, "wire".to_owned());
    assert_eq!(transfer.mutex_key().as_deref(), Some("account-7/{wire}"));

    assert_eq!(<RefreshCache as Job>::UNIQUE, Some(Unique { window: None }));
    assert_eq!(<RefreshCache as Job>::CONCURRENCY, None);
    assert_eq!(RefreshCache::new().mutex_key(), None);

    // The macro and the runtime parser agree on the period.
    assert_eq!(<Report as Job>::RATE, Some("5/1s 500ms".parse::<Rate>()?));
    assert_eq!(<Report as Job>::UNIQUE, None);
    assert_eq!(Report::new(3).mutex_key().as_deref(), Some("reports-3"));

    assert_eq!(
        <MailerSend as Job>::UNIQUE,
        Some(Unique {
            window: Some(Duration::from_secs(5400))
        })
    );
    assert_eq!(<MailerSend as Job>::CONCURRENCY, Some(1));
    assert_eq!(
        <MailerSend as Job>::RATE,
        Some(Rate::new(1000, Duration::from_secs(3600))?)
    );
    assert_eq!(
        MailerSend::new("a@example.com".to_owned())
            .mutex_key()
            .as_deref(),
        Some("mail-a@example.com")
    );
    assert_eq!(<MailerFlush as Job>::CONCURRENCY, Some(2));
    assert_eq!(MailerFlush::new().mutex_key(), None);

    assert_eq!(PassedIn::new(5).mutex_key().as_deref(), Some("user-5"));
    assert_eq!(WrittenIn::new(6).mutex_key().as_deref(), Some("user-6"));
    assert_eq!(
        <PassedIn as Job>::RATE,
        Some(Rate::new(10, Duration::from_secs(1))?)
    );

    let registry = Registry::collect()?;
    let options = &registry.get("transfer").unwrap().options;
    assert_eq!(options.concurrency, Some(4));
    assert_eq!(options.rate, Some(Rate::new(100, Duration::from_secs(60))?));
    assert!(options.mutex);
    let options = &registry.get("Mailer::flush").unwrap().options;
    assert_eq!(options.concurrency, Some(2));
    assert!(!options.mutex);
    assert_eq!(
        registry.get("refresh_cache").unwrap().options,
        jobs::JobOptions::DEFAULT
    );

    // A second enqueue of a unique job with the same arguments is a duplicate.
    let client = Client::new(MemoryStorage::new());
    let first = transfer
        .enqueue_with(&client, EnqueueOptions::new())
        .await?;
    let again = transfer
        .enqueue_with(&client, EnqueueOptions::new())
        .await?;
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    let other = Transfer::new(8, "wire".to_owned())
        .enqueue_with(&client, EnqueueOptions::new().priority(0))
        .await?;
    assert!(!other.duplicate);
    let mail = MailerSend::new("b@example.com".to_owned())
        .enqueue_with(&client, EnqueueOptions::new())
        .await?;
    assert!(!mail.duplicate);
    Ok(())
}
