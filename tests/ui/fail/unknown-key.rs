use steadfast::resilient;

#[resilient(max_attemps = 3)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
