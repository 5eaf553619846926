//! The `#[resilient]` attribute of [steadfast](https://docs.rs/steadfast).
//! Use it through the `steadfast` crate, which re-exports it together with
//! the runtime the expansion calls.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod args;
mod block;
mod entry;
mod expand;
#[cfg(test)]
mod fuzz;
mod instrumented;
mod item;
mod operation;
mod validate;
mod values;

/// Makes a function resilient: retries with backoff and jitter, a retry
/// budget, timeouts, a deadline, and (with the protection keys) a circuit
/// breaker, a bulkhead and a rate limit.
///
/// ```
/// use steadfast::{Elapsed, resilient};
///
/// #[derive(Debug)]
/// enum FetchError { Io(std::io::Error), Timeout(Elapsed), NotFound }
/// impl From<Elapsed> for FetchError {
///     fn from(e: Elapsed) -> Self { FetchError::Timeout(e) }
/// }
///
/// #[resilient(max_attempts = 5, backoff = "exponential", jitter = "full",
///             timeout = "2s", retry_on = [Io, Timeout])]
/// async fn fetch(url: &str) -> Result<String, FetchError> {
///     // one attempt: `?` and `return` end this attempt, not the call
///     Err(FetchError::NotFound)
/// }
/// ```
///
/// The function must return `Result<T, E>` (or an alias such as
/// `io::Result<T>`). One attempt is one run of the body as written; each
/// attempt borrows the arguments, so a body that moves a non-`Copy`
/// argument out cannot be retried and fails to compile ("value moved here,
/// in previous iteration of loop"): borrow or clone it instead. The
/// signature, attributes and visibility are kept exactly.
///
/// Two shapes cannot be retried: a method returning a mutable borrow of
/// `self` (`&'a mut self -> Result<&'a mut T, E>`), which the borrow checker
/// rejects because one attempt's borrow would escape the loop; and
/// `#[track_caller]` on a plain `fn`, rejected with an explanation because
/// its body runs in a closure per attempt, which `#[track_caller]` does not
/// reach on stable Rust.
///
/// ## With `#[tracing::instrument]`
///
/// The order of the two attributes chooses the spans. Written above
/// `#[tracing::instrument]`, `#[resilient]` is one span around the whole
/// call (with the runtime's `tracing` feature, the `steadfast.call` span
/// and its `steadfast.attempt` spans are inside it). Written below it
/// (instrument expands first), instrument's span is made once per attempt
/// (inside that attempt's `steadfast.attempt`), as OpenTelemetry asks of a
/// client that resends; the
/// `move`s instrument puts around the body are taken out, so each attempt
/// borrows the arguments (owned ones included, in plain and
/// `#[async_trait]` methods) as it does without instrument. In an
/// `#[async_trait]` method taking `&mut self` or `self`, instrument needs
/// `skip(self)` there: async-trait moves `self` into its future once per
/// call, before the span of an attempt could record it.
///
/// ```ignore
/// #[tracing::instrument(skip(self), err)]   // one span per attempt
/// #[resilient(max_attempts = 3)]
/// async fn get(&self, key: String) -> Result<Item, StoreError> { .. }
/// ```
///
/// # Keys
///
/// All keys are optional. Values are checked at compile time; every mistake
/// is reported at once, on the offending token.
///
/// | key | value | default |
/// |---|---|---|
/// | `max_attempts` | integer >= 1, the first attempt included | `3` |
/// | `backoff` | `"exponential"` `"fixed"` `"linear"` `"fibonacci"` `"none"` | `"exponential"` |
/// | `base_delay` | duration: the first retry's delay before jitter | `"100ms"` |
/// | `max_delay` | duration: cap on one delay, before jitter | `"20s"` |
/// | `multiplier` | float >= 1.0 (exponential only) | `2.0` |
/// | `jitter` | `"full"` `"equal"` `"decorrelated"` `"none"`, or a factor in (0, 1] | `"full"` |
/// | `timeout` | duration per attempt (`async fn` only) | none |
/// | `deadline` | duration for the whole call | none |
/// | `retry_on` | `[Variant, ...]`: retry only these errors | every error |
/// | `no_retry_on` | `[Variant, ...]`: retry all but these | — |
/// | `retry_if` | `Fn(&E) -> bool` | — |
/// | `breaker_if` | `Fn(&E) -> bool`, with `circuit_breaker` | what is retried |
/// | `retry_after` | `Fn(&E) -> Option<Duration>`: a server-suggested delay | — |
/// | `budget` | `"off"`, or `&RetryBudget` (evaluated once per call) | one budget per function |
/// | `concurrency` | integer >= 1, `"adaptive"`, or `&Bulkhead` / `&AdaptiveLimit` (evaluated once per call) | unlimited |
/// | `rate_limit` | `"N/s"` `"N/min"` `"N/h"`, any period `"N/250ms"`, or `&RateLimiter` (evaluated once per call) | unlimited |
/// | `burst` | integer >= 1, with an inline `rate_limit` | N |
/// | `max_wait` | duration: longest wait for a permit or token | unbounded |
/// | `circuit_breaker` | bare word, `circuit_breaker(...)`, or `&CircuitBreaker` (evaluated once per call) | off |
/// | `on_retry` | `Fn(&RetryEvent<'_, E>)`, called before each backoff sleep; in async code also `async \|event\| ..`, awaited | — |
/// | `fallback` | `FnOnce(E) -> Result<T, E>`, applied to the final error; in async code also `async \|e\| ..`, awaited | — |
/// | `name` | string: the call site's name in events | `module_path::fn_name` |
/// | `attempt` | a name: binds each attempt's `Attempt` (number, time left, call key) in the body | — |
/// | `crate` | string path to the facade | `"::steadfast"` |
///
/// Durations are strings with a unit: `"250ms"`, `"2s"`, `"1m30s"`.
///
/// ## Backoff and jitter
///
/// The delay before retry n (n = 1, 2, ...) is `base·multiplier^(n-1)`
/// (exponential), `base` (fixed), `base·n` (linear), `base·fib(n)` with
/// fib = 1, 1, 2, 3, 5, ... (fibonacci) or 0 (none), capped at `max_delay`;
/// jitter then spreads it without ever exceeding the cap: `full` draws from
/// `U(0, d)`, `equal` from `d/2 + U(0, d/2)`, `decorrelated` from
/// `min(cap, U(base, prev·3))`, a factor `f` from `d·U(1-f, 1+f)`.
///
/// ```
/// # use steadfast::resilient;
/// # #[derive(Debug)] struct Busy;
/// #[resilient(max_attempts = 4, backoff = "linear", base_delay = "50ms",
///             max_delay = "1s", jitter = 0.1)]
/// fn reserve_seat(seat: u32) -> Result<u32, Busy> { Ok(seat) }
/// # assert_eq!(reserve_seat(7).unwrap(), 7);
/// ```
///
/// ## Which errors are retried
///
/// By default every error. A bare name in `retry_on` / `no_retry_on` is a
/// variant of the declared error type (`Io` means `FetchError::Io`, of any
/// variant kind); a path with `::` is used as written. `retry_if` takes any
/// predicate; it may use the function's arguments.
///
/// ```
/// # use steadfast::resilient;
/// #[derive(Debug)]
/// enum DbError { Deadlock, Conflict { table: String }, Syntax(String) }
///
/// #[resilient(no_retry_on = [Syntax])]
/// fn transfer() -> Result<(), DbError> { Err(DbError::Syntax("SELEKT".into())) }
///
/// #[resilient(retry_if = |e: &std::io::Error| e.kind() == std::io::ErrorKind::Interrupted)]
/// fn read_config() -> std::io::Result<String> { Ok(String::new()) }
/// # assert!(transfer().is_err());
/// ```
///
/// ## Time limits
///
/// `timeout` cancels an attempt that runs too long (its future is dropped,
/// so `Drop` cleanup in the body runs) and fails it with `E::from(Elapsed)`.
/// `deadline` bounds the whole call from its start: no sleep or attempt
/// starts that would end after it, and in an `async fn` an attempt still
/// running at the deadline is cancelled with `E::from(Elapsed)`; a plain
/// `fn` checks it between attempts. `retry_after` replaces the computed
/// delay with the server's; it gives up if that would pass the deadline, or
/// if the server asks for longer than `max_delay` (a server must not park
/// its callers: `Retry-After: 3600` ends the call with the error at once).
///
/// ```
/// # use steadfast::{resilient, Elapsed};
/// # use std::time::Duration;
/// #[derive(Debug)]
/// enum ApiError { Timeout(Elapsed), Throttled { retry_in: Duration } }
/// impl From<Elapsed> for ApiError { fn from(e: Elapsed) -> Self { ApiError::Timeout(e) } }
///
/// #[resilient(timeout = "500ms", deadline = "5s", retry_after = |e: &ApiError| match e {
///     ApiError::Throttled { retry_in } => Some(*retry_in),
///     _ => None,
/// })]
/// async fn quote() -> Result<u64, ApiError> { Ok(42) }
/// ```
///
/// ## Budget
///
/// Each call deposits into a token bucket and each retry withdraws; an
/// empty bucket ends the call with its last error. The default is one
/// `RetryBudget::new()` per function (20% of calls plus 10 retries a second
/// over 10 s). Share one across functions with `budget = &MY_BUDGET`, or
/// turn it off with `budget = "off"`.
///
/// ```
/// # use steadfast::{resilient, RetryBudget};
/// static PAYMENTS: RetryBudget = RetryBudget::new().ratio(0.1);
///
/// #[resilient(budget = &PAYMENTS)]
/// fn charge(cents: u64) -> Result<u64, String> { Ok(cents) }
///
/// #[resilient(budget = &PAYMENTS)]
/// fn refund(cents: u64) -> Result<u64, String> { Ok(cents) }
/// # assert_eq!(charge(5), Ok(5));
/// ```
///
/// ## Protection: circuit breaker, bulkhead, rate limit
///
/// Each attempt passes, in this order, a circuit breaker, a rate limiter
/// and a bulkhead before its `timeout` starts. A permit is held for one
/// attempt only, never during backoff sleeps. An inline value is one
/// `static` per function, shared by all its callers; an expression shares
/// one instance across functions. The library's own refusals end the call
/// at once (they are not retried) and go through `fallback`: an open
/// breaker fails with `E::from(CircuitOpen)`, a permit or token that does
/// not come within `max_wait` with `E::from(Rejected)`. A missing `From`
/// impl is a compile error naming the key that needs it.
///
/// An attempt counts as a breaker failure when it timed out or when its
/// error is one the retry classification would retry; other errors show the
/// dependency answered, and count as successes. An inline breaker trips
/// after `failure_threshold` consecutive failures (5), or, with
/// `failure_rate`, when that share of the last `window` calls (20) failed,
/// once `min_calls` (the window) were made; it stays open for `open_for`
/// (30 s) and closes when all `half_open_probes` (1) succeed. It is named
/// after its function (or the `name` key) in events and metrics. With
/// retries, an inline `failure_threshold` at or below `max_attempts` is a
/// compile error: one call failing every attempt would open the breaker.
/// `timeout` or `base_delay` not shorter than `deadline` is an error too.
///
/// `window = "10s"` computes the failure rate over the last ten seconds
/// instead of the last calls; `slow_call = "2s", slow_call_rate = 0.5`
/// also trips the breaker when half of the calls in its window took longer
/// than two seconds (resilience4j's slow-call rate).
///
/// `concurrency = "adaptive"` is an `AdaptiveLimit::gradient()` for this
/// function, as `concurrency = &LIMIT` shares one: a limit that learns the
/// dependency's capacity from each attempt's latency, and from its drops
/// (a timeout, or an error the breaker would count: the retried ones, or
/// `breaker_if`'s). A call dropped mid-flight gives its slot back and
/// teaches it nothing. `circuit_breaker(adaptive_throttling = 2.0)` is
/// Google SRE's client-side throttling instead of opening: it refuses
/// calls locally (`E::from(CircuitOpen)`) with probability
/// `(requests - 2 · accepts) / (requests + 1)` over two minutes (or longer
/// than a `timeout` above that); `k` is at least 1.0, and no other breaker
/// key but `key` goes beside it.
///
/// `circuit_breaker(key = host, ...)` keeps one breaker per value of the
/// key (any `AsRef<str>`: a host, a tenant), evaluated once per call, so
/// one provider's outage does not open another's breaker. At most
/// `Keyed::DEFAULT_MAX_KEYS` (10 000) breakers are kept; the least recently
/// used are evicted past that (an evicted breaker comes back closed), so a
/// flood of distinct keys cannot grow memory without bound.
///
/// ```
/// # use steadfast::{resilient, Bulkhead, CircuitBreaker, CircuitOpen, RateLimiter, Rejected};
/// # use std::time::Duration;
/// #[derive(Debug)]
/// enum DbError { Down, Busy(Rejected), Open(CircuitOpen) }
/// impl From<Rejected> for DbError { fn from(e: Rejected) -> Self { DbError::Busy(e) } }
/// impl From<CircuitOpen> for DbError { fn from(e: CircuitOpen) -> Self { DbError::Open(e) } }
///
/// // inline: at most 8 attempts in flight, 100 a second in bursts of 20, and
/// // a breaker that opens after 5 consecutive failures, for 30 s
/// #[resilient(concurrency = 8, rate_limit = "100/s", burst = 20, max_wait = "50ms",
///             circuit_breaker)]
/// async fn query(sql: &str) -> Result<u64, DbError> { Ok(sql.len() as u64) }
///
/// // a failure-rate breaker
/// #[resilient(circuit_breaker(failure_rate = 0.5, window = 20, min_calls = 10,
///                             open_for = "10s", half_open_probes = 2))]
/// async fn replicate(rows: u64) -> Result<u64, DbError> { Ok(rows) }
///
/// // limits that learn: as many in flight as the database serves without
/// // queueing, and a share refused locally while it rejects calls
/// #[resilient(concurrency = "adaptive", max_wait = "10ms",
///             circuit_breaker(adaptive_throttling = 2.0))]
/// async fn search(text: &str) -> Result<u64, DbError> { Ok(text.len() as u64) }
///
/// // shared by several functions
/// static POOL: Bulkhead = Bulkhead::new(4);
/// static QUOTA: RateLimiter = RateLimiter::per_minute(600);
/// static DB: CircuitBreaker = CircuitBreaker::new().failure_threshold(3)
///     .open_for(Duration::from_secs(15));
///
/// #[resilient(concurrency = &POOL, rate_limit = &QUOTA, circuit_breaker = &DB)]
/// fn read(key: &str) -> Result<String, DbError> { Ok(key.to_owned()) }
///
/// #[resilient(concurrency = &POOL, rate_limit = &QUOTA, circuit_breaker = &DB)]
/// fn write(key: &str) -> Result<(), DbError> { Ok(()) }
/// # assert_eq!(read("k").unwrap(), "k");
/// ```
///
/// ## Hooks and fallback
///
/// ```
/// # use steadfast::resilient;
/// #[resilient(
///     on_retry = |event| eprintln!("attempt {} failed: {}", event.attempt(), event.error()),
///     fallback = |_err| Ok(Vec::new()),
///     name = "recommendations",
/// )]
/// fn recommendations(user: u64) -> Result<Vec<u64>, String> {
///     Err(format!("no recommendations for {user} today"))
/// }
/// # let _fast = steadfast::testing::no_delays();
/// assert_eq!(recommendations(7), Ok(vec![]));
/// ```
///
/// ## Expressions
///
/// Expression values (`retry_if`, `retry_after`, `budget`, `on_retry`,
/// `fallback`, and the shared protection primitives) are placed inside the
/// function, so they may use its arguments and `self`. The hooks and
/// predicates are evaluated where they are needed (`retry_if` once per
/// failed attempt). The shared primitives' expressions (`budget`,
/// `circuit_breaker`, `rate_limit`, `concurrency`) are evaluated once per
/// call, before its first attempt, however many attempts follow: a lookup
/// such as `rate_limit = &PER_TENANT.get(&tenant)` is paid once, a side
/// effect happens once, and the value, with any temporary it borrows (the
/// `Arc` of that lookup), lives until the call ends. So does a borrow of
/// `self` made by a method call there (`budget = self.budget()`); a place
/// such as `&self.budget` or `&LIMITER`, which costs nothing to name, is
/// named again where it is used and borrows only for that step.
///
/// ```
/// # use steadfast::{resilient, Keyed, RateLimiter};
/// static PER_TENANT: Keyed<String, RateLimiter> = Keyed::new(|_| RateLimiter::per_second(100));
///
/// #[resilient(rate_limit = &PER_TENANT.get(tenant))]   // one lookup per call
/// async fn send(tenant: &str, body: &[u8]) -> Result<usize, std::io::Error> {
///     Ok(body.len())
/// }
/// ```
///
/// ## What an attempt knows
///
/// `attempt = name` binds each attempt's [`Attempt`](../steadfast/struct.Attempt.html)
/// to `name` in the body: its number, the time left before the `deadline`,
/// and a key that is the same for every attempt of one call (an
/// `Idempotency-Key` for a server to recognise a replay). Without the key
/// nothing is made, so an attempt that does not ask pays nothing.
///
/// ```
/// use steadfast::resilient;
///
/// #[resilient(max_attempts = 3, deadline = "2s", attempt = attempt)]
/// async fn charge(amount: u64) -> Result<u64, std::io::Error> {
///     let _idempotency_key = attempt.key().to_string();
///     let _bound_the_inner_call_by = attempt.time_left();
///     if attempt.number() < 2 { Err(std::io::Error::other("busy")) } else { Ok(amount) }
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// assert_eq!(charge(5).await.unwrap(), 5);
/// # }
/// ```
///
/// ## Renamed dependency
///
/// If the facade is renamed in `Cargo.toml` (`resilience = { package =
/// "steadfast", .. }`), say so: `#[resilient(crate = "resilience")]`.
#[proc_macro_attribute]
pub fn resilient(
    args: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    entry::resilient(args.into(), item.into()).into()
}

/// Retries a block at the call site, with the keys, defaults, checks and
/// behaviour of [`#[resilient]`](macro@resilient): the keys, then `;`, then
/// the block.
///
/// `retry!(...; async { .. })` evaluates to a future (await it);
/// `retry!(...; { .. })` runs the block at once. Either way the value is the
/// block's `Result<T, E>` after retrying, and one attempt is one run of the
/// block: `?` and `return` end the attempt, not the caller's function. The
/// block may borrow locals and `&mut self`; like an annotated function's
/// body, it cannot move out what it captures, since it runs again.
///
/// ```
/// use steadfast::{retry, Elapsed};
///
/// #[derive(Debug, PartialEq)]
/// enum ApiError { Busy, NotFound, Timeout(Elapsed) }
/// impl From<Elapsed> for ApiError {
///     fn from(e: Elapsed) -> Self { ApiError::Timeout(e) }
/// }
///
/// struct Api { calls: u32 }
/// impl Api {
///     async fn get_user(&mut self, id: u32) -> Result<String, ApiError> {
///         self.calls += 1;
///         if self.calls < 3 { Err(ApiError::Busy) } else { Ok(format!("user {id}")) }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let mut api = Api { calls: 0 };
/// let user = retry!(max_attempts = 4, timeout = "2s", retry_on = [ApiError::Busy];
///                   async { api.get_user(7).await }).await;
/// assert_eq!(user, Ok("user 7".to_owned()));
/// assert_eq!(api.calls, 3);
///
/// // A plain block runs at once; deadlines are checked between attempts.
/// let text = retry!(max_attempts = 3, base_delay = "1ms"; {
///     std::fs::read_to_string("/definitely/not/here")
/// });
/// assert!(text.is_err());
/// # }
/// ```
///
/// There is no signature to read the error type from, so `retry_on` and
/// `no_retry_on` take paths (`ApiError::Busy`), and the block's error type
/// must be known from its code (write `Ok::<_, ApiError>(v)` when only `?`
/// names it). `timeout` needs an `async` block. An inline `concurrency`,
/// `rate_limit`, `circuit_breaker` or the default budget is one `static` per
/// call site. The site's name (events, metrics, an inline breaker) is
/// `module_path:line:column` unless `name` is given.
#[proc_macro]
pub fn retry(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    entry::retry(input.into()).into()
}
