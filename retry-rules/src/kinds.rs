//! The values chosen by name: how the delay grows (`backoff`), how it is
//! randomised (`jitter`), and when a hedge is sent (`hedge(after = ..)`). One definition for every door: the runtime
//! computes with these types (`Jitter` is its public type, re-exported),
//! the macro reads them from the attribute and names them in its
//! expansion, configuration reads them from a file, so no door maps one
//! kind onto another.

/// How the un-jittered delay grows from one retry to the next: the
/// attribute's `backoff` key (the runtime's `Backoff` constructors pick one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffKind {
    /// `base * multiplier^(n-1)`.
    Exponential,
    /// `base`.
    Fixed,
    /// `base * n`.
    Linear,
    /// `base * fib(n)`.
    Fibonacci,
    /// Zero.
    None,
}

impl BackoffKind {
    /// Every name `backoff` accepts: the one list messages, suggestions and
    /// the macro's fuzzer read.
    pub const NAMES: &[(&str, BackoffKind)] = &[
        ("exponential", BackoffKind::Exponential),
        ("fixed", BackoffKind::Fixed),
        ("linear", BackoffKind::Linear),
        ("fibonacci", BackoffKind::Fibonacci),
        ("none", BackoffKind::None),
    ];
}

/// How a backoff delay `d` (already capped at `max_delay`) is randomised.
///
/// Jitter never pushes a delay above the cap, and a delay of zero stays zero
/// (nothing is drawn for it).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Jitter {
    /// The delay as computed.
    None,
    /// `U(0, d)`: the AWS "full jitter"; the fewest total calls under contention.
    #[default]
    Full,
    /// `d/2 + U(0, d/2)`: never retries sooner than half the delay.
    Equal,
    /// `min(cap, U(base, prev * 3))`, with `prev` starting at the base delay
    /// and carried from retry to retry (exponential backoff only).
    ///
    /// The growth comes from `prev`, not from the strategy's delay `d`, which
    /// is why the attribute accepts it only with exponential backoff.
    Decorrelated,
    /// `d * U(1 - f, 1 + f)` for `f` in `(0, 1]`, clamped to the cap.
    ///
    /// An `f` above 1 is taken as 1; zero, negative or NaN as no spread.
    Proportional(f64),
}

impl Jitter {
    /// Every name `jitter` accepts (besides a factor).
    pub const NAMES: &[(&str, Jitter)] = &[
        ("full", Jitter::Full),
        ("equal", Jitter::Equal),
        ("decorrelated", Jitter::Decorrelated),
        ("none", Jitter::None),
    ];

    /// What may follow the names in a message: the other form `jitter` takes.
    pub const OR_FACTOR: &str = ", or a factor in (0, 1] such as `0.2`";
}

/// When a hedge is sent beside a slow attempt: `hedge(after = "p95")` or
/// `hedge(after = "40ms")`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HedgeAfter {
    /// After this quantile (0.95 for `"p95"`) of the call site's recent
    /// latencies.
    Quantile(f64),
    /// After a fixed delay.
    Delay(std::time::Duration),
}
