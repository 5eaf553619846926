//! Expansions are lint-clean: with rustc's warnings denied, including
//! `unused_qualifications`, `unreachable_code` and `dead_code`, annotated
//! functions that are used compile without a single warning. trybuild does
//! not run clippy; `clippy::all` is denied too so that running clippy on
//! this file checks the expansion against it.

#![deny(
    warnings,
    unused_qualifications,
    unreachable_code,
    dead_code,
    clippy::all
)]
#![deny(
    unused_results,
    unused_must_use,
    unused_extern_crates,
    unused_import_braces
)]
#![deny(missing_debug_implementations, trivial_casts, trivial_numeric_casts)]

use steadfast::{CircuitOpen, Elapsed, Rejected, resilient};

#[derive(Debug)]
enum Error {
    Fatal,
    Timeout,
    Open,
    Busy,
}

impl From<Elapsed> for Error {
    fn from(_: Elapsed) -> Self {
        Error::Timeout
    }
}

impl From<CircuitOpen> for Error {
    fn from(_: CircuitOpen) -> Self {
        Error::Open
    }
}

impl From<Rejected> for Error {
    fn from(_: Rejected) -> Self {
        Error::Busy
    }
}

#[resilient(
    timeout = "1s",
    deadline = "5s",
    concurrency = 2,
    rate_limit = "100/s",
    max_wait = "1s",
    circuit_breaker,
    no_retry_on = [Fatal],
    on_retry = |event| assert!(event.attempt() >= 1),
    retry_after = |_| None,
    fallback = |error| match error {
        Error::Busy => Ok(0),
        other => Err(other),
    },
)]
async fn with_everything(fail: bool) -> Result<u8, Error> {
    if fail {
        return Err(Error::Fatal);
    }
    let value = early_return()?;
    Ok(value)
}

fn early_return() -> Result<u8, Error> {
    Ok(1)
}

/// A body that returns early.
#[resilient(max_attempts = 2, budget = "off")]
fn returns_early(early: bool) -> Result<u8, Error> {
    if early {
        return Ok(2);
    }
    Err(Error::Fatal)
}

/// A body that diverges.
#[resilient]
fn diverges() -> Result<u8, Error> {
    Err(Error::Fatal)?;
    unreachable!()
}

/// Methods with `self` receivers.
#[derive(Debug)]
struct Client {
    base: u8,
}

impl Client {
    #[resilient(max_attempts = 2)]
    async fn get(&self) -> Result<u8, Error> {
        Ok(self.base)
    }

    #[resilient(max_attempts = 2)]
    fn bump(&mut self) -> Result<u8, Error> {
        self.base += 1;
        Ok(self.base)
    }
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(with_everything(false).await.unwrap(), 1);
    assert!(matches!(with_everything(true).await, Err(Error::Fatal)));
    assert_eq!(returns_early(true).unwrap(), 2);
    assert!(returns_early(false).is_err());
    assert!(diverges().is_err());
    let mut client = Client { base: 3 };
    assert_eq!(client.get().await.unwrap(), 3);
    assert_eq!(client.bump().unwrap(), 4);
    let _ = (Error::Timeout, Error::Open, Error::Busy);
}
