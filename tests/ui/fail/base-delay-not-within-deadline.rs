use steadfast::{Elapsed, resilient};

#[derive(Debug)]
struct ApiError;

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError
    }
}

// The first retry would wait past the deadline.
#[resilient(base_delay = "10s", max_delay = "30s", deadline = "2s")]
async fn fetch() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
