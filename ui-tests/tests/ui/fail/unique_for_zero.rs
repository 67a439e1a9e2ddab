use jobs::prelude::*;

// `unique` alone is fine on a job with nothing to key on (at most one pending), but a zero
// window is a mistake.
#[job(unique)]
async fn refresh_cache() {}

#[job(unique_for = "0s")]
async fn rebuild_index() {}

fn main() {}
