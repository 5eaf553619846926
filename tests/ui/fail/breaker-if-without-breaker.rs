use steadfast::resilient;

#[derive(Debug)]
enum ApiError {
    Down,
}

// Nothing to count for: there is no breaker.
#[resilient(breaker_if = |e| matches!(e, ApiError::Down))]
fn fetch() -> Result<(), ApiError> {
    Err(ApiError::Down)
}

fn main() {}
