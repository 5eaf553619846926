use steadfast::resilient;

#[resilient(concurrency = 4, burst = 10)]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
