use steadfast::resilient;

#[derive(Debug)]
struct FetchError;

#[resilient(timeout = "2s")]
async fn fetch() -> Result<(), FetchError> {
    Err(FetchError)
}

fn main() {}
