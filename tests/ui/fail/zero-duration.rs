use steadfast::resilient;

#[resilient(timeout = "0s")]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
