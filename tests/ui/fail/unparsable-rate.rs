use steadfast::resilient;

#[resilient(rate_limit = "ten per second")]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
