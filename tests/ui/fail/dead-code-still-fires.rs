#![deny(dead_code)]

use steadfast::resilient;

// An unused annotated function is still reported as dead code.
#[resilient(max_attempts = 3)]
fn never_called() -> std::io::Result<()> {
    Ok(())
}

#[resilient(timeout = "1s")]
async fn never_awaited() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
