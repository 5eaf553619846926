use steadfast::resilient;

#[resilient(circuit_breaker(failure_treshold = 3))]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
