use std::cell::Cell;
use std::sync::Arc;

use jobs::prelude::*;

#[job]
async fn count(#[inject] counter: Arc<Cell<u64>>) {
    let _ = counter;
}

fn main() {}
