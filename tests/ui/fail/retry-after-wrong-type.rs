use steadfast::resilient;

#[resilient(retry_after = |_error: &std::io::Error| 5u64)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
