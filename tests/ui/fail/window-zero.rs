use steadfast::resilient;

#[resilient(circuit_breaker(failure_rate = 0.5, window = 0))]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
