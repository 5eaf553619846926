use steadfast::resilient;

#[derive(Debug)]
struct ApiError;

#[resilient(hedge)]
async fn fill(buffer: &mut Vec<u8>, key: &str) -> Result<usize, ApiError> {
    buffer.extend_from_slice(key.as_bytes());
    Ok(buffer.len())
}

struct Cache {
    hits: u64,
}

impl Cache {
    #[resilient(hedge(after = "p99"))]
    async fn lookup(&mut self, key: &str) -> Result<usize, ApiError> {
        self.hits += 1;
        Ok(key.len())
    }
}

fn main() {}
