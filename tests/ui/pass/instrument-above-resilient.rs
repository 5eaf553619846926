//! `#[tracing::instrument]` written above `#[resilient]` expands first: each
//! attempt runs in a span of its own and borrows the arguments, owned ones
//! included, with or without instrument's `err` and `ret`, in plain and
//! `#[async_trait]` methods.

use steadfast::resilient;

#[derive(Debug, PartialEq)]
struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("busy")
    }
}

struct Catalog;

impl Catalog {
    // Borrowed and `Copy` arguments: the shape that compiled before
    // instrument's order was checked.
    #[tracing::instrument(skip(self))]
    #[resilient(max_attempts = 3)]
    async fn lookup(&self, id: &str, k: u32) -> Result<String, Busy> {
        Ok(format!("{id}/{k}"))
    }

    #[tracing::instrument(skip(self), err, ret)]
    #[resilient(max_attempts = 3)]
    async fn fetch(&self, owned: String, mut k: u32) -> Result<String, Busy> {
        k += 1;
        Ok(format!("{owned}/{k}"))
    }

    #[tracing::instrument(skip(self), err)]
    #[resilient(max_attempts = 3)]
    fn read(&self, owned: String) -> Result<usize, Busy> {
        Ok(owned.len())
    }

    #[tracing::instrument(skip(self))]
    #[resilient(max_attempts = 3)]
    fn count(&mut self, owned: Vec<u8>) -> Result<usize, Busy> {
        Ok(owned.len())
    }
}

#[async_trait::async_trait]
trait Store {
    async fn get(&self, key: &str, k: u32) -> Result<String, Busy>;
    async fn put(&mut self, key: String, value: Vec<u8>) -> Result<usize, Busy>;
}

// async-trait expands first, then instrument, then `#[resilient]`: the
// arguments move into async-trait's future once per call, and each attempt
// borrows them there.
#[async_trait::async_trait]
impl Store for Catalog {
    #[tracing::instrument(skip(self))]
    #[resilient(max_attempts = 3)]
    async fn get(&self, key: &str, k: u32) -> Result<String, Busy> {
        Ok(format!("{key}/{k}"))
    }

    #[tracing::instrument(skip(self, value), err)]
    #[resilient(max_attempts = 3)]
    async fn put(&mut self, key: String, value: Vec<u8>) -> Result<usize, Busy> {
        Ok(key.len() + value.len())
    }
}

#[tracing::instrument(skip_all)]
#[resilient(max_attempts = 3)]
async fn greet(name: String) -> Result<String, Busy> {
    let greeting = async { format!("hello {name}") };
    Ok(greeting.await)
}

fn spawnable<T: Send>(value: T) -> T {
    value
}

#[tokio::main(flavor = "current_thread", start_paused = true)]
async fn main() {
    let mut catalog = Catalog;
    assert_eq!(catalog.lookup("a", 1).await, Ok("a/1".to_owned()));
    assert_eq!(
        spawnable(catalog.fetch("b".to_owned(), 1)).await,
        Ok("b/2".to_owned())
    );
    assert_eq!(catalog.read("abc".to_owned()), Ok(3));
    assert_eq!(catalog.count(vec![1, 2]), Ok(2));
    assert_eq!(spawnable(greet("ada".to_owned())).await, Ok("hello ada".to_owned()));
    assert_eq!(spawnable(catalog.get("c", 3)).await, Ok("c/3".to_owned()));
    assert_eq!(spawnable(catalog.put("d".to_owned(), vec![0; 4])).await, Ok(5));
}
