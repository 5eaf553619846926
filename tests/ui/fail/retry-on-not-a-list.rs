use steadfast::resilient;

#[derive(Debug)]
enum FetchError {
    Io,
}

#[resilient(retry_on = Io)]
fn fetch() -> Result<(), FetchError> {
    Err(FetchError::Io)
}

fn main() {}
