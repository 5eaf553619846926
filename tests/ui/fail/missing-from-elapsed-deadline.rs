use steadfast::resilient;

#[derive(Debug)]
struct FetchError;

#[resilient(deadline = "10s")]
async fn fetch() -> Result<(), FetchError> {
    Err(FetchError)
}

fn main() {}
