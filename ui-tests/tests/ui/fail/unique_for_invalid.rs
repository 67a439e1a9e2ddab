use jobs::prelude::*;

#[job(unique_for = "ten minutes")]
async fn send_digest(user_id: i64) {
    let _ = user_id;
}

#[job(unique_for = "10 fortnights")]
async fn send_report(user_id: i64) {
    let _ = user_id;
}

fn main() {}
