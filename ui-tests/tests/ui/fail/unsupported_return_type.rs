use jobs::prelude::*;

#[job]
async fn count(rows: u64) -> i32 {
    rows as i32
}

fn main() {}
