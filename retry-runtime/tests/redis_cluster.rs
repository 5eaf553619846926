//! Shared instances on a real local Redis Cluster (feature `redis`): each
//! test starts three `redis-server` masters in cluster mode on free ports,
//! joins them with `redis-cli --cluster create`, and kills them on drop.
//! Redis's clock is real time, so these run on the real clock with counts
//! asserted within the stated accuracy.

#![cfg(feature = "redis")]

mod redis_support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis_support::{command, free_port};
use retry_runtime::redis::{Fallback, Redis};
use retry_runtime::{RateLimiter, RetryBudget};

/// A 3-master cluster on free ports, in a temporary directory; every node
/// is killed and the directory removed on drop.
struct Cluster {
    nodes: Vec<(u16, Option<Child>)>,
    dir: PathBuf,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "steadfast-cluster-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ free_port() as u128
        ));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            dir,
        };
        while cluster.nodes.len() < 3 {
            let started = (0..10).find_map(|_| cluster.start_node(free_port()));
            cluster
                .nodes
                .push(started.expect("could not start redis-server on a free port"));
        }
        let addresses: Vec<String> = cluster
            .ports()
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed");
        assert!(status.success(), "redis-cli --cluster create failed");
        let start = Instant::now();
        while !cluster.ports().iter().all(|&port| {
            command(port, "CLUSTER INFO").is_some_and(|info| info.contains("cluster_state:ok"))
        }) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the cluster did not reach cluster_state:ok"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// Starts a node on `port`, or `None` if it did not answer PING within
    /// 5 s (the port taken meanwhile).
    fn start_node(&self, port: u16) -> Option<(u16, Option<Child>)> {
        let dir = self.dir.to_str().expect("a UTF-8 temporary directory");
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("{dir}/nodes-{port}.conf")])
            .args(["--cluster-node-timeout", "2000"])
            .args(["--save", "", "--appendonly", "no", "--dir", dir])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            if command(port, "PING").is_some_and(|reply| reply.starts_with("+PONG")) {
                return Some((port, Some(child)));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(port, _)| *port).collect()
    }

    /// A client of the cluster seeded with every node (leaked: `shared`
    /// needs `'static`).
    fn redis(&self) -> &'static Redis {
        let urls: Vec<&'static str> = self
            .ports()
            .iter()
            .map(|port| &*Box::leak(format!("redis://127.0.0.1:{port}").into_boxed_str()))
            .collect();
        Box::leak(Box::new(
            Redis::cluster(Box::leak(urls.into_boxed_slice()))
                .timeout(Duration::from_millis(100))
                .retry_after(Duration::from_millis(200)),
        ))
    }

    /// The port of the master serving `key`'s slot.
    fn node_of(&self, key: &str) -> u16 {
        let port = self.nodes[0].0;
        let reply = command(port, &format!("EXISTS {key}")).expect("the node answers");
        if reply.starts_with(':') {
            return port;
        }
        // -MOVED <slot> 127.0.0.1:<port>
        reply
            .trim()
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("unexpected reply {reply:?}"))
    }

    fn kill(&mut self, port: u16) {
        for (node, child) in &mut self.nodes {
            if *node == port
                && let Some(mut child) = child.take()
            {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for port in self.ports() {
            self.kill(port);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Two instance keys whose rate-limiter keys are served by different
/// masters.
fn keys_on_two_nodes(cluster: &Cluster) -> [(String, u16); 2] {
    let first = "api-0".to_owned();
    let first_node = cluster.node_of(&format!("{{steadfast:rl:{first}}}"));
    let second = (1..1000)
        .map(|i| format!("api-{i}"))
        .map(|key| {
            let node = cluster.node_of(&format!("{{steadfast:rl:{key}}}"));
            (key, node)
        })
        .find(|(_, node)| *node != first_node)
        .expect("a key on another master");
    [(first, first_node), second]
}

fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// Replicas calling `try_acquire` as fast as they can for `run`, each on a
/// task of its own: what each admitted.
async fn hammer(replicas: Vec<&'static RateLimiter>, run: Duration) -> Vec<u64> {
    let tasks: Vec<_> = replicas
        .into_iter()
        .map(|limiter| {
            tokio::spawn(async move {
                let start = Instant::now();
                let mut admitted = 0;
                while start.elapsed() < run {
                    if limiter.try_acquire() {
                        admitted += 1;
                    }
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                admitted
            })
        })
        .collect();
    let mut admitted = Vec::new();
    for task in tasks {
        admitted.push(task.await.unwrap());
    }
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_share_limits_on_keys_served_by_different_masters() {
    let cluster = Cluster::start();
    let redis = cluster.redis();
    let [(key_a, node_a), (key_b, node_b)] = keys_on_two_nodes(&cluster);
    assert_ne!(node_a, node_b);
    // 100/s, burst 20, lease 5 for both keys; two replicas each.
    let replica = |key: &str| {
        leak(
            RateLimiter::per_second(100)
                .burst(20)
                .lease(5)
                .shared(redis, Box::leak(key.to_owned().into_boxed_str())),
        )
    };
    let limiters = vec![
        replica(&key_a),
        replica(&key_a),
        replica(&key_b),
        replica(&key_b),
    ];
    let start = Instant::now();
    let admitted = hammer(limiters.clone(), Duration::from_secs(1)).await;
    let elapsed = start.elapsed().as_secs_f64();
    // The global bucket grants at most burst + rate × elapsed; the leases
    // add at most replicas × lease = 2 × 5.
    let bound = 20.0 + 100.0 * elapsed + 10.0;
    for (pair, (key, node)) in [(&key_a, node_a), (&key_b, node_b)].iter().enumerate() {
        let (one, two) = (admitted[2 * pair], admitted[2 * pair + 1]);
        let total = one + two;
        println!(
            "key {key} on :{node}: {one} + {two} = {total}, bound {bound:.0}, elapsed {elapsed:.3}s"
        );
        assert!(
            (total as f64) <= bound,
            "{total} admitted on {key}, bound {bound}"
        );
        // Local limiters would admit 2 × (20 + 100) = 240.
        assert!(total >= 90, "only {total} admitted on {key}");
        assert!(one > 0 && two > 0);
        // The state lives on the master serving its slot.
        assert_eq!(
            command(*node, &format!("EXISTS {{steadfast:rl:{key}}}")).as_deref(),
            Some(":1\r\n")
        );
    }
    let degraded: u64 = limiters.iter().map(|l| l.degraded_decisions()).sum();
    let trips: u64 = limiters.iter().map(|l| l.redis_round_trips()).sum();
    println!("round trips {trips}, degraded {degraded}");
    assert_eq!(degraded, 0);
    assert!(trips > 0);
    assert!(redis.is_available());
    assert!(
        format!("{redis:?}").contains("Connection::Cluster"),
        "{redis:?}"
    );
}

#[test]
fn a_retry_budget_is_shared_on_the_cluster() {
    let cluster = Cluster::start();
    let redis = cluster.redis();
    // No reserve: only calls fund retries, one per two calls.
    let replica = || {
        leak(
            RetryBudget::new()
                .min_per_second(0)
                .ratio(0.5)
                .ttl(Duration::from_secs(2))
                .shared(redis, "cluster-funding"),
        )
    };
    let (a, b) = (replica(), replica());
    std::thread::spawn(move || {
        for _ in 0..100 {
            a.deposit();
        }
    })
    .join()
    .unwrap();
    // B never called: its retries are funded by A's calls, through the
    // cluster.
    let drain = |budget: &RetryBudget| {
        let (mut allowed, mut refusals) = (0u64, 0);
        while refusals < 20 {
            if budget.withdraw() {
                allowed += 1;
                refusals = 0;
            } else {
                refusals += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        allowed
    };
    let from_b = drain(b);
    let from_a = drain(a);
    println!("b {from_b}, a {from_a}");
    assert!(from_b >= 50 - 4, "b allowed only {from_b}");
    assert_eq!(from_a + from_b, 50);
    assert_eq!(a.degraded_decisions() + b.degraded_decisions(), 0);
    let node = cluster.node_of("{steadfast:rb:cluster-funding}");
    assert_eq!(
        command(node, "EXISTS {steadfast:rb:cluster-funding}").as_deref(),
        Some(":1\r\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_master_sends_its_instances_to_their_fallback() {
    let mut cluster = Cluster::start();
    let redis = cluster.redis();
    let [(key, node), _] = keys_on_two_nodes(&cluster);
    let limiter = leak(
        RateLimiter::per_second(50)
            .burst(10)
            .lease(1)
            .shared(redis, Box::leak(key.into_boxed_str()))
            .when_redis_fails(Fallback::Local),
    );
    // Connected and sharing first.
    assert!(
        limiter
            .acquire_timeout(Duration::from_secs(1))
            .await
            .is_ok()
    );
    assert_eq!(limiter.degraded_decisions(), 0);
    cluster.kill(node);
    // The node serving the key is gone: within a few timeouts, decisions
    // are taken by the local fallback, and none waits on the dead node.
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    while limiter.degraded_decisions() == 0 {
        assert!(start.elapsed() < Duration::from_secs(3), "never fell back");
        let before = Instant::now();
        let _ = limiter.try_acquire();
        slowest = slowest.max(before.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "fell back after {:?}, slowest try_acquire {slowest:?}, error {:?}",
        start.elapsed(),
        redis.last_error()
    );
    assert!(slowest < Duration::from_millis(50), "{slowest:?}");
    assert!(!redis.is_available());
    assert!(redis.last_error().is_some());
}
