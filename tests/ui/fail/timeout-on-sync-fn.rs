use steadfast::resilient;

#[resilient(timeout = "2s")]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
