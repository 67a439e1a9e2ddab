use jobs::prelude::*;

#[job]
async fn ping() {}

fn main() {
    let _ = __jobs_run;
}
