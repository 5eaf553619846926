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

use std::process::Command;

#[test]
fn the_happy_path_allocates_nothing_reads_no_clock_and_draws_no_jitter() {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/alloc-count/Cargo.toml"
    );
    // A target directory of its own: the one running this test is locked.
    let target = concat!(env!("CARGO_TARGET_TMPDIR"), "/alloc-count");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(["run", "--quiet", "--release", "--manifest-path", manifest])
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains(" passed, 0 failed"),
        "the allocation and clock counts failed:\n{stdout}\n{stderr}"
    );
}
