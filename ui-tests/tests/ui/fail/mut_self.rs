use jobs::prelude::*;

pub struct Counter {
    count: u64,
}

#[job]
impl Counter {
    pub async fn bump(&mut self, by: u64) {
        self.count += by;
    }
}

fn main() {}
