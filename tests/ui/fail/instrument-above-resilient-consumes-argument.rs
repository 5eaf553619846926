use steadfast::resilient;

#[derive(Debug)]
struct Busy;

fn send(_body: String) -> Result<(), Busy> {
    Ok(())
}

// `instrument` expands first; each attempt borrows `body` as it would
// without instrument, so a body that consumes it cannot run twice, and
// rustc says so at the move, in the body.
#[tracing::instrument(skip_all)]
#[resilient(max_attempts = 3)]
async fn post(body: String) -> Result<(), Busy> {
    send(body)
}

// The same for a plain fn, with `ret` (instrument's `move` closure).
#[tracing::instrument(skip_all, ret)]
#[resilient(max_attempts = 3)]
fn post_now(body: String) -> Result<(), Busy> {
    send(body)
}

fn main() {
    let _ = post(String::new());
    let _ = post_now(String::new());
}
