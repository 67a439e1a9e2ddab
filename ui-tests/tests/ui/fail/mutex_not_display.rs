use jobs::prelude::*;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AccountId(i64);

#[job(mutex = "account-{account}")]
async fn transfer(account: AccountId, amount: i64) {
    let _ = (account, amount);
}

fn main() {}
