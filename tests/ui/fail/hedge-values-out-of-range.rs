use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

#[resilient(hedge(after = "p0.5", max_hedges = 11, max_extra_load = 0.0))]
async fn read() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
