//! The happy path (first attempt succeeds) of every door allocates nothing, reads no clock
//! the configuration does not need, and draws no jitter.
//!
//! Counting allocations needs a `#[global_allocator]`, i.e. an
//! `unsafe impl GlobalAlloc`, and counting clock reads an interposed
//! `clock_gettime`; the workspace sets `unsafe_code = "forbid"` for every
//! target, tests included, and a `forbid` cannot be lifted by an `allow` in
//! this file. So the counting lives in a crate of its own outside the
//! workspace, `benches/alloc-count`, which calls annotated functions of
//! several shapes after a warm-up and checks each count; this test builds
//! and runs it (the first run compiles it, in its own target directory).
//! By hand: `cargo run --release --manifest-path benches/alloc-count/Cargo.toml`.
//!
//! The same crate, with `--features bodies -- bodies`, measures the most
//! memory the tower layer holds during a call with a request body.

use std::process::Command;

#[test]
fn the_happy_path_allocates_nothing_reads_no_clock_and_draws_no_jitter() {
    run_alloc_count(&[], "the allocation and clock counts");
}

/// What the tower layer holds of a request body to send it again: the
/// chunks themselves (a 32 KiB body retried holds 32 KiB, not two copies),
/// never more than the cap of a streamed body over it, and nothing of a
/// body it will not keep.
#[test]
fn the_tower_layer_holds_a_body_once_and_never_more_than_its_cap() {
    run_alloc_count(
        &["--features", "bodies", "--", "bodies"],
        "the tower layer's memory of bodies",
    );
}

/// Builds and runs `benches/alloc-count` with `args`; fails with `what`
/// unless every check passed.
fn run_alloc_count(args: &[&str], what: &str) {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/alloc-count/Cargo.toml"
    );
    // A target directory of its own: the one running this test is locked.
    let target = concat!(env!("CARGO_TARGET_TMPDIR"), "/alloc-count");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["run", "--quiet", "--release", "--manifest-path", manifest])
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains(" passed, 0 failed"),
        "{what} failed:\n{stdout}\n{stderr}"
    );
}
