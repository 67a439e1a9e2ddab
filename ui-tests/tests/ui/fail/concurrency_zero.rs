use jobs::prelude::*;

#[job(concurrency = 0)]
async fn export(rows: u64) {
    let _ = rows;
}

fn main() {}
