use steadfast::{Elapsed, resilient};

#[derive(Debug)]
struct ApiError;

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError
    }
}

// The deadline always ends the call before an attempt can time out.
#[resilient(timeout = "5s", deadline = "2s")]
async fn fetch() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
