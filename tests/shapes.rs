//! Every function shape `#[resilient]` accepts, each checked by what it does:
//! how many attempts were made and what the call returned.
//!
//! Async tests run on tokio's paused clock; sync tests hold a
//! `testing::no_delays()` guard, so no test waits for a backoff.

use std::cell::Cell;
use std::fmt::Display;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use steadfast::{Elapsed, resilient, testing};

/// Fails until the `n`-th attempt, then succeeds with the attempt number.
fn succeed_on(counter: &Cell<u32>, n: u32) -> Result<u32, String> {
    counter.set(counter.get() + 1);
    if counter.get() < n {
        Err(format!("attempt {} failed", counter.get()))
    } else {
        Ok(counter.get())
    }
}

// ---------------------------------------------------------------------------
// Free functions

#[resilient(max_attempts = 4)]
async fn free_async(counter: &Cell<u32>) -> Result<u32, String> {
    tokio::task::yield_now().await;
    succeed_on(counter, 3)
}

#[tokio::test(start_paused = true)]
async fn free_async_fn_retries_until_success() {
    let counter = Cell::new(0);
    assert_eq!(free_async(&counter).await, Ok(3));
    assert_eq!(counter.get(), 3);
}

#[resilient(max_attempts = 4)]
fn free_sync(counter: &Cell<u32>) -> Result<u32, String> {
    succeed_on(counter, 10)
}

#[test]
fn free_plain_fn_gives_up_after_max_attempts() {
    let _fast = testing::no_delays();
    let counter = Cell::new(0);
    assert_eq!(free_sync(&counter), Err("attempt 4 failed".to_owned()));
    assert_eq!(counter.get(), 4);
}

// ---------------------------------------------------------------------------
// Inherent methods: `&self`, `&mut self`, `self`

struct Client {
    calls: Cell<u32>,
    fail_first: u32,
}

impl Client {
    fn new(fail_first: u32) -> Self {
        Client {
            calls: Cell::new(0),
            fail_first,
        }
    }

    #[resilient(max_attempts = 5)]
    async fn get(&self, key: &str) -> Result<String, String> {
        succeed_on(&self.calls, self.fail_first + 1).map(|n| format!("{key}@{n}"))
    }

    #[resilient(max_attempts = 5)]
    fn get_blocking(&self, key: &str) -> Result<String, String> {
        succeed_on(&self.calls, self.fail_first + 1).map(|n| format!("{key}@{n}"))
    }
}

#[tokio::test(start_paused = true)]
async fn ref_self_async_method() {
    let client = Client::new(2);
    assert_eq!(client.get("k").await, Ok("k@3".to_owned()));
    assert_eq!(client.calls.get(), 3);
}

#[test]
fn ref_self_sync_method() {
    let _fast = testing::no_delays();
    let client = Client::new(1);
    assert_eq!(client.get_blocking("k"), Ok("k@2".to_owned()));
    assert_eq!(client.calls.get(), 2);
}

#[derive(Default)]
struct Connection {
    attempts: u32,
    log: Vec<String>,
}

impl Connection {
    /// State mutated by one attempt is seen by the next.
    #[resilient(max_attempts = 3)]
    async fn connect(&mut self) -> Result<usize, String> {
        self.attempts += 1;
        self.log.push(format!("try {}", self.attempts));
        tokio::task::yield_now().await;
        if self.log.len() < 3 {
            Err("refused".into())
        } else {
            Ok(self.log.len())
        }
    }

    #[resilient(max_attempts = 3)]
    fn connect_blocking(&mut self) -> Result<usize, String> {
        self.attempts += 1;
        self.log.push(format!("try {}", self.attempts));
        if self.log.len() < 2 {
            Err("refused".into())
        } else {
            Ok(self.log.len())
        }
    }
}

#[tokio::test(start_paused = true)]
async fn mut_self_async_method_mutates_state_across_attempts() {
    let mut conn = Connection::default();
    assert_eq!(conn.connect().await, Ok(3));
    assert_eq!(conn.attempts, 3);
    assert_eq!(conn.log, ["try 1", "try 2", "try 3"]);
}

#[test]
fn mut_self_sync_method_mutates_state_across_attempts() {
    let _fast = testing::no_delays();
    let mut conn = Connection::default();
    assert_eq!(conn.connect_blocking(), Ok(2));
    assert_eq!(conn.log, ["try 1", "try 2"]);
}

struct Request {
    url: String,
    tries: Cell<u32>,
}

impl Request {
    fn new(url: &str) -> Self {
        Request {
            url: url.to_owned(),
            tries: Cell::new(0),
        }
    }

    /// `self` by value: each attempt borrows it; it is dropped when the call ends.
    #[resilient(max_attempts = 3)]
    async fn send(self) -> Result<(String, u32), String> {
        let n = succeed_on(&self.tries, 3)?;
        Ok((self.url.clone(), n))
    }

    #[resilient(max_attempts = 3)]
    fn send_blocking(self) -> Result<(String, u32), String> {
        let n = succeed_on(&self.tries, 2)?;
        Ok((self.url.clone(), n))
    }
}

#[tokio::test(start_paused = true)]
async fn self_by_value_async_method() {
    let request = Request::new("https://a");
    assert_eq!(request.send().await, Ok(("https://a".to_owned(), 3)));
}

#[test]
fn self_by_value_sync_method() {
    let _fast = testing::no_delays();
    let request = Request::new("https://b");
    assert_eq!(request.send_blocking(), Ok(("https://b".to_owned(), 2)));
}

// ---------------------------------------------------------------------------
// Traits: impl methods, native `async fn` default methods

trait Store {
    async fn load(&self, id: u32) -> Result<String, String>;

    fn save(&self, id: u32) -> Result<u32, String>;

    /// A default method: the attribute applies to the trait's own body.
    #[resilient(max_attempts = 4)]
    async fn ping(&self) -> Result<u32, String> {
        succeed_on(self.counter(), 4)
    }

    /// A default method overridden by an implementor.
    #[resilient(max_attempts = 2)]
    async fn health(&self) -> Result<&'static str, String> {
        Err("default health fails".into())
    }

    fn counter(&self) -> &Cell<u32>;
}

struct MemoryStore {
    counter: Cell<u32>,
}

impl Store for MemoryStore {
    #[resilient(max_attempts = 3)]
    async fn load(&self, id: u32) -> Result<String, String> {
        succeed_on(&self.counter, 2).map(|n| format!("{id}:{n}"))
    }

    #[resilient(max_attempts = 3)]
    fn save(&self, id: u32) -> Result<u32, String> {
        succeed_on(&self.counter, 3).map(|n| id * 100 + n)
    }

    #[resilient(max_attempts = 5)]
    async fn health(&self) -> Result<&'static str, String> {
        succeed_on(&self.counter, 5).map(|_| "overridden")
    }

    fn counter(&self) -> &Cell<u32> {
        &self.counter
    }
}

#[tokio::test(start_paused = true)]
async fn trait_impl_async_method() {
    let store = MemoryStore {
        counter: Cell::new(0),
    };
    assert_eq!(store.load(7).await, Ok("7:2".to_owned()));
    assert_eq!(store.counter.get(), 2);
}

#[test]
fn trait_impl_sync_method() {
    let _fast = testing::no_delays();
    let store = MemoryStore {
        counter: Cell::new(0),
    };
    assert_eq!(store.save(7), Ok(703));
    assert_eq!(store.counter.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn trait_default_async_method() {
    let store = MemoryStore {
        counter: Cell::new(0),
    };
    assert_eq!(store.ping().await, Ok(4));
    assert_eq!(store.counter.get(), 4);
}

#[tokio::test(start_paused = true)]
async fn trait_default_async_method_overridden() {
    let store = MemoryStore {
        counter: Cell::new(0),
    };
    // The override's policy (5 attempts) applies, not the default's (2).
    assert_eq!(store.health().await, Ok("overridden"));
    assert_eq!(store.counter.get(), 5);
}

// ---------------------------------------------------------------------------
// Generics, lifetimes, `impl Trait` arguments

#[resilient(max_attempts = 3)]
async fn generic_async<T, F>(make: F, counter: &Cell<u32>) -> Result<T, String>
where
    T: Clone + std::fmt::Debug,
    F: Fn(u32) -> Option<T>,
{
    counter.set(counter.get() + 1);
    make(counter.get()).ok_or_else(|| format!("nothing on attempt {}", counter.get()))
}

#[resilient(max_attempts = 3)]
fn generic_sync<T: Default + PartialEq, const N: usize>(
    values: &[T; N],
    counter: &Cell<u32>,
) -> Result<usize, String>
where
    [T; N]: std::fmt::Debug,
{
    counter.set(counter.get() + 1);
    let index = counter.get() as usize - 1;
    match values.get(index) {
        Some(value) if *value != T::default() => Ok(index),
        _ => Err(format!("default at {index}")),
    }
}

#[tokio::test(start_paused = true)]
async fn generic_async_fn_with_where_clause() {
    let counter = Cell::new(0);
    let result = generic_async(|n| (n == 2).then(|| vec![n]), &counter).await;
    assert_eq!(result, Ok(vec![2]));
    assert_eq!(counter.get(), 2);
}

#[test]
fn generic_sync_fn_with_bounds_and_const_generic() {
    let _fast = testing::no_delays();
    let counter = Cell::new(0);
    assert_eq!(generic_sync(&[0u8, 0, 9], &counter), Ok(2));
    assert_eq!(counter.get(), 3);
    let counter = Cell::new(0);
    assert_eq!(
        generic_sync(&[0u8; 5], &counter),
        Err("default at 2".to_owned())
    );
    assert_eq!(counter.get(), 3);
}

struct Document {
    text: String,
    reads: Cell<u32>,
}

impl Document {
    #[resilient(max_attempts = 3)]
    async fn first_word<'a>(&'a self) -> Result<&'a str, String> {
        succeed_on(&self.reads, 2)?;
        self.text
            .split_whitespace()
            .next()
            .ok_or_else(|| "empty".to_owned())
    }

    #[resilient(max_attempts = 3)]
    fn last_word<'a>(&'a self) -> Result<&'a str, String> {
        succeed_on(&self.reads, 2)?;
        self.text
            .split_whitespace()
            .last()
            .ok_or_else(|| "empty".to_owned())
    }
}

#[tokio::test(start_paused = true)]
async fn lifetime_bound_method_returns_a_borrow_async() {
    let doc = Document {
        text: "hello brave world".into(),
        reads: Cell::new(0),
    };
    let word: &str = doc.first_word().await.unwrap();
    assert_eq!(word, "hello");
    assert_eq!(doc.reads.get(), 2);
}

#[test]
fn lifetime_bound_method_returns_a_borrow_sync() {
    let _fast = testing::no_delays();
    let doc = Document {
        text: "hello brave world".into(),
        reads: Cell::new(0),
    };
    assert_eq!(doc.last_word(), Ok("world"));
    assert_eq!(doc.reads.get(), 2);
}

#[resilient(max_attempts = 3)]
async fn impl_arg_async(name: impl AsRef<str>, counter: &Cell<u32>) -> Result<usize, String> {
    succeed_on(counter, 2)?;
    Ok(name.as_ref().len())
}

#[resilient(max_attempts = 3)]
fn impl_arg_sync(name: impl AsRef<str> + Display, counter: &Cell<u32>) -> Result<String, String> {
    succeed_on(counter, 3)?;
    Ok(format!("{name}/{}", name.as_ref().len()))
}

#[tokio::test(start_paused = true)]
async fn impl_trait_argument_async() {
    let counter = Cell::new(0);
    assert_eq!(impl_arg_async(String::from("four"), &counter).await, Ok(4));
    assert_eq!(counter.get(), 2);
}

#[test]
fn impl_trait_argument_sync() {
    let _fast = testing::no_delays();
    let counter = Cell::new(0);
    assert_eq!(impl_arg_sync("abc", &counter), Ok("abc/3".to_owned()));
    assert_eq!(counter.get(), 3);
}

// ---------------------------------------------------------------------------
// Return types: `io::Result`, generic errors, `impl Trait`

/// `io::Result` works as is, including the library's own `Elapsed`.
#[resilient(max_attempts = 3, timeout = "1s")]
async fn io_async(counter: &Cell<u32>) -> std::io::Result<u32> {
    counter.set(counter.get() + 1);
    match counter.get() {
        1 => Err(std::io::Error::from(std::io::ErrorKind::Interrupted)),
        2 => {
            // Times out: becomes `io::Error` of kind `TimedOut`, retried.
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            Ok(0)
        }
        n => Ok(n),
    }
}

#[resilient(max_attempts = 2, retry_if = |e: &std::io::Error| e.kind() == std::io::ErrorKind::Interrupted)]
fn io_sync(counter: &Cell<u32>) -> std::io::Result<u32> {
    counter.set(counter.get() + 1);
    Err(std::io::Error::from(if counter.get() == 1 {
        std::io::ErrorKind::Interrupted
    } else {
        std::io::ErrorKind::NotFound
    }))
}

#[tokio::test(start_paused = true)]
async fn io_result_async_with_timeout() {
    let counter = Cell::new(0);
    assert_eq!(io_async(&counter).await.unwrap(), 3);
    assert_eq!(counter.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn io_result_async_timeout_is_timed_out_kind() {
    #[resilient(max_attempts = 2, backoff = "none", timeout = "10ms")]
    async fn hangs(counter: &Cell<u32>) -> std::io::Result<()> {
        counter.set(counter.get() + 1);
        std::future::pending::<()>().await;
        Ok(())
    }
    let counter = Cell::new(0);
    let err = hangs(&counter).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(counter.get(), 2);
}

#[test]
fn io_result_sync() {
    let _fast = testing::no_delays();
    let counter = Cell::new(0);
    assert_eq!(
        io_sync(&counter).unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    assert_eq!(counter.get(), 2);
}

#[derive(Debug, PartialEq)]
enum Parse<T> {
    Transient,
    Partial(T),
    Fatal { reason: &'static str },
}

#[resilient(max_attempts = 5, retry_on = [Transient, Partial])]
async fn parse_async<T: Copy>(
    steps: &[Result<T, Parse<T>>],
    counter: &Cell<u32>,
) -> Result<T, Parse<T>> {
    let step = counter.get() as usize;
    counter.set(counter.get() + 1);
    match &steps[step] {
        Ok(v) => Ok(*v),
        Err(Parse::Transient) => Err(Parse::Transient),
        Err(Parse::Partial(v)) => Err(Parse::Partial(*v)),
        Err(Parse::Fatal { reason }) => Err(Parse::Fatal { reason }),
    }
}

#[resilient(max_attempts = 5, no_retry_on = [Fatal])]
fn parse_sync<T: Copy>(steps: &[Result<T, Parse<T>>], counter: &Cell<u32>) -> Result<T, Parse<T>> {
    let step = counter.get() as usize;
    counter.set(counter.get() + 1);
    match &steps[step] {
        Ok(v) => Ok(*v),
        Err(Parse::Transient) => Err(Parse::Transient),
        Err(Parse::Partial(v)) => Err(Parse::Partial(*v)),
        Err(Parse::Fatal { reason }) => Err(Parse::Fatal { reason }),
    }
}

#[tokio::test(start_paused = true)]
async fn generic_error_type_with_retry_on_variants() {
    let counter = Cell::new(0);
    let steps = [Err(Parse::Transient), Err(Parse::Partial(1u8)), Ok(2u8)];
    assert_eq!(parse_async(&steps, &counter).await, Ok(2));
    assert_eq!(counter.get(), 3);

    let counter = Cell::new(0);
    let steps = [
        Err(Parse::Partial(1i64)),
        Err(Parse::Fatal { reason: "bad" }),
        Ok(3),
    ];
    assert_eq!(
        parse_async(&steps, &counter).await,
        Err(Parse::Fatal { reason: "bad" })
    );
    assert_eq!(counter.get(), 2, "`Fatal` is not in `retry_on`");
}

#[test]
fn generic_error_type_with_no_retry_on_variants() {
    let _fast = testing::no_delays();
    let counter = Cell::new(0);
    let steps = [
        Err(Parse::Transient),
        Err(Parse::Fatal { reason: "x" }),
        Ok('c'),
    ];
    assert_eq!(
        parse_sync(&steps, &counter),
        Err(Parse::Fatal { reason: "x" })
    );
    assert_eq!(counter.get(), 2);
}

#[resilient(max_attempts = 3)]
async fn impl_return_async(counter: &Cell<u32>) -> Result<impl Display, String> {
    let n = succeed_on(counter, 2)?;
    Ok(format!("attempt #{n}"))
}

#[resilient(max_attempts = 3)]
fn impl_return_sync(counter: &Cell<u32>) -> Result<impl Display + use<>, String> {
    let n = succeed_on(counter, 3)?;
    Ok(n * 10)
}

#[tokio::test(start_paused = true)]
async fn impl_trait_in_return_type_async() {
    let counter = Cell::new(0);
    let shown = impl_return_async(&counter).await.unwrap().to_string();
    assert_eq!(shown, "attempt #2");
}

#[test]
fn impl_trait_in_return_type_sync() {
    let _fast = testing::no_delays();
    let counter = Cell::new(0);
    assert_eq!(impl_return_sync(&counter).unwrap().to_string(), "30");
    assert_eq!(counter.get(), 3);
}

// ---------------------------------------------------------------------------
// `?` and `return` end one attempt, not the call

#[derive(Debug, PartialEq)]
enum StepError {
    Parse(std::num::ParseIntError),
    Early(u32),
    Timeout,
}

impl From<std::num::ParseIntError> for StepError {
    fn from(e: std::num::ParseIntError) -> Self {
        StepError::Parse(e)
    }
}

impl From<Elapsed> for StepError {
    fn from(_: Elapsed) -> Self {
        StepError::Timeout
    }
}

const INPUTS: [&str; 4] = ["x", "early", "12", "13"];

#[resilient(max_attempts = 4, timeout = "1s")]
async fn question_mark_async(counter: &Cell<u32>) -> Result<u32, StepError> {
    let attempt = counter.get();
    counter.set(attempt + 1);
    let input = INPUTS[attempt as usize];
    if input == "early" {
        return Err(StepError::Early(attempt));
    }
    // `?` converts through `From` into the declared error type.
    let n: u32 = input.parse()?;
    tokio::task::yield_now().await;
    Ok(n)
}

#[resilient(max_attempts = 4)]
fn question_mark_sync(counter: &Cell<u32>) -> Result<u32, StepError> {
    let attempt = counter.get();
    counter.set(attempt + 1);
    let input = INPUTS[attempt as usize];
    if input == "early" {
        return Err(StepError::Early(attempt));
    }
    let n: u32 = input.parse()?;
    Ok(n)
}

#[tokio::test(start_paused = true)]
async fn question_mark_and_return_end_only_the_attempt_async() {
    let counter = Cell::new(0);
    assert_eq!(question_mark_async(&counter).await, Ok(12));
    assert_eq!(counter.get(), 3);
}

#[test]
fn question_mark_and_return_end_only_the_attempt_sync() {
    let _fast = testing::no_delays();
    let counter = Cell::new(0);
    assert_eq!(question_mark_sync(&counter), Ok(12));
    assert_eq!(counter.get(), 3);
}

#[tokio::test(start_paused = true)]
async fn last_error_from_question_mark_is_returned() {
    #[resilient(max_attempts = 2)]
    async fn always_bad() -> Result<u32, StepError> {
        let n: u32 = "nope".parse()?;
        Ok(n)
    }
    assert!(matches!(always_bad().await, Err(StepError::Parse(_))));
}

// ---------------------------------------------------------------------------
// Attributes, doc comments and visibility are kept

mod api {
    use std::cell::Cell;

    use steadfast::resilient;

    /// Documented, `#[must_use]`, crate-visible: all kept by the expansion.
    #[must_use = "the lookup result tells whether it worked"]
    #[resilient(max_attempts = 3)]
    #[inline]
    pub(crate) fn lookup(counter: &Cell<u32>) -> Result<u32, String> {
        super::succeed_on(counter, 2)
    }

    /// Attributes before and after `#[resilient]`.
    #[inline]
    #[resilient(max_attempts = 2)]
    #[must_use = "the lookup result tells whether it worked"]
    pub(crate) async fn lookup_async(counter: &Cell<u32>) -> Result<u32, String> {
        super::succeed_on(counter, 2)
    }
}

#[test]
#[deny(unused_must_use)]
fn attributes_and_visibility_are_kept_sync() {
    let _fast = testing::no_delays();
    let counter = Cell::new(0);
    let result = api::lookup(&counter);
    assert_eq!(result, Ok(2));
}

#[tokio::test(start_paused = true)]
async fn attributes_and_visibility_are_kept_async() {
    let counter = Cell::new(0);
    assert_eq!(api::lookup_async(&counter).await, Ok(2));
}

// ---------------------------------------------------------------------------
// Send: annotated futures can be spawned on a multi-threaded runtime

#[resilient(max_attempts = 3, backoff = "none")]
async fn spawned_free(counter: Arc<AtomicU32>) -> Result<u32, String> {
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::task::yield_now().await;
    if n < 3 {
        Err(format!("busy {n}"))
    } else {
        Ok(n)
    }
}

struct SharedService {
    hits: AtomicU32,
}

impl SharedService {
    #[resilient(max_attempts = 4, backoff = "none")]
    async fn hit(&self, fail_until: u32) -> Result<u32, String> {
        let n = self.hits.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::task::yield_now().await;
        if n < fail_until {
            Err("not yet".into())
        } else {
            Ok(n)
        }
    }
}

trait Heartbeat {
    fn beats(&self) -> &AtomicU32;

    #[resilient(max_attempts = 3, backoff = "none")]
    async fn beat(&self) -> Result<u32, String> {
        let n = self.beats().fetch_add(1, Ordering::SeqCst) + 1;
        tokio::task::yield_now().await;
        if n < 2 { Err("skipped".into()) } else { Ok(n) }
    }
}

impl Heartbeat for SharedService {
    fn beats(&self) -> &AtomicU32 {
        &self.hits
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_free_async_fn() {
    let counter = Arc::new(AtomicU32::new(0));
    let handle = tokio::spawn(spawned_free(Arc::clone(&counter)));
    assert_eq!(handle.await.unwrap(), Ok(3));
    assert_eq!(counter.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_ref_self_method_on_arc() {
    let service = Arc::new(SharedService {
        hits: AtomicU32::new(0),
    });
    let handle = tokio::spawn({
        let service = Arc::clone(&service);
        async move { service.hit(4).await }
    });
    assert_eq!(handle.await.unwrap(), Ok(4));
    assert_eq!(service.hits.load(Ordering::SeqCst), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_trait_default_method() {
    let service = Arc::new(SharedService {
        hits: AtomicU32::new(0),
    });
    let handle = tokio::spawn({
        let service = Arc::clone(&service);
        async move { service.beat().await }
    });
    assert_eq!(handle.await.unwrap(), Ok(2));
    assert_eq!(service.hits.load(Ordering::SeqCst), 2);
}

fn assert_send<T: Send>(_: &T) {}

/// The error is not `Send`, but it is created after the body's last await
/// and the library has no reason to hold it across its own backoff sleep,
/// so the future should still be `Send`.
#[resilient(max_attempts = 3, base_delay = "10ms")]
async fn rc_error(counter: Arc<AtomicU32>) -> Result<u32, Rc<str>> {
    tokio::task::yield_now().await;
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    if n < 3 {
        Err(Rc::from(format!("try {n}")))
    } else {
        Ok(n)
    }
}

#[resilient(max_attempts = 3, base_delay = "10ms", on_retry = |event| assert!(event.attempt() < 3))]
async fn rc_error_with_hook() -> Result<(), Rc<str>> {
    Err(Rc::from("always"))
}

/// A non-`Send` error that can also represent the library's timeout.
#[derive(Debug)]
struct LocalError(#[allow(dead_code)] Rc<str>);

impl From<Elapsed> for LocalError {
    fn from(_: Elapsed) -> Self {
        LocalError(Rc::from("timed out"))
    }
}

#[resilient(max_attempts = 3, base_delay = "10ms", timeout = "1s", deadline = "5s")]
async fn local_error_with_timeouts(counter: Arc<AtomicU32>) -> Result<u32, LocalError> {
    tokio::task::yield_now().await;
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    if n < 2 {
        Err(LocalError(Rc::from("first")))
    } else {
        Ok(n)
    }
}

#[test]
fn spawned_futures_are_send() {
    assert_send(&spawned_free(Arc::new(AtomicU32::new(0))));
    let service = SharedService {
        hits: AtomicU32::new(0),
    };
    assert_send(&service.hit(1));
    assert_send(&service.beat());
}

#[tokio::test(start_paused = true)]
async fn future_is_send_even_with_a_non_send_error() {
    let counter = Arc::new(AtomicU32::new(0));
    let future = rc_error(Arc::clone(&counter));
    let hooked = rc_error_with_hook();
    let with_timeouts = local_error_with_timeouts(Arc::new(AtomicU32::new(0)));
    // Compile-time checks: the library does not hold the error across its
    // own backoff sleep.
    assert_send(&future);
    assert_send(&hooked);
    assert_send(&with_timeouts);
    // The output is not `Send`, so run them here: they still behave.
    assert_eq!(future.await, Ok(3));
    assert_eq!(counter.load(Ordering::SeqCst), 3);
    assert_eq!(hooked.await, Err(Rc::from("always")));
    assert_eq!(with_timeouts.await.unwrap(), 2);
}
