use steadfast::resilient;

#[resilient(max_attempts = "three")]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
