use steadfast::resilient;

#[resilient(circuit_breaker(failure_threshold = 5, failure_rate = 0.5))]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
