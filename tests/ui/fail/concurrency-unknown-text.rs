use steadfast::resilient;

#[resilient(concurrency = "adaptve")]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
