use std::rc::Rc;

use jobs::prelude::*;

async fn flush() {}

#[job]
async fn report(rows: u64) {
    let buffer = Rc::new(rows);
    flush().await;
    let _ = buffer;
}

fn main() {}
