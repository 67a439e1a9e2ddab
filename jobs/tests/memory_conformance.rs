//! MemoryStorage against the storage conformance suite.

async fn setup() -> jobs::MemoryStorage {
    jobs::MemoryStorage::new()
}

jobs::conformance_tests!(setup);
