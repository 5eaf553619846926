//! `#[resilient]` stacked with `#[tracing::instrument]`: the order that
//! works, with an owned argument, and one span around the whole call.
#![cfg(feature = "tracing")]

use std::sync::atomic::{AtomicU32, Ordering};

use steadfast::resilient;

static CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug, PartialEq)]
struct Busy;

#[resilient(max_attempts = 3, backoff = "none", budget = "off")]
#[tracing::instrument(skip_all, fields(len = name.len()))]
async fn greet(name: String) -> Result<String, Busy> {
    if CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
        Err(Busy)
    } else {
        Ok(format!("hello {name}"))
    }
}

#[tokio::test]
async fn resilient_above_instrument_retries_an_owned_argument() {
    assert_eq!(greet("ada".to_owned()).await, Ok("hello ada".to_owned()));
    assert_eq!(CALLS.load(Ordering::SeqCst), 3);
}
