//! Services behind traits: `#[inject] Arc<dyn Trait>` (and `Arc<dyn Trait + Send + Sync>`) in
//! free and instance jobs, registered in `Services` as trait objects.

use std::sync::Arc;

use jobs::prelude::*;
use jobs::Registry;

/// A trait whose objects are `Send + Sync` through its supertraits.
trait Mailer: Send + Sync {
    fn send(&self, to: &str) -> String;
}

/// A trait whose objects are `Send + Sync` only when the object type says so.
trait Render {
    fn render(&self) -> String;
}

struct Smtp;

impl Mailer for Smtp {
    fn send(&self, to: &str) -> String {
        format!("mail to {to}")
    }
}

struct Plain;

impl Render for Plain {
    fn render(&self) -> String {
        "plain".to_owned()
    }
}

#[job]
async fn welcome(user: String, #[inject] mailer: Arc<dyn Mailer>) -> anyhow::Result<String> {
    Ok(mailer.send(&user))
}

#[job]
fn render_page(
    #[inject] renderer: std::sync::Arc<dyn Render + Send + Sync>,
) -> anyhow::Result<String> {
    Ok(renderer.render())
}

struct Newsletter;

#[job]
impl Newsletter {
    /// An instance job (the instance is a concrete type) with a trait-object service.
    async fn issue(&self, number: u32, #[inject] mailer: Arc<dyn Mailer>) {
        let _ = (number, mailer.send("readers"));
    }
}

fn main() {
    let _services = Services::new()
        .with::<dyn Mailer>(Arc::new(Smtp))
        .with(Arc::new(Plain) as Arc<dyn Render + Send + Sync>)
        .with_arc_factory(|| Arc::new(Smtp) as Arc<dyn Mailer>)
        .with(Arc::new(Newsletter));

    let Welcome { user } = Welcome::new("ada".to_owned());
    let RenderPage {} = RenderPage::new();
    let NewsletterIssue { number } = NewsletterIssue::new(1);
    let _ = (user, number);

    // The registry entries name the trait-object types, for the check at server build.
    let registry = Registry::collect().unwrap();
    let keys = |name: &str| -> Vec<jobs::ServiceKey> {
        let entry = registry.get(name).unwrap();
        entry.services.iter().map(|key| key()).collect()
    };
    assert_eq!(keys("welcome"), [jobs::ServiceKey::of::<dyn Mailer>()]);
    assert_eq!(
        keys("render_page"),
        [jobs::ServiceKey::of::<dyn Render + Send + Sync>()]
    );
    assert_eq!(
        keys("Newsletter::issue"),
        [
            jobs::ServiceKey::of::<Newsletter>(),
            jobs::ServiceKey::of::<dyn Mailer>()
        ]
    );
}
