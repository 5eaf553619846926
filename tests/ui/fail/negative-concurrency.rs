use steadfast::resilient;

#[resilient(concurrency = -2)]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
