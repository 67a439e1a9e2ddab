//! Services from the container, the context and the cancellation token: none of them are
//! fields of the arguments struct.

use std::sync::Arc;

use jobs::prelude::*;

struct Mailer;
struct Templates;

#[job]
async fn notify(
    #[inject] mailer: Arc<Mailer>,
    user_id: i64,
    #[inject] templates: std::sync::Arc<Templates>,
    ctx: jobs::JobContext,
    token: CancellationToken,
    subject: String,
) -> anyhow::Result<()> {
    let _ = (mailer, templates, ctx, token);
    let _ = (user_id, subject);
    Ok(())
}

/// A blocking job with only injected parameters.
#[job]
fn cleanup(#[inject] mailer: Arc<Mailer>, _ctx: JobContext) {
    let _ = mailer;
}

struct Cache;

#[job]
impl Cache {
    /// An instance job with an injected service as well.
    async fn warm(&self, #[inject] templates: Arc<Templates>, _token: CancellationToken) {
        let _ = templates;
    }
}

fn main() {
    // Only the serialized parameters are fields.
    let Notify { user_id, subject } = Notify::new(7, "hi".to_owned());
    assert_eq!((user_id, subject.as_str()), (7, "hi"));
    let Cleanup {} = Cleanup::new();
    let CacheWarm {} = CacheWarm::new();
}
