//! Bulkhead: at most N attempts in flight at once.
//!
//! A [`Bulkhead`] is a counting semaphore with one count shared by async and
//! blocking callers, so one `static` can guard an `async fn` and a plain `fn`
//! that talk to the same dependency. The count lives in a
//! [`tokio::sync::Semaphore`], which already provides a fair (FIFO) wait queue
//! and cancel-safe acquisition, and can be built in a `const` context.
//!
//! An acquired slot is a [`BulkheadPermit`]; the slot is returned when the
//! permit is dropped, so an attempt that returns, fails, panics or is
//! cancelled (its future dropped) always gives its slot back.
//!
//! ```
//! use retry_runtime::Bulkhead;
//!
//! static DATABASE: Bulkhead = Bulkhead::new(4);
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let permit = DATABASE.acquire().await;
//! assert_eq!(DATABASE.available(), 3);
//! drop(permit);
//! assert_eq!(DATABASE.available(), 4);
//! # }
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::Rejected;

/// Limits how many attempts run at once.
///
/// Each attempt holds a [`BulkheadPermit`] while it runs; when all
/// `max_concurrent` permits are out, further callers wait (async or blocking),
/// give up after a `max_wait` with [`Rejected`], or are refused at once with
/// [`try_acquire`](Bulkhead::try_acquire). Waiters are served in arrival order.
///
/// `Bulkhead::new` is a `const fn`, so one bulkhead can be a `static` shared by
/// several functions, e.g. through `#[resilient(concurrency = &DATABASE)]`.
///
/// ```
/// use retry_runtime::Bulkhead;
///
/// static DATABASE: Bulkhead = Bulkhead::new(2);
///
/// let first = DATABASE.try_acquire().expect("two permits free");
/// let second = DATABASE.try_acquire().expect("one permit free");
/// assert!(DATABASE.try_acquire().is_none());
/// drop(first);
/// assert!(DATABASE.try_acquire().is_some());
/// # drop(second);
/// ```
#[derive(Debug)]
pub struct Bulkhead {
    semaphore: Semaphore,
    // The semaphore only reports what is free, not its size.
    max_concurrent: usize,
}

impl Bulkhead {
    /// Creates a bulkhead that lets at most `max_concurrent` attempts run at
    /// once.
    ///
    /// `0` is treated as `1`: a bulkhead that never admits anyone would make
    /// every caller wait forever, and the `#[resilient]` attribute already
    /// rejects `concurrency = 0` at compile time. Values above
    /// [`Semaphore::MAX_PERMITS`] (`usize::MAX >> 3`) are clamped to it.
    ///
    /// ```
    /// use retry_runtime::Bulkhead;
    ///
    /// static UPLOADS: Bulkhead = Bulkhead::new(3);
    /// assert_eq!(UPLOADS.max_concurrent(), 3);
    ///
    /// let local = Bulkhead::new(0);
    /// assert_eq!(local.max_concurrent(), 1);
    /// ```
    #[must_use]
    pub const fn new(max_concurrent: usize) -> Self {
        let max_concurrent = if max_concurrent == 0 {
            1
        } else if max_concurrent > Semaphore::MAX_PERMITS {
            // `Semaphore::const_new` panics above this; clamping keeps `new`
            // total, and nobody runs 2^61 attempts at once anyway.
            Semaphore::MAX_PERMITS
        } else {
            max_concurrent
        };
        Bulkhead {
            semaphore: Semaphore::const_new(max_concurrent),
            max_concurrent,
        }
    }

    /// How many permits are free right now.
    ///
    /// The answer may be stale by the time you act on it; use
    /// [`try_acquire`](Bulkhead::try_acquire) to take a permit without
    /// waiting.
    ///
    /// ```
    /// use retry_runtime::Bulkhead;
    ///
    /// let bulkhead = Bulkhead::new(2);
    /// let _permit = bulkhead.try_acquire();
    /// assert_eq!(bulkhead.available(), 1);
    /// ```
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// The most attempts this bulkhead lets run at once.
    ///
    /// ```
    /// use retry_runtime::Bulkhead;
    ///
    /// assert_eq!(Bulkhead::new(8).max_concurrent(), 8);
    /// ```
    pub fn max_concurrent(&self) -> usize {
        self.max_concurrent
    }

    /// Takes a permit if one is free, without waiting.
    ///
    /// Returns `None` when all permits are out, or when callers are already
    /// queued for one (a newcomer does not jump the queue).
    ///
    /// ```
    /// use retry_runtime::Bulkhead;
    ///
    /// let bulkhead = Bulkhead::new(1);
    /// let permit = bulkhead.try_acquire();
    /// assert!(permit.is_some());
    /// assert!(bulkhead.try_acquire().is_none());
    /// ```
    pub fn try_acquire(&self) -> Option<BulkheadPermit<'_>> {
        // The only other error is "closed", and this semaphore is never closed.
        self.semaphore
            .try_acquire()
            .ok()
            .map(|permit| BulkheadPermit::new(&self.semaphore, permit))
    }

    /// Waits for a permit.
    ///
    /// Cancel-safe: dropping the returned future before it completes takes
    /// nothing, and gives back a permit that was handed to it in the meantime.
    /// Waiters are served in arrival order.
    ///
    /// ```
    /// use retry_runtime::Bulkhead;
    ///
    /// static DATABASE: Bulkhead = Bulkhead::new(4);
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let _permit = DATABASE.acquire().await;
    /// // ... run one attempt while holding the permit ...
    /// # }
    /// ```
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` stores its arguments twice"
    )]
    pub fn acquire(&self) -> impl Future<Output = BulkheadPermit<'_>> {
        // An `async` block rather than an `async fn`, which would store
        // `self` twice: this future sits in every waiting caller's.
        async move {
            // A free permit needs no future; tokio's `try_acquire` does not
            // jump queued waiters, so this stays fair.
            if let Some(permit) = self.try_acquire() {
                return permit;
            }
            // `acquire` only fails on a closed semaphore, and this one is
            // private and never closed, so the loop runs once. Looping
            // instead of unwrapping keeps the impossible case from ever
            // panicking in a caller's task.
            loop {
                if let Ok(permit) = self.semaphore.acquire().await {
                    return BulkheadPermit::new(&self.semaphore, permit);
                }
            }
        }
    }

    /// Waits up to `max_wait` for a permit, then gives up with [`Rejected`].
    ///
    /// A free permit is taken at once without reading the clock. Otherwise the
    /// wait is measured on tokio's clock ([`tokio::time::timeout`]), so a
    /// paused test clock drives it; this needs a tokio runtime with the time
    /// driver enabled. Cancel-safe, like [`acquire`](Bulkhead::acquire).
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::Bulkhead;
    ///
    /// static DATABASE: Bulkhead = Bulkhead::new(1);
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let held = DATABASE.acquire().await;
    /// let refused = DATABASE.acquire_timeout(Duration::from_millis(50)).await;
    /// assert!(refused.is_err());
    ///
    /// drop(held);
    /// let permit = DATABASE.acquire_timeout(Duration::from_millis(50)).await;
    /// assert!(permit.is_ok());
    /// # }
    /// ```
    pub async fn acquire_timeout(
        &self,
        max_wait: Duration,
    ) -> Result<BulkheadPermit<'_>, Rejected> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        match tokio::time::timeout(max_wait, self.semaphore.acquire()).await {
            Ok(Ok(permit)) => Ok(BulkheadPermit::new(&self.semaphore, permit)),
            // Timed out, or (impossible: never closed) the semaphore closed.
            Ok(Err(_)) | Err(_) => Err(Rejected::new()),
        }
    }

    /// Blocks the current thread until a permit is free; for sync functions.
    ///
    /// Shares its count and its queue with the async methods: a blocked thread
    /// waits in line with async tasks and is woken when one of them releases a
    /// permit.
    ///
    /// Do not call this from inside an async task: it blocks the executor's
    /// thread, and if the permits are held by tasks on that same thread they
    /// are never released. Use [`acquire`](Bulkhead::acquire) there.
    ///
    /// ```
    /// use retry_runtime::Bulkhead;
    ///
    /// static FILES: Bulkhead = Bulkhead::new(2);
    ///
    /// let handles: Vec<_> = (0..4)
    ///     .map(|_| {
    ///         std::thread::spawn(|| {
    ///             let _permit = FILES.acquire_blocking();
    ///             // ... at most two threads are here at once ...
    ///         })
    ///     })
    ///     .collect();
    /// for handle in handles {
    ///     handle.join().unwrap();
    /// }
    /// assert_eq!(FILES.available(), 2);
    /// ```
    pub fn acquire_blocking(&self) -> BulkheadPermit<'_> {
        loop {
            if let Ok(permit) = self.acquire_blocking_until(None) {
                return permit;
            }
        }
    }

    /// Blocks the current thread for up to `max_wait` waiting for a permit,
    /// then gives up with [`Rejected`].
    ///
    /// The wait is measured on the wall clock ([`std::time::Instant`]): a
    /// blocked thread cannot take part in a paused tokio clock. The same
    /// caveat as [`acquire_blocking`](Bulkhead::acquire_blocking) applies
    /// inside async tasks.
    ///
    /// ```
    /// use std::time::Duration;
    /// use retry_runtime::Bulkhead;
    ///
    /// static FILES: Bulkhead = Bulkhead::new(1);
    ///
    /// let held = FILES.acquire_blocking();
    /// assert!(FILES.acquire_blocking_timeout(Duration::from_millis(1)).is_err());
    /// drop(held);
    /// assert!(FILES.acquire_blocking_timeout(Duration::from_millis(1)).is_ok());
    /// ```
    pub fn acquire_blocking_timeout(
        &self,
        max_wait: Duration,
    ) -> Result<BulkheadPermit<'_>, Rejected> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        // A `max_wait` too large to represent as an instant is a wait without
        // a deadline.
        let deadline = Instant::now().checked_add(max_wait);
        match deadline {
            Some(deadline) => self.acquire_blocking_until(Some(deadline)),
            None => Ok(self.acquire_blocking()),
        }
    }

    /// Drives the semaphore's own `acquire` future on this thread, parking
    /// between polls.
    ///
    /// Why not a second, blocking semaphore (a `Mutex` + `Condvar` count) for
    /// sync callers: the limit is one number shared by every caller of the
    /// bulkhead. Two counts would either split `max_concurrent` between async
    /// and sync callers or need to be kept in sync with each other; driving
    /// the same future puts a blocked thread in the same FIFO queue as async
    /// tasks, so a permit released by either side wakes whoever is first.
    ///
    /// Returns `Err` only when the deadline passes (or, impossibly, the
    /// semaphore is closed). Dropping the future on the way out returns any
    /// permit that was assigned to it, exactly as for a cancelled async waiter.
    fn acquire_blocking_until(
        &self,
        deadline: Option<Instant>,
    ) -> Result<BulkheadPermit<'_>, Rejected> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut acquire = pin!(self.semaphore.acquire());
        loop {
            match acquire.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(permit)) => return Ok(BulkheadPermit::new(&self.semaphore, permit)),
                Poll::Ready(Err(_)) => return Err(Rejected::new()),
                Poll::Pending => {}
            }
            // Parking may return spuriously or on a stale unpark; the next
            // poll tells whether a permit really arrived.
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Rejected::new());
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }
}

/// Wakes a thread parked in [`Bulkhead::acquire_blocking`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// One slot of a [`Bulkhead`], held while an attempt runs.
///
/// Dropping the permit returns the slot, so it is returned however the
/// attempt ends: by returning, by panicking (during unwinding), or by being
/// cancelled, since a dropped future drops the permit it holds.
///
/// ```
/// use retry_runtime::Bulkhead;
///
/// static DATABASE: Bulkhead = Bulkhead::new(1);
///
/// let result = std::thread::spawn(|| {
///     let _permit = DATABASE.acquire_blocking();
///     panic!("the attempt failed badly");
/// })
/// .join();
/// assert!(result.is_err());
/// assert_eq!(DATABASE.available(), 1);
/// ```
#[must_use = "the bulkhead slot is released as soon as the permit is dropped"]
#[derive(Debug)]
pub struct BulkheadPermit<'a> {
    // The semaphore alone, not tokio's permit: a slot is always one permit,
    // so its count need not be carried, and a permit half the size keeps
    // every protected call's future smaller.
    semaphore: &'a Semaphore,
}

impl<'a> BulkheadPermit<'a> {
    fn new(semaphore: &'a Semaphore, permit: SemaphorePermit<'a>) -> Self {
        debug_assert_eq!(permit.num_permits(), 1, "a slot is one permit");
        // Given back in `Drop`, exactly as tokio's permit would.
        permit.forget();
        BulkheadPermit { semaphore }
    }
}

impl Drop for BulkheadPermit<'_> {
    fn drop(&mut self) {
        self.semaphore.add_permits(1);
    }
}
