use jobs::prelude::*;

#[job(timeout = "30 seconds")]
async fn export(rows: u64) {
    let _ = rows;
}

fn main() {}
