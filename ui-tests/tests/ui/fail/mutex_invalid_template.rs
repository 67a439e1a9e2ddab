use jobs::prelude::*;

#[job(mutex = "account-{account_id")]
async fn transfer(account_id: i64) {
    let _ = account_id;
}

#[job(mutex = "")]
async fn refund(account_id: i64) {
    let _ = account_id;
}

#[job(mutex = "account-{account_id:?}")]
async fn close(account_id: i64) {
    let _ = account_id;
}

fn main() {}
