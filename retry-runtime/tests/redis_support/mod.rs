//! A real `redis-server` per test, on a free port, killed on drop: tests
//! that kill, pause or restart a server need one of their own.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use retry_runtime::redis::Redis;

pub mod breakers;

pub struct Server {
    child: Option<Child>,
    pub port: u16,
    pub url: &'static str,
}

impl Server {
    /// Starts a server on a free port. The port is found by binding port 0
    /// and releasing it; another process could take it in between, so a
    /// server that fails to start is retried on another port.
    pub fn start() -> Server {
        for _ in 0..10 {
            if let Some(server) = Server::start_on(free_port()) {
                return server;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    /// Starts a server on `port`, or `None` if it did not answer within
    /// 5 s or another process's server answers there.
    pub fn start_on(port: u16) -> Option<Server> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            // The server that answers must be this child: another test's
            // server may have taken the port first, and this child then
            // exits; adopting the other would share its pauses and kills.
            if let Some(pid) = server_pid(port) {
                if pid != child.id() {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
                let url = Box::leak(format!("redis://127.0.0.1:{port}").into_boxed_str());
                return Some(Server {
                    child: Some(child),
                    port,
                    url,
                });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// A client of this server, leaked to be `'static` as `shared` needs.
    /// Its timeout is long enough for a loaded machine (a test asserting
    /// that nothing was decided without Redis must not see a slow answer
    /// as an outage); a test of an outage takes [`Server::quick_redis`].
    pub fn redis(&self) -> &'static Redis {
        self.redis_with_timeout(Duration::from_secs(1))
    }

    /// A client that gives up on a stalled server after 50 ms: for the
    /// tests that pause or kill the server and bound what that costs.
    pub fn quick_redis(&self) -> &'static Redis {
        self.redis_with_timeout(Duration::from_millis(50))
    }

    fn redis_with_timeout(&self, timeout: Duration) -> &'static Redis {
        Box::leak(Box::new(
            Redis::new(self.url)
                .timeout(timeout)
                .retry_after(Duration::from_millis(200)),
        ))
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if let Some(mut server) = Server::start_on(self.port) {
                self.child = server.child.take();
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("could not restart redis-server on port {}", self.port);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Stops the server (SIGSTOP): connections stay open, nothing answers.
    /// It resumes (SIGCONT) when the guard drops, even if the test fails
    /// while it is stopped.
    pub fn pause(&self) -> Paused {
        let pid = self.pid();
        kill(pid, "-STOP");
        Paused(pid)
    }

    /// One inline command; the reply's first line (all of a bulk reply).
    pub fn command(&self, line: &str) -> String {
        command(self.port, line).expect("the server answers")
    }

    /// `calls=` of `cmdstat_<name>` in `INFO commandstats`.
    pub fn calls(&self, name: &str) -> u64 {
        let info = self.command("INFO commandstats");
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .and_then(|calls| calls.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port free now: bound to port 0 and released, so another process
/// could take it before it is used (callers retry on another).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The process id of the server answering on `port`, if one does.
fn server_pid(port: u16) -> Option<u32> {
    command(port, "INFO server")?
        .lines()
        .find_map(|line| line.strip_prefix("process_id:"))?
        .trim()
        .parse()
        .ok()
}

/// Sends one inline command to the server on `port`, returns the reply (a
/// bulk reply's body whole), or `None` if it does not answer.
pub fn command(port: u16, line: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(format!("{line}\r\n").as_bytes()).ok()?;
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    if let Some(len) = first.strip_prefix('$') {
        let len: i64 = len.trim().parse().ok()?;
        if len < 0 {
            return Some(String::new());
        }
        let mut body = vec![0; len as usize + 2];
        std::io::Read::read_exact(&mut reader, &mut body).ok()?;
        return Some(String::from_utf8_lossy(&body).into_owned());
    }
    Some(first)
}

/// A stopped server; resumed on drop.
pub struct Paused(u32);

impl Drop for Paused {
    fn drop(&mut self) {
        kill(self.0, "-CONT");
    }
}

/// `kill -<signal> <pid>`.
fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Runs `test` of this test binary in a child process (a "replica" in
/// another process), with `var` set to `value` so the test knows its role;
/// its stdout is piped for the parent to read.
pub fn spawn_child(test: &str, var: &str, value: &str) -> Child {
    Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(var, value)
        .stdout(Stdio::piped())
        .spawn()
        .expect("a child test process")
}

/// Polls `done` every 5 ms until it holds; panics after `bound`. Returns
/// how long it took.
pub fn eventually(what: &str, bound: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if done() {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "not within {bound:?}: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `done` holds at every poll for `run` (polled every 5 ms).
pub fn throughout(what: &str, run: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < run {
        assert!(done(), "after {:?}: {what}", start.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An integer reply (`:42`).
pub fn integer(reply: &str) -> i64 {
    reply
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("not an integer reply: {reply:?}"))
}
