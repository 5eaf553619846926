use steadfast::resilient;

#[derive(Debug)]
struct FetchError;

#[resilient(concurrency = 3, max_wait = "100ms")]
async fn fetch() -> Result<(), FetchError> {
    Err(FetchError)
}

fn main() {}
