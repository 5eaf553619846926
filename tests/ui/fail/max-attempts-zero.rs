use steadfast::resilient;

#[resilient(max_attempts = 0)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
