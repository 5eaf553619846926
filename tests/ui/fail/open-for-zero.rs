use steadfast::resilient;

#[resilient(circuit_breaker(open_for = "0s"))]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
