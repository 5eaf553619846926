use steadfast::resilient;

#[resilient(concurrency = "3")]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
