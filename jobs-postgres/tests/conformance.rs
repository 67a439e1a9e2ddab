//! PostgresStorage against the storage conformance suite: every case on a fresh schema.

use jobs_postgres::testing::TestSchema;

async fn setup() -> TestSchema {
    TestSchema::new().await
}

jobs::conformance_tests!(setup);
