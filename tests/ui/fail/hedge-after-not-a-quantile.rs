use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

#[resilient(hedge(after = "p9x"))]
async fn read() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
