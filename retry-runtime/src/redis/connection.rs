//! The connection, made on first use, and one bounded round trip on it
//! that keeps the circuit around Redis informed.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::{Error, Redis, Source};

/// A connection to a single server or to a cluster: what a shared
/// instance's script is invoked on. Both kinds are cheap clones of one
/// multiplexed connection (per node, for a cluster) that reconnect by
/// themselves.
#[derive(Clone)]
pub(crate) enum Connection {
    /// One server: a manager that reconnects to it.
    Single(ConnectionManager),
    /// A cluster: routes each command to the node serving its key's slot
    /// and follows the cluster's topology.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Connection::Single(_) => f.write_str("Connection::Single"),
            Connection::Cluster(_) => f.write_str("Connection::Cluster"),
        }
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(manager) => manager.req_packed_command(cmd),
            Connection::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(manager) => manager.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(cluster) => cluster.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(manager) => manager.get_db(),
            Connection::Cluster(cluster) => cluster.get_db(),
        }
    }
}

/// The connection once made.
#[derive(Debug)]
pub(crate) struct Slot {
    connection: Mutex<Option<Connection>>,
}

impl Slot {
    pub(crate) const fn new() -> Self {
        Slot {
            connection: Mutex::new(None),
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
            Source::Cluster(_) => unreachable!("a cluster has seed nodes, not a URL"),
        }
    }

    async fn connection(&self) -> Result<Connection, Error> {
        let made = self
            .connection
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(connection) = made {
            return Ok(connection);
        }
        let connecting = async {
            match self.source {
                Source::Cluster(nodes) => self.connect_cluster(nodes).await,
                _ => self.connect_single().await,
            }
        };
        let connection = tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| Error::Timeout {
                after: self.timeout,
            })??;
        // Two first calls may both connect; the later one's connection
        // wins and the other is dropped, which is harmless.
        *self
            .connection
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(connection.clone());
        Ok(connection)
    }

    /// Sorts a failure to connect: an error reply there is a connection
    /// failure (refused, handshake), not a failed command.
    fn connect_error(&self, error: &redis::RedisError) -> Error {
        match Error::from_redis(error, self.timeout) {
            Error::Command { reason } => Error::Connect { reason },
            other => other,
        }
    }

    async fn connect_single(&self) -> Result<Connection, Error> {
        let url = self.url()?;
        tls::prepare(&url)?;
        let client = redis::Client::open(url).map_err(|error| Error::InvalidUrl {
            reason: error.to_string(),
        })?;
        // No retries inside the manager: the circuit in `health.rs` decides
        // when to try again, so that no call waits through a retry loop.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(0);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|error| self.connect_error(&error))?;
        Ok(Connection::Single(manager))
    }

    async fn connect_cluster(&self, nodes: &'static [&'static str]) -> Result<Connection, Error> {
        if nodes.is_empty() {
            return Err(Error::InvalidUrl {
                reason: "a cluster needs at least one seed node".to_owned(),
            });
        }
        // One retry, so that a `MOVED` after a resharding or a failover is
        // followed (the slot map is refreshed); anything longer is cut by
        // the timeout and left to the circuit in `health.rs`.
        for node in nodes {
            tls::prepare(node)?;
        }
        let client = ClusterClientBuilder::new(nodes.iter().copied())
            .connection_timeout(self.timeout)
            .response_timeout(self.timeout)
            .retries(1)
            .min_retry_wait(0)
            .max_retry_wait(cluster_retry_wait_ms(self.timeout))
            .build()
            .map_err(|error| Error::InvalidUrl {
                reason: error.to_string(),
            })?;
        let cluster = client
            .get_async_connection()
            .await
            .map_err(|error| self.connect_error(&error))?;
        Ok(Connection::Cluster(cluster))
    }

    /// Runs one call on the connection (made first if needed) within the
    /// timeout, on the background runtime's task it is awaited on, and
    /// records the outcome in the circuit around Redis.
    pub(crate) async fn call<T, F, Fut>(&self, call: F) -> Result<T, Error>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let result = async {
            let connection = self.connection().await?;
            match tokio::time::timeout(self.timeout, call(connection)).await {
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

/// The longest the cluster client waits before following a `MOVED` (it
/// draws each wait below this): a quarter of the timeout, so that the retry
/// and its answer fit in the call's timeout.
fn cluster_retry_wait_ms(timeout: std::time::Duration) -> u64 {
    (timeout.as_millis() / 4)
        .max(1)
        .try_into()
        .unwrap_or(u64::MAX)
}

/// `rediss://`: TLS, with the `redis-tls` feature.
mod tls {
    use super::Error;

    /// Installs rustls's crypto provider (ring) for the process, once, if
    /// nobody has chosen one: the redis client's TLS needs one and chooses
    /// none itself.
    #[cfg(feature = "redis-tls")]
    pub(super) fn prepare(url: &str) -> Result<(), Error> {
        if url.starts_with("rediss://") {
            // `Err` means a provider is installed already: that one serves.
            #[allow(
                deprecated,
                reason = "ring has no post-quantum key exchange, which rustls now \
                          prefers (aws-lc-rs); it builds with a C compiler alone"
            )]
            let provider = rustls::crypto::ring::default_provider();
            let _ = provider.install_default();
        }
        Ok(())
    }

    /// Without the feature, a `rediss://` URL is refused with the fix,
    /// rather than the client's "not enabled" message.
    #[cfg(not(feature = "redis-tls"))]
    pub(super) fn prepare(url: &str) -> Result<(), Error> {
        if url.starts_with("rediss://") {
            return Err(Error::InvalidUrl {
                reason: "`rediss://` (Redis over TLS) needs the `redis-tls` feature".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::cluster_retry_wait_ms;

    #[test]
    fn a_moved_is_followed_within_a_quarter_of_the_timeout() {
        assert_eq!(cluster_retry_wait_ms(Duration::from_millis(200)), 50);
        assert_eq!(
            cluster_retry_wait_ms(Duration::from_millis(2)),
            1,
            "never 0"
        );
        assert_eq!(cluster_retry_wait_ms(Duration::MAX), u64::MAX);
    }

    #[cfg(not(feature = "redis-tls"))]
    #[test]
    fn rediss_without_the_feature_names_the_feature() {
        use super::{Error, tls};
        match tls::prepare("rediss://cache.example:6380") {
            Err(Error::InvalidUrl { reason }) => {
                assert!(reason.contains("`redis-tls`"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(tls::prepare("redis://127.0.0.1:6379").is_ok());
    }
}
