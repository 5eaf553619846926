use steadfast::resilient;

#[derive(Debug)]
enum FetchError {
    Io,
    Fatal,
}

#[resilient(retry_on = [Io], no_retry_on = [Fatal])]
fn fetch() -> Result<(), FetchError> {
    Err(FetchError::Fatal)
}

fn main() {}
