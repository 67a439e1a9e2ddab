use jobs::prelude::*;

pub struct Payments;

#[job]
async fn charge(order_id: i64, #[inject] payments: Box<Payments>) {
    let _ = (order_id, payments);
}

fn main() {}
