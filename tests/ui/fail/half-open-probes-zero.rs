use steadfast::resilient;

#[resilient(circuit_breaker(half_open_probes = 0))]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
