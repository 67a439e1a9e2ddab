use jobs::prelude::*;

#[job(unique = true)]
async fn send_digest(user_id: i64) {
    let _ = user_id;
}

fn main() {}
