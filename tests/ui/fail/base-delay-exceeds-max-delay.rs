use steadfast::resilient;

#[resilient(base_delay = "30s", max_delay = "1s")]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
