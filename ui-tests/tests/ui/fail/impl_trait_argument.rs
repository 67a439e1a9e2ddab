use jobs::prelude::*;

#[job]
async fn greet(name: impl Into<String>) {
    let _ = name.into();
}

fn main() {}
