use steadfast::resilient;

#[resilient(bogus = 1)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
