use steadfast::resilient;

// `std::fmt::Error` is another crate's type: the impl the note would
// otherwise suggest is not allowed here, so the note says to wrap it.
#[resilient(timeout = "1s")]
async fn format_remote() -> Result<String, std::fmt::Error> {
    Ok(String::new())
}

fn main() {}
