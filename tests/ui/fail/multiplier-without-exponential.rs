use steadfast::resilient;

#[resilient(backoff = "fixed", multiplier = 3.0)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
