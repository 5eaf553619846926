//! The runtime Redis I/O runs on: one worker thread of the client's own,
//! started on first use, so that sync callers need no runtime and async
//! callers' runtimes never carry a round trip another caller waits for.

use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};

use super::Error;

#[derive(Debug)]
pub(crate) struct Background {
    runtime: OnceLock<Result<Owned, Error>>,
}

/// Shuts its runtime down without waiting when dropped: a `Redis` that is
/// not a `static` may be dropped inside an async context, where dropping a
/// runtime the ordinary way panics.
#[derive(Debug)]
struct Owned(Option<Runtime>);

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Background {
    pub(crate) const fn new() -> Self {
        Background {
            runtime: OnceLock::new(),
        }
    }

    /// The runtime's handle, starting it on first use. A failure to start
    /// it is kept: it is an OS resource problem a retry would not fix.
    pub(crate) fn handle(&self) -> Result<&Handle, Error> {
        let runtime = self.runtime.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("steadfast-redis")
                .enable_all()
                .build()
                .map(|runtime| Owned(Some(runtime)))
                .map_err(|error| Error::Runtime {
                    reason: error.to_string(),
                })
        });
        match runtime {
            Ok(Owned(Some(runtime))) => Ok(runtime.handle()),
            Ok(Owned(None)) => unreachable!("the runtime is taken only on drop"),
            Err(error) => Err(error.clone()),
        }
    }
}
