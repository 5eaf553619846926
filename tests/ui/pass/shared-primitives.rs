//! Primitives declared once, in `static`s, and shared by several functions.

use steadfast::{Bulkhead, CircuitBreaker, RateLimiter, RetryBudget, resilient};

static B: Bulkhead = Bulkhead::new(2);
static R: RateLimiter = RateLimiter::per_second(5).burst(2);
static C: CircuitBreaker = CircuitBreaker::new().failure_threshold(3);
static BUDGET: RetryBudget = RetryBudget::new();

#[resilient(concurrency = &B, rate_limit = &R, circuit_breaker = &C, budget = &BUDGET)]
async fn get_user(id: u32) -> std::io::Result<u32> {
    Ok(id)
}

#[resilient(concurrency = &B, rate_limit = &R, circuit_breaker = &C, budget = &BUDGET)]
fn get_order(id: u32) -> std::io::Result<u32> {
    Ok(id)
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    assert_eq!(get_user(1).await.unwrap(), 1);
    assert_eq!(get_order(2).unwrap(), 2);
    assert_eq!(B.available(), 2);
    assert_eq!(C.state(), steadfast::CircuitState::Closed);
}
