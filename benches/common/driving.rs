//! How every contender is driven and what it returns: shared by the bench
//! targets (through `common`) and the callgrind driver
//! (`examples/instructions.rs`), which includes this file alone because
//! the rest of `common` needs a bench target's environment.

#![allow(dead_code)] // each target uses a different part

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use steadfast::{CircuitOpen, Elapsed, Rejected};
/// The error every contender returns: convertible from each of the
/// library's own errors, so any key can be benchmarked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BenchError {
    TimedOut,
    Open,
    Refused,
}

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for BenchError {}

impl From<Elapsed> for BenchError {
    fn from(_: Elapsed) -> Self {
        BenchError::TimedOut
    }
}

impl From<CircuitOpen> for BenchError {
    fn from(_: CircuitOpen) -> Self {
        BenchError::Open
    }
}

impl From<Rejected> for BenchError {
    fn from(_: Rejected) -> Self {
        BenchError::Refused
    }
}

/// The baseline every contender is compared with: the body, no retrying.
pub(crate) async fn raw(x: u64) -> Result<u64, BenchError> {
    Ok(std::hint::black_box(x))
}

/// `#[inline(never)]` entry points, one per contender, each driving its
/// future with [`ready`], so every contender is measured the same way.
#[allow(unused_macros)] // `primitives` shares this module, not the drivers
macro_rules! drivers {
    ($($driver:ident => $future:ident;)*) => {$(
        #[inline(never)]
        fn $driver(x: u64) -> Result<u64, BenchError> {
            ready($future(x))
        }
    )*};
}
#[allow(unused_imports)]
pub(crate) use drivers;

/// Polls a future that must complete at once (a happy path) with a no-op
/// waker: no executor, no task, no wake-up machinery, so what is measured is
/// the future itself. Every contender is driven the same way.
#[inline(always)]
pub(crate) fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a happy-path future must complete on its first poll"),
    }
}

/// Pending at its first poll (after waking its task), ready at its second:
/// an answer that took a round trip, for which a hedged call registers its
/// hedge's timer.
#[derive(Default)]
pub(crate) struct Later(bool);

impl Future for Later {
    type Output = ();

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Polls a future that waits once ([`Later`]) with a no-op waker: `Pending`,
/// then its output.
#[inline(always)]
pub(crate) fn second_poll<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    assert!(future.as_mut().poll(&mut cx).is_pending());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a future that waits once must complete at its second poll"),
    }
}
