use jobs::prelude::*;

#[job(queue = "critical", retries = 3, queue = "default")]
async fn charge(order_id: i64) {
    let _ = order_id;
}

fn main() {}
