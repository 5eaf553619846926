use steadfast::{CircuitOpen, resilient};

#[derive(Debug)]
struct ApiError;

impl From<CircuitOpen> for ApiError {
    fn from(_: CircuitOpen) -> Self {
        ApiError
    }
}

// A rate of slow calls, but no duration past which a call is slow.
#[resilient(circuit_breaker(failure_rate = 0.5, slow_call_rate = 0.5))]
fn fetch() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
