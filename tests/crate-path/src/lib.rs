//! The facade renamed in `Cargo.toml` (`resilience = { package = "steadfast", .. }`):
//! there is no `::steadfast` here, so expansions must go through the path
//! given with `crate = "..."`.

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use resilience::{CircuitOpen, Elapsed, resilient, testing};

    #[derive(Debug, PartialEq, Eq)]
    enum Error {
        Busy,
        Timeout,
        Open,
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

    fn fail_until(counter: &Cell<u32>, n: u32) -> Result<u32, Error> {
        counter.set(counter.get() + 1);
        if counter.get() < n {
            Err(Error::Busy)
        } else {
            Ok(counter.get())
        }
    }

    #[resilient(crate = "resilience", max_attempts = 4, timeout = "1s", deadline = "1m",
                retry_on = [Busy, Timeout], concurrency = 2, rate_limit = "10/s",
                circuit_breaker, on_retry = |event| assert!(event.attempt() < 4))]
    async fn fetch(counter: &Cell<u32>) -> Result<u32, Error> {
        tokio::task::yield_now().await;
        fail_until(counter, 3)
    }

    #[resilient(crate = "::resilience", max_attempts = 3, deadline = "1m",
                concurrency = 1, rate_limit = "10/s", circuit_breaker(failure_threshold = 10),
                fallback = |e| if e == Error::Busy { Ok(0) } else { Err(e) })]
    fn fetch_blocking(counter: &Cell<u32>, succeed_on: u32) -> Result<u32, Error> {
        fail_until(counter, succeed_on)
    }

    #[tokio::test(start_paused = true)]
    async fn async_fn_retries_through_the_renamed_crate() {
        let counter = Cell::new(0);
        assert_eq!(fetch(&counter).await, Ok(3));
        assert_eq!(counter.get(), 3);
    }

    #[test]
    fn sync_fn_retries_through_the_renamed_crate() {
        let _fast = testing::no_delays();
        let counter = Cell::new(0);
        assert_eq!(fetch_blocking(&counter, 2), Ok(2));
        assert_eq!(counter.get(), 2);

        let counter = Cell::new(0);
        assert_eq!(
            fetch_blocking(&counter, 10),
            Ok(0),
            "gave up after 3, then fell back"
        );
        assert_eq!(counter.get(), 3);
    }
}
