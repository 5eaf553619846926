use steadfast::resilient;

#[resilient(max_attempts = 3)]
struct Client;

fn main() {
    let _ = Client;
}
