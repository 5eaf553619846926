//! The full stack on the happy path: `timeout + concurrency +
//! circuit_breaker + budget` through `#[resilient]`, against tower's
//! `ServiceBuilder` with `Timeout + ConcurrencyLimit`, then with a failsafe
//! breaker around it, then with tower's `Retry` and a `TpsBudget` policy
//! (the closest tower equivalent of the whole stack); and the same policy
//! as `steadfast::tower::ResilientLayer` around the same service.
//!
//! Same driver as `happy_path`: one `#[inline(never)]` call per iteration
//! that builds the future (for tower: `ready()` + `call()`), polls it once
//! with a no-op waker and drops it, inside a current-thread runtime context
//! (timeouts need the timer's handle; none is ever registered, since every
//! attempt completes on its first poll).
//!
//! `cargo bench -p steadfast-benches --bench full_stack`

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{BenchError, drivers, goal, raw, ready, row};
use criterion::Criterion;
use failsafe::StateMachine;
use failsafe::backoff::EqualJittered;
use failsafe::failure_policy::{ConsecutiveFailures, OrElse, SuccessRateOverTimeWindow};
use steadfast::tower::ResilientLayer;
use steadfast::{Bulkhead, CircuitBreaker, Policy, resilient};
use tower::retry::budget::{Budget, TpsBudget};
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt, service_fn};

#[resilient(timeout = "1s")]
async fn resilient_timeout(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient(timeout = "1s", concurrency = 64)]
async fn resilient_timeout_concurrency(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient(timeout = "1s", concurrency = 64, circuit_breaker)]
async fn resilient_stack(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

#[resilient(timeout = "1s", concurrency = 64, circuit_breaker, budget = "off")]
async fn resilient_stack_budget_off(x: u64) -> Result<u64, BenchError> {
    Ok(black_box(x))
}

/// tower's retry policy with a `TpsBudget`, as tower documents it: deposit
/// on success, withdraw (then back off) on failure.
#[derive(Clone)]
struct BudgetPolicy {
    budget: Arc<TpsBudget>,
}

impl<E> tower::retry::Policy<u64, u64, E> for BudgetPolicy {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _: &mut u64, result: &mut Result<u64, E>) -> Option<Self::Future> {
        match result {
            Ok(_) => {
                self.budget.deposit();
                None
            }
            Err(_) => self
                .budget
                .withdraw()
                .then(|| tokio::time::sleep(Duration::from_millis(100))),
        }
    }

    fn clone_request(&mut self, request: &u64) -> Option<u64> {
        Some(*request)
    }
}

/// failsafe's default breaker: a success rate over a time window, or 5
/// consecutive failures.
type Breaker = StateMachine<
    OrElse<SuccessRateOverTimeWindow<EqualJittered>, ConsecutiveFailures<EqualJittered>>,
    (),
>;

fn failsafe_breaker() -> Breaker {
    failsafe::Config::new().build()
}

drivers! {
    run_raw => raw;
    run_resilient_timeout => resilient_timeout;
    run_resilient_timeout_concurrency => resilient_timeout_concurrency;
    run_resilient_stack => resilient_stack;
    run_resilient_stack_budget_off => resilient_stack_budget_off;
}

/// One call through a tower service: wait until ready, call, await.
#[inline(never)]
fn run_tower<S>(service: &mut S, x: u64) -> Result<u64, BoxError>
where
    S: Service<u64, Response = u64>,
    S::Error: Into<BoxError>,
{
    ready(async {
        let service = service.ready().await.map_err(Into::into)?;
        service.call(x).await.map_err(Into::into)
    })
}

/// The same with a failsafe breaker admitting the call and recording it.
#[inline(never)]
fn run_tower_failsafe<S>(breaker: &Breaker, service: &mut S, x: u64) -> Result<u64, BoxError>
where
    S: Service<u64, Response = u64>,
    S::Error: Into<BoxError>,
{
    ready(async {
        if !breaker.is_call_permitted() {
            return Err(BoxError::from(BenchError::Open));
        }
        let outcome = async {
            let service = service.ready().await.map_err(Into::into)?;
            service.call(x).await.map_err(Into::into)
        }
        .await;
        match outcome {
            Ok(_) => breaker.on_success(),
            Err(_) => breaker.on_error(),
        }
        outcome
    })
}

fn timeout_only() -> impl Service<u64, Response = u64, Error = BoxError> {
    ServiceBuilder::new()
        .timeout(Duration::from_secs(1))
        .service_fn(raw)
}

fn timeout_concurrency() -> impl Service<u64, Response = u64, Error = BoxError> + Clone {
    ServiceBuilder::new()
        .concurrency_limit(64)
        .timeout(Duration::from_secs(1))
        .service_fn(raw)
}

fn with_retry(
    budget: Arc<TpsBudget>,
) -> impl Service<u64, Response = u64, Error = BoxError> + Clone {
    ServiceBuilder::new()
        .retry(BudgetPolicy { budget })
        .concurrency_limit(64)
        .timeout(Duration::from_secs(1))
        .service_fn(raw)
}

/// The same policy as a tower layer (`steadfast::tower`): retries and the
/// default budget alone, then the attribute's full stack.
static LAYER_DEFAULTS: Policy<BoxError> = Policy::new();
static LAYER_BULKHEAD: Bulkhead = Bulkhead::new(64);
static LAYER_BREAKER: CircuitBreaker = CircuitBreaker::new();
static LAYER_STACK: Policy<BoxError> = Policy::new()
    .timeout(Duration::from_secs(1))
    .concurrency(&LAYER_BULKHEAD)
    .circuit_breaker(&LAYER_BREAKER);

fn layered(
    policy: &'static Policy<BoxError>,
) -> impl Service<u64, Response = u64, Error = BoxError> + Clone {
    ResilientLayer::new(policy).layer(service_fn(raw))
}

fn bench(c: &mut Criterion, runtime: &tokio::runtime::Runtime) {
    let mut group = c.benchmark_group("full_stack");
    group.bench_function("raw", |b| b.iter(|| run_raw(black_box(7))));
    group.bench_function("resilient_timeout", |b| {
        b.iter(|| run_resilient_timeout(black_box(7)))
    });
    group.bench_function("tower_timeout", |b| {
        let mut service = timeout_only();
        b.iter(|| run_tower(&mut service, black_box(7)))
    });
    group.bench_function("resilient_timeout_concurrency", |b| {
        b.iter(|| run_resilient_timeout_concurrency(black_box(7)))
    });
    group.bench_function("tower_timeout_concurrency", |b| {
        let mut service = timeout_concurrency();
        b.iter(|| run_tower(&mut service, black_box(7)))
    });
    group.bench_function("resilient_stack", |b| {
        b.iter(|| run_resilient_stack(black_box(7)))
    });
    group.bench_function("resilient_stack_budget_off", |b| {
        b.iter(|| run_resilient_stack_budget_off(black_box(7)))
    });
    group.bench_function("tower_timeout_concurrency+failsafe", |b| {
        let breaker = failsafe_breaker();
        let mut service = timeout_concurrency();
        b.iter(|| run_tower_failsafe(&breaker, &mut service, black_box(7)))
    });
    group.bench_function("tower_retry_budget+failsafe", |b| {
        let breaker = failsafe_breaker();
        let mut service = with_retry(Arc::new(TpsBudget::default()));
        b.iter(|| run_tower_failsafe(&breaker, &mut service, black_box(7)))
    });
    group.bench_function("steadfast_layer", |b| {
        let mut service = layered(&LAYER_DEFAULTS);
        b.iter(|| run_tower(&mut service, black_box(7)))
    });
    group.bench_function("steadfast_layer_stack", |b| {
        let mut service = layered(&LAYER_STACK);
        b.iter(|| run_tower(&mut service, black_box(7)))
    });
    group.finish();

    // Two threads calling at once: the same function (its statics), or
    // clones of one tower service (one semaphore, one breaker, one budget).
    let handle = runtime.handle();
    let mut group = c.benchmark_group("full_stack_2_threads");
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| {
            common::contended(&(), 2, iters, |()| {
                black_box(run_raw(black_box(7))).ok();
            })
        })
    });
    group.bench_function("resilient_stack", |b| {
        b.iter_custom(|iters| {
            common::contended_with(
                2,
                iters,
                || handle.enter(),
                |_| {
                    black_box(run_resilient_stack(black_box(7))).ok();
                },
            )
        })
    });
    group.bench_function("steadfast_layer_stack", |b| {
        let service = layered(&LAYER_STACK);
        b.iter_custom(|iters| {
            common::contended_with(
                2,
                iters,
                || (handle.enter(), service.clone()),
                |(_, service)| {
                    black_box(run_tower(service, black_box(7))).ok();
                },
            )
        })
    });
    group.bench_function("tower_retry_budget+failsafe", |b| {
        let breaker = failsafe_breaker();
        let service = with_retry(Arc::new(TpsBudget::default()));
        b.iter_custom(|iters| {
            common::contended_with(
                2,
                iters,
                || (handle.enter(), service.clone()),
                |(_, service)| {
                    black_box(run_tower_failsafe(&breaker, service, black_box(7))).ok();
                },
            )
        })
    });
    group.finish();
}

fn main() {
    let since = SystemTime::now();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let _context = runtime.enter();

    let mut criterion = common::criterion();
    bench(&mut criterion, &runtime);
    criterion.final_summary();

    common::print_table(
        "full_stack",
        "raw",
        &[
            row("raw"),
            goal("resilient_timeout", "tower_timeout", 1.0),
            row("tower_timeout"),
            goal(
                "resilient_timeout_concurrency",
                "tower_timeout_concurrency",
                1.0,
            ),
            row("tower_timeout_concurrency"),
            goal("resilient_stack", "tower_timeout_concurrency", 1.0),
            row("resilient_stack_budget_off"),
            row("tower_timeout_concurrency+failsafe"),
            row("tower_retry_budget+failsafe"),
            row("steadfast_layer"),
            goal("steadfast_layer_stack", "tower_retry_budget+failsafe", 1.0),
        ],
        since,
    );
    common::print_table(
        "full_stack_2_threads",
        "raw",
        &[
            row("raw"),
            goal("resilient_stack", "tower_retry_budget+failsafe", 1.0),
            goal("steadfast_layer_stack", "tower_retry_budget+failsafe", 1.0),
            row("tower_retry_budget+failsafe"),
        ],
        since,
    );
}
