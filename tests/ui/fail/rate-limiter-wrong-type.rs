use steadfast::resilient;

#[resilient(rate_limit = &5)]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
