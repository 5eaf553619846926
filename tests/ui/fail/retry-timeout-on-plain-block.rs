use steadfast::retry;

fn main() {
    let _ = retry!(timeout = "1s"; { std::fs::read_to_string("x") });
}
