use steadfast::resilient;

#[resilient(budget = 5u32)]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
