use jobs::prelude::*;

#[job(mutex = "account-{acount_id}")]
async fn transfer(account_id: i64, amount: i64) {
    let _ = (account_id, amount);
}

fn main() {
    // The job is still generated, so its uses add no errors of their own.
    let _ = Transfer::new(1, 2);
}
