use steadfast::resilient;

#[derive(Debug)]
enum FetchError {
    Io,
    Timeout,
}

#[resilient(retry_on = [Io, Timout])]
fn fetch() -> Result<(), FetchError> {
    Err(FetchError::Timeout)
}

fn main() {
    let _ = fetch();
    let _ = FetchError::Io;
}
