use steadfast::resilient;

#[resilient(concurrency = 0)]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
