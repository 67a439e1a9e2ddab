use jobs::prelude::*;

#[job(priority = 300)]
async fn charge(order_id: i64) {
    let _ = order_id;
}

#[job(priority = "high")]
async fn refund(order_id: i64) {
    let _ = order_id;
}

fn main() {}
