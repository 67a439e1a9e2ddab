//! Compile tests for `#[job]`: every accepted form compiles (`ui/pass`), and every diagnostic
//! the macro can give has one case with its expected `.stderr` (`ui/fail`).
//!
//! The `.stderr` files depend on the compiler's wording: after a toolchain update, regenerate
//! them with `TRYBUILD=overwrite cargo test -p ui-tests` and review the diff like code.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
