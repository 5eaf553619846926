use steadfast::resilient;

#[resilient(circuit_breaker(failure_threshold = 5, window = 20))]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
