use steadfast::{CircuitOpen, resilient};

#[derive(Debug)]
struct ApiError;

impl From<CircuitOpen> for ApiError {
    fn from(_: CircuitOpen) -> Self {
        ApiError
    }
}

// Breakers are kept per string key: a number must be formatted first.
#[resilient(max_attempts = 1, circuit_breaker(key = tenant_id))]
fn fetch(tenant_id: u64) -> Result<(), ApiError> {
    let _ = tenant_id;
    Ok(())
}

fn main() {}
