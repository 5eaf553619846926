use steadfast::resilient;

#[resilient(max_delay = "soon")]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
