use steadfast::resilient;

#[resilient(max_attempts)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
