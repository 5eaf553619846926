use steadfast::resilient;

#[track_caller]
#[resilient(max_attempts = 2)]
fn lookup() -> Result<u32, String> {
    Ok(std::panic::Location::caller().line())
}

fn main() {
    let _ = lookup();
}
