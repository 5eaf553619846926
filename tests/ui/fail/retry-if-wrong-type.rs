use steadfast::resilient;

#[resilient(retry_if = |error: &String| error.is_empty())]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
