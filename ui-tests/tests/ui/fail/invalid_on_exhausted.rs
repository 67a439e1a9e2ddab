use jobs::prelude::*;

#[job(on_exhausted = "retry")]
async fn charge(order_id: i64) {
    let _ = order_id;
}

fn main() {}
