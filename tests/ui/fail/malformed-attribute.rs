use steadfast::resilient;

#[resilient(max_attempts: 3)]
fn fetch(id: u32) -> std::io::Result<u32> {
    Ok(id)
}

fn main() {
    // The function survives a syntax error in the attribute too.
    let _ = fetch(7).unwrap();
}
