use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

#[resilient(hedge(max_extra_load = 1.5))]
async fn read() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
