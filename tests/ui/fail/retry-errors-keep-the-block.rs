use steadfast::retry;

fn main() {
    // Every mistake at once, and the block is still there: `text` has the
    // block's type, so the line below it reports nothing more.
    let text = retry!(max_attemps = 3, base_delay = "5"; { std::fs::read_to_string("x") });
    let _: usize = text.unwrap().len();
}
