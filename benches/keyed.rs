//! `Keyed`: the cost of a hit (the instance for a key already there),
//! against governor's keyed rate limiter (the peer users reach for: a
//! `DashMap` of GCRA states) and a plain `RwLock<HashMap>` of `Arc`s, each
//! holding 1,000 keys, on one thread and on two threads looking up the same
//! key at once. Each contender looks the key up and takes a token from a
//! limiter with a huge rate, so every call is a hit that is admitted.
//!
//! `cargo bench -p steadfast-benches --bench keyed`

mod common;

use std::collections::HashMap;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use common::row;
use steadfast::{Keyed, RateLimiter};

const KEYS: usize = 1_000;

fn unlimited() -> RateLimiter {
    RateLimiter::per_second(u32::MAX).burst(u32::MAX)
}

static PER_HOST: Keyed<String, RateLimiter> = Keyed::new(|_| unlimited());

fn main() {
    let since = SystemTime::now();
    let mut c = common::criterion();

    let hosts: Vec<String> = (0..KEYS).map(|i| format!("host-{i}.example")).collect();
    let governor = governor::RateLimiter::keyed(governor::Quota::per_second(NonZeroU32::MAX));
    let plain: RwLock<HashMap<String, Arc<RateLimiter>>> = RwLock::default();
    for host in &hosts {
        PER_HOST.get(host.as_str());
        let _ = governor.check_key(host);
        plain
            .write()
            .unwrap()
            .insert(host.clone(), Arc::new(unlimited()));
    }
    let host = &hosts[KEYS / 2];

    let contenders: [(&str, &(dyn Fn() + Sync)); 3] = [
        ("steadfast", &|| {
            black_box(PER_HOST.get(black_box(host.as_str())).try_acquire());
        }),
        ("governor_keyed", &|| {
            black_box(governor.check_key(black_box(host)).is_ok());
        }),
        ("rwlock_hashmap", &|| {
            let limiter = plain.read().unwrap().get(black_box(host.as_str())).cloned();
            black_box(limiter.map(|l| l.try_acquire()));
        }),
    ];
    let mut group = c.benchmark_group("keyed/hit");
    for (id, op) in contenders {
        group.bench_function(id, |b| b.iter(op));
    }
    group.finish();
    let mut group = c.benchmark_group("keyed/hit_2_threads");
    for (id, op) in contenders {
        group.bench_function(id, |b| {
            b.iter_custom(|iters| common::contended(&(), 2, iters, |()| op()))
        });
    }
    group.finish();

    c.final_summary();
    let rows = [
        row("steadfast"),
        row("governor_keyed"),
        row("rwlock_hashmap"),
    ];
    for group in ["keyed/hit", "keyed/hit_2_threads"] {
        common::print_table(group, "governor_keyed", &rows, since);
    }
    println!(
        "\nmemory: `Keyed` itself {} bytes; per key, see BENCHMARKS.md (measured by \
         `cargo test -p retry-runtime --release --test keyed -- --ignored --nocapture`)",
        std::mem::size_of_val(&PER_HOST)
    );
}
