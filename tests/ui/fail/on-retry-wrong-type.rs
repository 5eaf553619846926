use steadfast::resilient;

#[resilient(on_retry = |error: &std::io::Error| eprintln!("{error}"))]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
