use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

#[resilient(hedge(max_hedge = 2))]
async fn read() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
