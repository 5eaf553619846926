use steadfast::resilient;

#[resilient(budget = "none")]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
