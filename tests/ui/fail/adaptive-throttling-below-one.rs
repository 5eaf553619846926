use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

impl From<steadfast::CircuitOpen> for ApiError {
    fn from(_: steadfast::CircuitOpen) -> Self {
        ApiError
    }
}

#[resilient(circuit_breaker(adaptive_throttling = 0))]
async fn never_throttled_enough() -> Result<(), ApiError> {
    Ok(())
}

#[resilient(circuit_breaker(adaptive_throttling = 0.5))]
async fn refuses_what_is_accepted() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
