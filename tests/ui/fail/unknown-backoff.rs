use steadfast::resilient;

#[resilient(backoff = "exponental")]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
