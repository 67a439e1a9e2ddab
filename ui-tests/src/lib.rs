//! Compile tests for the `#[job]` attribute (trybuild), run by `tests/ui.rs`:
//!
//! - `tests/ui/pass/*.rs` must compile (and their `main` must run): every accepted form;
//! - `tests/ui/fail/*.rs` must fail with the `.stderr` next to them, one diagnostic per file,
//!   named after it.
//!
//! After changing a diagnostic (or the toolchain), regenerate the `.stderr` files with
//! `TRYBUILD=overwrite cargo test -p ui-tests` and review them like code: each error must point
//! at the culprit.
