use steadfast::resilient;

#[resilient(rate_limit = "0/s")]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
