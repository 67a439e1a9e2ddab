use jobs::prelude::*;

pub struct Mailer;

#[job]
impl Mailer {
    pub fn new() -> Self {
        Mailer
    }
}

fn main() {}
