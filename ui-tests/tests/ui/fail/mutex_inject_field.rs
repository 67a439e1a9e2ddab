use std::sync::Arc;

use jobs::prelude::*;

pub struct Ledger;

#[job(mutex = "ledger-{ledger}")]
async fn transfer(account_id: i64, #[inject] ledger: Arc<Ledger>) {
    let _ = (account_id, ledger);
}

fn main() {}
