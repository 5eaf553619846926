use steadfast::resilient;

#[resilient]
const fn fetch() -> Result<u8, ()> {
    Ok(1)
}

fn main() {}
