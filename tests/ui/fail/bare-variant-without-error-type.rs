use steadfast::resilient;

#[resilient(retry_on = [TimedOut])]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
