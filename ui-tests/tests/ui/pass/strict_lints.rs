//! The expansion is clean under strict lints: documented, `Debug`, no unused code, no
//! unreachable `pub`, in a private module and at the crate root.
#![deny(
    warnings,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    unused_qualifications,
    rust_2018_idioms,
    dead_code
)]

use jobs::job;

/// Public job.
#[job]
pub async fn public_job(a: u8) {
    let _ = a;
}

mod inner {
    use jobs::job;

    #[job]
    async fn private_job(b: u8) {
        let _ = b;
    }

    #[job]
    pub(crate) fn crate_job() {}

    #[derive(Debug)]
    pub(crate) struct Service;

    #[job]
    impl Service {
        pub(crate) async fn run(&self) {}
    }
}

fn main() {
    let _ = PublicJob::new(1);
}
