//! The connection, made on first use, and one bounded round trip on it
//! that keeps the circuit around Redis informed.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Error, Redis, Source};

/// The connection once made. A `ConnectionManager` is a cheap clone of one
/// multiplexed connection that reconnects by itself.
#[derive(Debug)]
pub(crate) struct Slot {
    manager: Mutex<Option<ConnectionManager>>,
}

impl Slot {
    pub(crate) const fn new() -> Self {
        Slot {
            manager: Mutex::new(None),
        }
    }
}

impl Redis {
    /// The URL, read now: from the environment for `from_env`, each time a
    /// connection is made, so a variable set late is picked up.
    fn url(&self) -> Result<String, Error> {
        match self.source {
            Source::Url(url) => Ok(url.to_owned()),
            Source::Env(var) => std::env::var(var).map_err(|_| Error::MissingUrl { var }),
            Source::EnvOr(var, default) => {
                Ok(std::env::var(var).unwrap_or_else(|_| default.to_owned()))
            }
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, Error> {
        let made = self
            .connection
            .manager
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(manager) = made {
            return Ok(manager);
        }
        let client = redis::Client::open(self.url()?).map_err(|error| Error::InvalidUrl {
            reason: error.to_string(),
        })?;
        // No retries inside the manager: the circuit in `health.rs` decides
        // when to try again, so that no call waits through a retry loop.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(0);
        let manager = tokio::time::timeout(
            self.timeout,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| Error::Timeout {
            after: self.timeout,
        })?
        .map_err(|error| match Error::from_redis(&error, self.timeout) {
            Error::Command { reason } => Error::Connect { reason },
            other => other,
        })?;
        // Two first calls may both connect; the later one's connection
        // wins and the other is dropped, which is harmless.
        *self
            .connection
            .manager
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(manager.clone());
        Ok(manager)
    }

    /// Runs one call on the connection (made first if needed) within the
    /// timeout, on the background runtime's task it is awaited on, and
    /// records the outcome in the circuit around Redis.
    pub(crate) async fn call<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let result = async {
            let manager = self.connection().await?;
            match tokio::time::timeout(self.timeout, call(manager)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(Error::from_redis(&error, self.timeout)),
                Err(_) => Err(Error::Timeout {
                    after: self.timeout,
                }),
            }
        }
        .await;
        match &result {
            Ok(_) => self.health.succeeded(),
            Err(error) => self.health.failed(error.clone(), self.retry_after),
        }
        result
    }

    pub(crate) fn background(&self) -> Result<&tokio::runtime::Handle, Error> {
        self.runtime.handle()
    }

    pub(crate) fn health(&self) -> &super::health::Health {
        &self.health
    }

    pub(crate) fn retry_after_duration(&self) -> std::time::Duration {
        self.retry_after
    }

    pub(crate) fn timeout_duration(&self) -> std::time::Duration {
        self.timeout
    }
}
