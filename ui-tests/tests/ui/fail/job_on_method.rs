use jobs::prelude::*;

pub struct Mailer;

impl Mailer {
    #[job]
    pub async fn send(&self, to: String) {
        let _ = to;
    }
}

fn main() {}
