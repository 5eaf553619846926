use steadfast::resilient;

#[resilient(jitter = "fulll")]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
