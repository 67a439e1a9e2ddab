//! The generated arguments struct: constructor, public fields, `Clone`, `Debug`, serde,
//! the `Job` constants, the registry entry; and the function stays callable as written.

use std::time::Duration;

use jobs::prelude::*;
use jobs::{OnExhausted, Registry};

/// Sends the welcome mail.
#[job]
pub async fn send_welcome(user_id: i64, template: String) -> anyhow::Result<()> {
    let _ = (user_id, template);
    Ok(())
}

#[job(name = "billing.charge", queue = "critical", retries = 3, retry_delays = [1, 5], on_exhausted = "delete", timeout = "2m", aliases = ["charge"])]
fn charge(order_id: i64) -> anyhow::Result<i64> {
    Ok(order_id * 2)
}

struct EmailService;

#[job]
impl EmailService {
    async fn send(&self, to: String) {
        let _ = to;
    }
}

fn main() {
    let args = SendWelcome::new(7, "hi".to_owned());
    assert_eq!(args.user_id, 7);
    assert_eq!(args.template, "hi");

    let copy = args.clone();
    assert_eq!(format!("{copy:?}"), r#"SendWelcome { user_id: 7, template: "hi" }"#);

    let json = jobs::__private::serde_json::to_string(&args).unwrap();
    assert_eq!(json, r#"{"user_id":7,"template":"hi"}"#);
    let back: SendWelcome = serde_json::from_str(&json).unwrap();
    assert_eq!((back.user_id, back.template), (7, "hi".to_owned()));

    assert_eq!(<SendWelcome as Job>::NAME, "send_welcome");
    assert_eq!(<SendWelcome as Job>::QUEUE, "default");
    assert_eq!(<Charge as Job>::NAME, "billing.charge");
    assert_eq!(<Charge as Job>::QUEUE, "critical");
    assert_eq!(<EmailServiceSend as Job>::NAME, "EmailService::send");
    let _ = EmailServiceSend { to: "a@example.com".to_owned() };

    // The functions are untouched.
    assert_eq!(charge(21).unwrap(), 42);
    let _future = send_welcome(1, String::new());
    let _future = EmailService.send(String::new());

    // One registry entry per job, with its options.
    let registry = Registry::collect().unwrap();
    let entry = registry.get("billing.charge").unwrap();
    assert_eq!(entry.queue, "critical");
    assert_eq!(entry.aliases, ["charge"]);
    assert_eq!(entry.options.retries, Some(3));
    assert_eq!(entry.options.retry_delays, [1, 5]);
    assert_eq!(entry.options.on_exhausted, OnExhausted::Delete);
    assert_eq!(entry.options.timeout, Some(Duration::from_secs(120)));
    assert!(entry.services.is_empty());
    assert_eq!(registry.get("charge").unwrap().name, "billing.charge");

    let entry = registry.get("send_welcome").unwrap();
    assert_eq!(entry.options, jobs::JobOptions::DEFAULT);
    assert!(entry.file.ends_with("generated_api.rs"), "{}", entry.file);

    let entry = registry.get("EmailService::send").unwrap();
    let services: Vec<_> = entry.services.iter().map(|key| key()).collect();
    assert_eq!(services, [jobs::ServiceKey::of::<EmailService>()]);
    assert_eq!(registry.entries().count(), 3);
}
