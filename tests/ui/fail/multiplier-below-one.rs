use steadfast::resilient;

#[resilient(multiplier = 0.5)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
