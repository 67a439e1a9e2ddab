use jobs::prelude::*;

#[job]
async fn process<T: serde::Serialize>(item: T) {
    let _ = item;
}

fn main() {}
