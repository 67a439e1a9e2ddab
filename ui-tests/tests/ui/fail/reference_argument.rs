use jobs::prelude::*;

#[job]
async fn greet(name: &str) {
    let _ = name;
}

fn main() {}
