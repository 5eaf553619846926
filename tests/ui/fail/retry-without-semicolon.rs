use steadfast::retry;

fn main() {
    let _ = retry!(max_attempts = 3, { std::fs::read_to_string("x") });
}
