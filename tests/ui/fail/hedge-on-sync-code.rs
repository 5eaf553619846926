use steadfast::{resilient, retry};

#[derive(Debug)]
struct ApiError;

#[resilient(hedge(after = "40ms"))]
fn blocking_read() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {
    let _ = retry!(hedge; { Ok::<u32, ApiError>(1) });
}
