//! Compile-time UI tests for `#[resilient]`: every diagnostic the macro
//! promises (see docs/design.md, "Compile-time validation") has one file in
//! `fail/`, named after the diagnostic, next to the `.stderr` that pins
//! what rustc prints; `pass/` holds programs that must compile and run.
//! These directories sit next to this file, in the `steadfast-ui-tests`
//! package (`tests/ui/` in the repository): trybuild builds each case
//! against that package's dependencies, steadfast and tokio, and prints
//! paths relative to it.
//!
//! The `.stderr` files are pinned to one toolchain (rustc 1.95, the CI
//! toolchain); on any other the test is ignored, since rustc's wording and
//! layout change between releases.
//!
//! After changing a diagnostic, regenerate the expectations with
//!
//! ```sh
//! TRYBUILD=overwrite cargo test -p steadfast-ui-tests
//! ```
//!
//! and review the `.stderr` diff like code: each error must sit on the
//! offending token, be worded in rustc's style (lowercase, backticked names,
//! the fix stated), and come without secondary errors caused by the
//! expansion.

#[rustversion::attr(
    not(stable(1.95)),
    ignore = "the .stderr files are pinned to rustc 1.95, the CI toolchain"
)]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*.rs");
}
