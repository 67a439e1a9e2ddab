use jobs::prelude::*;

#[job(queue = "critical", weight = 5)]
async fn charge(order_id: i64) {
    let _ = order_id;
}

fn main() {}
