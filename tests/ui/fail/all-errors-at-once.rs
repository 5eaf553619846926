use steadfast::resilient;

#[resilient(
    max_attemps = 3,
    backoff = "fixed",
    multiplier = 0.5,
    jitter = "fulll",
    timeout = "2",
    base_delay = "30s",
    max_delay = "1s"
)]
const fn fetch() -> Result<u8, ()> {
    Ok(1)
}

fn main() {}
