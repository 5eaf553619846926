use steadfast::{CircuitBreaker, resilient};

#[derive(Debug)]
struct FetchError;

static BREAKER: CircuitBreaker = CircuitBreaker::new();

#[resilient(circuit_breaker = &BREAKER)]
async fn fetch() -> Result<(), FetchError> {
    Err(FetchError)
}

fn main() {}
