use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

impl From<steadfast::CircuitOpen> for ApiError {
    fn from(_: steadfast::CircuitOpen) -> Self {
        ApiError
    }
}

#[resilient(circuit_breaker(adaptive_throttling = "2"))]
async fn fetch() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
