use jobs::prelude::*;

#[job(retry_delays = [])]
async fn charge(order_id: i64) {
    let _ = order_id;
}

fn main() {}
