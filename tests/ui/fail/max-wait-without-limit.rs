use steadfast::resilient;

#[resilient(max_wait = "500ms")]
async fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
