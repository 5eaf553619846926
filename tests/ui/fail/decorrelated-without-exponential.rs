use steadfast::resilient;

#[resilient(backoff = "linear", jitter = "decorrelated")]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
