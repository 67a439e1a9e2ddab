//! Two jobs registered under one name: the server refuses to build, naming both.
//! (Its own test binary: the duplicate would break every other server in the binary.)

use jobs::prelude::*;

#[job(name = "reports.nightly")]
async fn nightly_report() {}

#[job(name = "reports.weekly", aliases = ["reports.nightly"])]
async fn weekly_report() {}

#[test]
fn duplicate_names_are_an_error_naming_both_locations() {
    let error = Server::builder(MemoryStorage::new()).build().unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, jobs::Error::DuplicateJob { ref name, .. } if name == "reports.nightly"),
        "{message}"
    );
    assert!(
        message.contains("tests/tests/duplicate_names.rs:6"),
        "{message}"
    );
    assert!(
        message.contains("tests/tests/duplicate_names.rs:9"),
        "{message}"
    );
}
