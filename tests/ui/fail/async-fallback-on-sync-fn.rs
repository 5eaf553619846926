use steadfast::resilient;

async fn cached() -> std::io::Result<u8> {
    Ok(0)
}

#[resilient(fallback = async |_| cached().await)]
fn fetch() -> std::io::Result<u8> {
    Ok(1)
}

fn main() {}
