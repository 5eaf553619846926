//! `circuit_breaker(key = ..)`: one breaker per value of the key (a host, a
//! tenant), so one provider's outage does not open another's breaker; and a
//! `Keyed` limiter handed to each call.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};

use steadfast::{CircuitOpen, resilient};
use support::TestError;

#[resilient(max_attempts = 1, budget = "off",
            circuit_breaker(key = host, failure_threshold = 2, open_for = "1m"))]
async fn fetch(host: &str, up: bool, sent: &AtomicU32) -> Result<(), TestError> {
    sent.fetch_add(1, Ordering::SeqCst);
    if up { Ok(()) } else { Err(TestError::Io) }
}

#[tokio::test(start_paused = true)]
async fn one_hosts_outage_opens_only_its_own_breaker() {
    let sent = AtomicU32::new(0);
    for _ in 0..2 {
        assert_eq!(
            fetch("down.example", false, &sent).await,
            Err(TestError::Io)
        );
    }
    assert_eq!(
        fetch("down.example", true, &sent).await,
        Err(TestError::Open(CircuitOpen::new())),
        "the failing host's breaker is open"
    );
    assert_eq!(sent.load(Ordering::SeqCst), 2, "refused without sending");

    assert_eq!(fetch("up.example", true, &sent).await, Ok(()));
    assert_eq!(
        fetch("up.example", false, &sent).await,
        Err(TestError::Io),
        "the other host's breaker is closed: the call is sent"
    );
    assert_eq!(sent.load(Ordering::SeqCst), 4);
}

/// The key can be any `AsRef<str>`: an owned `String` from the request.
#[resilient(max_attempts = 1, budget = "off",
            circuit_breaker(key = tenant.to_owned(), failure_threshold = 1, open_for = "1m"))]
fn charge(tenant: &str, up: bool) -> Result<(), TestError> {
    if up { Ok(()) } else { Err(TestError::Io) }
}

#[test]
fn a_plain_fn_keys_its_breaker_too() {
    assert_eq!(charge("acme", false), Err(TestError::Io));
    assert_eq!(
        charge("acme", true),
        Err(TestError::Open(CircuitOpen::new()))
    );
    assert_eq!(charge("globex", true), Ok(()));
}

/// A per-key limiter or bulkhead: keep them in a `Keyed` static and hand the
/// call its own; the attribute's shared keys take any expression of the
/// function, a parameter included.
static PER_TENANT: steadfast::Keyed<String, steadfast::RateLimiter> =
    steadfast::Keyed::new(|_| steadfast::RateLimiter::per_second(2).burst(1));

#[resilient(max_attempts = 1, budget = "off", rate_limit = quota)]
async fn send(quota: &steadfast::RateLimiter) -> Result<(), TestError> {
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_keyed_limiter_paces_each_tenant_alone() {
    let start = tokio::time::Instant::now();
    send(&PER_TENANT.get("acme")).await.unwrap();
    send(&PER_TENANT.get("globex")).await.unwrap();
    assert_eq!(start.elapsed(), support::ms(0), "another tenant's token");
    send(&PER_TENANT.get("acme")).await.unwrap();
    assert_eq!(start.elapsed(), support::ms(500), "acme waited for its own");
}
