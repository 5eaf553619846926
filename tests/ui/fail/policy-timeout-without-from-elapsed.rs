use std::time::Duration;
use steadfast::Policy;

#[derive(Debug)]
struct FetchError;

// `timeout` needs `FetchError: From<Elapsed>`, as the attribute's key does.
static POLICY: Policy<FetchError> = Policy::new().timeout(Duration::from_secs(1));

fn main() {
    let _ = &POLICY;
}
