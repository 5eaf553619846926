use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

#[resilient(hedge(max_hedges = 0))]
async fn read() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
