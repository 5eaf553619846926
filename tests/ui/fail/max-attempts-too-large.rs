use steadfast::resilient;

#[resilient(max_attempts = 99999999999)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
