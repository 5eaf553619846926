use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

#[resilient(hedge(after = "p100"))]
async fn read() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
