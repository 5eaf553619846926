use steadfast::resilient;

#[resilient(name = 5)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
