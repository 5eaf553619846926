use steadfast::resilient;

#[derive(Debug)]
struct FetchError;

#[resilient(circuit_breaker)]
async fn fetch() -> Result<(), FetchError> {
    Err(FetchError)
}

fn main() {}
