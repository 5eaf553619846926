//! `rediss://` (feature `redis-tls`): a shared limiter against a real
//! `redis-server` speaking only TLS on a free port, with a certificate
//! authority made by the test. The client trusts the system's roots, which
//! `SSL_CERT_FILE` points at the test's authority here (as an operator's
//! private authority would be added).

#![cfg(feature = "redis-tls")]

mod redis_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use redis_support::free_port;
use retry_runtime::RateLimiter;
use retry_runtime::redis::Redis;

/// An authority, and a certificate for 127.0.0.1 it signed, written to
/// `dir` as `ca.pem`, `server.pem` and `server.key`.
fn certificates(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
}

/// A `redis-server` with TLS only, on a free port; killed on drop.
struct TlsServer(Child, u16);

impl TlsServer {
    fn start(dir: &Path) -> TlsServer {
        let file = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args(["--tls-cert-file", &file("server.pem")])
            .args(["--tls-key-file", &file("server.key")])
            .args(["--tls-ca-cert-file", &file("ca.pem")])
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        // Up once it accepts a connection on the TLS port.
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "no TLS redis-server"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        TlsServer(child, port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The part of the test that trusts the authority, in a process of its
/// own: `SSL_CERT_FILE` is read by the client in its process, and setting
/// it in this one would take `unsafe` (edition 2024), which the workspace
/// forbids.
const CHILD: &str = "STEADFAST_TLS_URL";

#[test]
fn trusted_child() {
    let Ok(url) = std::env::var(CHILD) else {
        return;
    };
    let redis: &'static Redis = Box::leak(Box::new(
        Redis::new(Box::leak(url.into_boxed_str())).timeout(Duration::from_secs(1)),
    ));
    let a = RateLimiter::per_minute(5).shared(redis, "tls-shared");
    let b = RateLimiter::per_minute(5).shared(redis, "tls-shared");
    let take = |limiter: &RateLimiter| {
        (0..10)
            .filter(|_| {
                limiter
                    .acquire_blocking_timeout(Duration::from_millis(200))
                    .is_ok()
            })
            .count()
    };
    let admitted = take(&a) + take(&b);
    println!(
        "ADMITTED={admitted} DEGRADED={} TRIPS={}",
        a.degraded_decisions() + b.degraded_decisions(),
        a.redis_round_trips()
    );
}

#[test]
fn a_limiter_shares_through_redis_over_tls_and_an_untrusted_server_is_refused() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("steadfast-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    certificates(&dir);
    let server = TlsServer::start(&dir);
    let url = format!("rediss://127.0.0.1:{}", server.1);

    // Not trusted (the system's roots do not hold the test's authority):
    // the handshake fails, and decisions go to the fallback.
    let untrusted: &'static Redis = Box::leak(Box::new(Redis::new(Box::leak(
        url.clone().into_boxed_str(),
    ))));
    let limiter = RateLimiter::per_second(100).shared(untrusted, "tls");
    for _ in 0..3 {
        let _ = limiter.try_acquire();
    }
    assert!(
        limiter.degraded_decisions() > 0,
        "an untrusted server was used"
    );
    assert!(untrusted.last_error().is_some());

    // Trusted: one bucket of 5 for two replicas, over TLS.
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "trusted_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &url)
        .env("SSL_CERT_FILE", dir.join("ca.pem"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|line| line.find("ADMITTED=").map(|at| &line[at..]))
        .expect(&stdout);
    println!("{line}");
    assert!(line.starts_with("ADMITTED=5 DEGRADED=0 "), "{line}");
    assert!(!line.ends_with("TRIPS=0"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}
