use jobs::prelude::*;

#[job(crate = "my jobs")]
async fn charge(order_id: i64) {
    let _ = order_id;
}

fn main() {}
