//! Keys that never produce a library error need no `From` impl: an
//! unbounded wait for a permit or a token cannot fail (only `max_wait`
//! produces `Rejected`), and a plain `fn` without limits checks its
//! `deadline` between attempts (no `Elapsed`). A deadline that bounds a
//! permit or token wait does produce `Elapsed`.

use std::sync::atomic::{AtomicU32, Ordering};

use steadfast::resilient;

#[derive(Debug, PartialEq)]
enum Error {
    Busy,
    Fatal,
}

static CALLS: AtomicU32 = AtomicU32::new(0);

#[resilient(concurrency = 2, rate_limit = "100/s", burst = 5, retry_on = [Busy])]
async fn unbounded_async() -> Result<u32, Error> {
    match CALLS.fetch_add(1, Ordering::SeqCst) {
        0 => Err(Error::Busy),
        n => Ok(n),
    }
}

#[resilient(concurrency = 1, rate_limit = "10/min", no_retry_on = [Fatal])]
fn unbounded_sync() -> Result<u32, Error> {
    Err(Error::Fatal)
}

#[resilient(deadline = "1m", budget = "off")]
fn deadline_sync() -> Result<u32, Error> {
    Ok(7)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(unbounded_async().await, Ok(1));
    assert_eq!(unbounded_sync(), Err(Error::Fatal));
    assert_eq!(deadline_sync(), Ok(7));
}
