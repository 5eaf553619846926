use steadfast::{CircuitOpen, resilient};

#[derive(Debug)]
struct ApiError;

impl From<CircuitOpen> for ApiError {
    fn from(_: CircuitOpen) -> Self {
        ApiError
    }
}

// One call failing all five attempts would open the breaker.
#[resilient(max_attempts = 5, circuit_breaker(failure_threshold = 3))]
async fn fetch() -> Result<(), ApiError> {
    Ok(())
}

// The breaker's default threshold (5) is no higher than six attempts.
#[resilient(max_attempts = 6, circuit_breaker)]
async fn fetch_more() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
