use jobs::prelude::*;

pub struct Mailer;

#[job(name = "mail.send")]
impl Mailer {
    pub async fn send(&self, to: String) {
        let _ = to;
    }
}

fn main() {}
