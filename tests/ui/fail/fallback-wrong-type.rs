use steadfast::resilient;

#[resilient(fallback = |_error| 0)]
fn fetch() -> std::io::Result<u32> {
    Ok(1)
}

fn main() {}
