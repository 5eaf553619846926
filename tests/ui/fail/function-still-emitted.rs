use steadfast::resilient;

#[resilient(max_attemps = 3)]
fn fetch(id: u32) -> std::io::Result<u32> {
    Ok(id)
}

fn main() {
    // Only the attribute is wrong: the function still exists, so this call
    // (and rust-analyzer) keeps working and adds no error of its own.
    let _ = fetch(7).unwrap();
}
