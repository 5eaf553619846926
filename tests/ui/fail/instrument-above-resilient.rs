use steadfast::resilient;

#[derive(Debug)]
struct Busy;

// `instrument` expands first and moves `name` into its span's future; the
// error names the order that works.
#[tracing::instrument(skip_all)]
#[resilient(max_attempts = 3)]
async fn greet(name: String) -> Result<String, Busy> {
    Ok(format!("hello {name}"))
}

fn main() {
    let _ = greet(String::new());
}
