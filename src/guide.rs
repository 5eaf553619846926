//! Guides: longer walkthroughs than the API docs, for readers arriving
//! from elsewhere. Each is a Markdown file under `docs/` in the repository,
//! readable there as is, and included here so that every Rust example in it
//! is compiled and run as a doc test.
//!
//! - [`from_python_asyncio`]: asyncio timeouts, cancellation, backoff and
//!   jitter formulas, semaphores, and a typical `aio` helper module, mapped
//!   to steadfast, tokio and std.

#[doc = include_str!("../docs/from-python-asyncio.md")]
pub mod from_python_asyncio {}
