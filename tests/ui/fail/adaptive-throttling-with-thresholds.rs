use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

impl From<steadfast::CircuitOpen> for ApiError {
    fn from(_: steadfast::CircuitOpen) -> Self {
        ApiError
    }
}

// Throttling never opens by itself: a threshold would replace it, and
// an open period or probes would have nothing to act on.
#[resilient(circuit_breaker(adaptive_throttling = 2.0, failure_threshold = 5, open_for = "30s", half_open_probes = 2))]
async fn fetch() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
