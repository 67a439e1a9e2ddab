use jobs::prelude::*;

#[job]
pub struct SendWelcome {
    pub user_id: i64,
}

fn main() {}
