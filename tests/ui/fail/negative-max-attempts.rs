use steadfast::resilient;

#[resilient(max_attempts = -1)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
