use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

#[resilient(hedge(after = "40"))]
async fn read() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
