use steadfast::resilient;

#[resilient(max_attempts = 3, max_attempts = 5)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
