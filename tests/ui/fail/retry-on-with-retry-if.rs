use steadfast::resilient;

#[derive(Debug)]
enum FetchError {
    Io,
    Timeout,
}

#[resilient(retry_on = [Io], retry_if = |e: &FetchError| matches!(e, FetchError::Timeout))]
fn fetch() -> Result<(), FetchError> {
    Err(FetchError::Io)
}

fn main() {}
