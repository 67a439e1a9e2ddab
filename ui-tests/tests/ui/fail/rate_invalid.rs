use jobs::prelude::*;

#[job(rate = "100 per minute")]
async fn call_partner(order_id: i64) {
    let _ = order_id;
}

#[job(rate = "100/1 fortnight")]
async fn call_other_partner(order_id: i64) {
    let _ = order_id;
}

fn main() {}
