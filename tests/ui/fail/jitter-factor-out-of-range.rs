use steadfast::resilient;

#[resilient(jitter = 1.5)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
