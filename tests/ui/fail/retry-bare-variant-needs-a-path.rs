use steadfast::retry;

#[derive(Debug)]
enum ApiError {
    Busy,
}

fn main() {
    let _ = retry!(retry_on = [Busy]; { Err::<(), _>(ApiError::Busy) });
}
