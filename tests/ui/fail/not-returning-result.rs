use steadfast::resilient;

#[resilient(max_attempts = 3)]
fn fetch() -> u8 {
    1
}

fn main() {}
