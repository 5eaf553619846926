use steadfast::resilient;

// A runtime whose contract is not the one this `retry-macros` expects, as a
// mismatched pair of crates would be.
mod other_runtime {
    pub mod __private {
        pub use steadfast::__private::*;
        pub const CONTRACT: u32 = 999;
    }
}

#[resilient(crate = "other_runtime")]
fn fetch() -> std::io::Result<()> {
    Ok(())
}

fn main() {
    let _ = fetch();
}
