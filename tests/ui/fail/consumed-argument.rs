use steadfast::resilient;

fn send(_body: String) -> std::io::Result<()> {
    Ok(())
}

#[resilient(max_attempts = 3)]
async fn post(body: String) -> std::io::Result<()> {
    send(body)
}

fn main() {}
