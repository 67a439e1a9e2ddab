use jobs::prelude::*;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Receipt {
    pub total: i64,
}

#[job]
async fn archive(receipt: Receipt) {
    let _ = receipt;
}

fn main() {}
