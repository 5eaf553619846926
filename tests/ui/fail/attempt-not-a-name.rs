use steadfast::resilient;

#[resilient(attempt = 3)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
