use jobs::prelude::*;

#[derive(Debug, Clone)]
pub struct Order {
    pub id: i64,
}

#[job]
async fn ship(priority: u8, order: Order) {
    let _ = (priority, order);
}

fn main() {}
