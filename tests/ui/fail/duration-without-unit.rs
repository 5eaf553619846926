use steadfast::resilient;

#[resilient(base_delay = "100")]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
