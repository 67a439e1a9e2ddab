use jobs::prelude::*;

#[job(rate = "5/0s")]
async fn call_partner(order_id: i64) {
    let _ = order_id;
}

#[job(rate = "0/1m")]
async fn call_other_partner(order_id: i64) {
    let _ = order_id;
}

fn main() {}
