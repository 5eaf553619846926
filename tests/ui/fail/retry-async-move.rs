use steadfast::retry;

async fn fetch(id: u32) -> std::io::Result<u32> {
    Ok(id)
}

fn main() {
    let id = 7;
    let _ = retry!(max_attempts = 3; async move { fetch(id).await });
}
