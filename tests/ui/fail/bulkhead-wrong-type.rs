use steadfast::{CircuitBreaker, resilient};

static BREAKER: CircuitBreaker = CircuitBreaker::new();

#[resilient(concurrency = &BREAKER)]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
