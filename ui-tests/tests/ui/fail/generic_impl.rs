use jobs::prelude::*;

pub struct Repository<T> {
    items: Vec<T>,
}

#[job]
impl<T: Send + Sync + 'static> Repository<T> {
    pub async fn purge(&self, older_than_days: u32) {
        let _ = (self.items.len(), older_than_days);
    }
}

fn main() {}
