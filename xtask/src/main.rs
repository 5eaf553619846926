//! `cargo xtask`: the workspace's tasks that need more than cargo.
//!
//! - `cargo xtask test [ARGS]`: `cargo test --workspace --all-features
//!   [ARGS]` with a real Redis provided, so that it passes on a machine with
//!   nothing but Rust and the distribution's package manager.
//! - `cargo xtask redis [--] COMMAND [ARGS]`: any command with the same
//!   Redis (the Redis bench, the `shared_limits` example, one test file).
//!
//! Providing Redis means: `redis-server` and `redis-cli` on the PATH,
//! installed with `apt-get` when missing (the tests that kill, pause or
//! cluster servers start their own with them), and a private server on a
//! free port of 127.0.0.1, without persistence, named by `REDIS_URL` for as
//! long as the command runs.

use std::env;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo xtask test [ARGS]...
           cargo test --workspace --all-features [ARGS]..., with a redis-server
           provided (installed with apt-get if missing) and REDIS_URL set
       cargo xtask redis [--] COMMAND [ARGS]...
           COMMAND with the same redis-server and REDIS_URL";

/// The binaries the tests run, and the Debian package that has both.
const BINARIES: [&str; 2] = ["redis-server", "redis-cli"];
const PACKAGE: &str = "redis-server";

/// How long a started server has to answer PING. It answers within
/// milliseconds; the bound is for a loaded machine, and only ends a wait
/// that would otherwise never end.
const READY_WITHIN: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let task = match Task::parse(env::args_os().skip(1).collect()) {
        Ok(task) => task,
        Err(message) => {
            eprintln!("xtask: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(task) {
        Ok(status) => exit_code(status),
        Err(error) => {
            eprintln!("xtask: error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, PartialEq)]
enum Task {
    Help,
    /// Extra arguments for `cargo test`.
    Test(Vec<OsString>),
    /// A program and its arguments.
    Redis(OsString, Vec<OsString>),
}

impl Task {
    fn parse(mut args: Vec<OsString>) -> Result<Task, String> {
        if args.is_empty() {
            return Err("no task given".into());
        }
        let task = args.remove(0);
        match task.to_str() {
            Some("test") => Ok(Task::Test(args)),
            Some("redis") => {
                if args.first().is_some_and(|arg| arg == "--") {
                    args.remove(0);
                }
                if args.is_empty() {
                    return Err("`redis` needs a command to run".into());
                }
                let program = args.remove(0);
                Ok(Task::Redis(program, args))
            }
            Some("help" | "-h" | "--help") => Ok(Task::Help),
            _ => Err(format!("unknown task `{}`", task.to_string_lossy())),
        }
    }
}

fn run(task: Task) -> Result<ExitStatus, Error> {
    let mut command = match task {
        Task::Help => {
            println!("{USAGE}");
            return Ok(ExitStatus::default());
        }
        Task::Test(args) => {
            // The cargo that runs this xtask, not whichever is first on the PATH.
            let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
            cargo
                .args(["test", "--workspace", "--all-features"])
                .args(args);
            cargo
        }
        Task::Redis(program, args) => {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
    };
    ensure_installed()?;
    let server = Server::start()?;
    eprintln!(
        "xtask: {} at {} (REDIS_URL), stopped when the command ends",
        server.version, server.url
    );
    eprintln!("xtask: running {}", display(&command));
    // Our own server even when REDIS_URL is already set: the tests write
    // and flush keys, which must never reach a Redis someone uses.
    let status = command
        .env("REDIS_URL", &server.url)
        .status()
        .map_err(|error| Error(format!("could not run {}: {error}", display(&command))))?;
    drop(server);
    Ok(status)
}

/// Installs the package when a binary the tests need is not on the PATH.
fn ensure_installed() -> Result<(), Error> {
    let missing: Vec<&str> = BINARIES
        .into_iter()
        .filter(|binary| find_on_path(binary).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let missing = match missing[..] {
        [one] => format!("`{one}` is"),
        _ => format!("`{}` are", missing.join("` and `")),
    };
    let manual = format!(
        "install the package `{PACKAGE}` yourself (`sudo apt-get install {PACKAGE}` on Debian \
         and Ubuntu; the package is `redis` on Fedora, Arch, Alpine and Homebrew), then run \
         this again"
    );
    if find_on_path("apt-get").is_none() {
        return Err(Error(format!(
            "{missing} not on the PATH, and there is no apt-get here: {manual}"
        )));
    }
    let sudo = if is_root() {
        None
    } else if let Some(sudo) = find_on_path("sudo") {
        Some(sudo)
    } else {
        return Err(Error(format!(
            "{missing} not on the PATH; installing the package needs root, and there is no sudo: as \
             root, run `apt-get update && apt-get install {PACKAGE}`, then run this again"
        )));
    };
    eprintln!("xtask: {missing} not on the PATH: installing the distribution's package {PACKAGE}");
    // The package lists of a fresh machine (a container) are often empty or
    // stale, so they are refreshed first, as an install needs them.
    for args in [
        &["update", "-qq"][..],
        &["install", "-y", "-qq", "--no-install-recommends", PACKAGE],
    ] {
        let mut apt = match &sudo {
            Some(sudo) => {
                let mut command = Command::new(sudo);
                command.arg("apt-get");
                command
            }
            None => Command::new("apt-get"),
        };
        apt.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        eprintln!("xtask: running {}", display(&apt));
        let status = apt.status().map_err(|error| {
            Error(format!(
                "could not run {}: {error}; {manual}",
                display(&apt)
            ))
        })?;
        if !status.success() {
            return Err(Error(format!(
                "{} failed ({status}): {manual}",
                display(&apt)
            )));
        }
    }
    match BINARIES
        .into_iter()
        .find(|binary| find_on_path(binary).is_none())
    {
        Some(binary) => Err(Error(format!(
            "the package {PACKAGE} is installed but `{binary}` is still not on the PATH \
             ({}): add its directory to the PATH",
            env::var("PATH").unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

/// A private `redis-server` of this run, stopped on drop: when the command
/// fails and when this task returns early with an error. On Ctrl-C the
/// terminal signals the server too (same process group), so it does not
/// outlive us then either.
struct Server {
    child: Child,
    url: String,
    version: String,
    log: PathBuf,
}

impl Server {
    fn start() -> Result<Server, Error> {
        let version = Command::new("redis-server")
            .arg("--version")
            .output()
            .map_err(|error| Error(format!("could not run `redis-server --version`: {error}")))?;
        // "Redis server v=7.0.15 sha=... malloc=..." -> "redis-server v=7.0.15".
        let version = String::from_utf8_lossy(&version.stdout)
            .split_whitespace()
            .find(|word| word.starts_with("v="))
            .map_or_else(
                || "redis-server".to_owned(),
                |v| format!("redis-server {v}"),
            );
        // A free port rather than a fixed one: other checkouts on the same
        // machine may be testing at the same time. The port is free when
        // asked but may be taken before the server binds it; the server
        // then exits at once and another port is tried.
        let mut last_failure = String::new();
        for _ in 0..10 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map_err(|error| Error(format!("no free port on 127.0.0.1: {error}")))?
                .port();
            let log = env::temp_dir().join(format!(
                "steadfast-xtask-redis-{}-{port}.log",
                std::process::id()
            ));
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(env::temp_dir())
                .arg("--logfile")
                .arg(&log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|error| Error(format!("could not start redis-server: {error}")))?;
            let mut server = Server {
                child,
                url: format!("redis://127.0.0.1:{port}"),
                version: version.clone(),
                log,
            };
            match server.wait_ready(port) {
                Ok(()) => return Ok(server),
                Err(StartFailure::Exited(status)) => {
                    last_failure = format!(
                        "redis-server exited ({status}) on port {port}; its log:\n{}",
                        server.read_log()
                    );
                }
                Err(StartFailure::NotReady) => {
                    return Err(Error(format!(
                        "redis-server on port {port} did not answer PING within {READY_WITHIN:?}; \
                         its log:\n{}",
                        server.read_log()
                    )));
                }
            }
        }
        Err(Error(format!(
            "could not start redis-server on a free port in 10 tries; the last: {last_failure}"
        )))
    }

    /// Polls PING until the server answers, it exits, or `READY_WITHIN`.
    fn wait_ready(&mut self, port: u16) -> Result<(), StartFailure> {
        let start = Instant::now();
        while start.elapsed() < READY_WITHIN {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(StartFailure::Exited(status));
            }
            if pong(port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(StartFailure::NotReady)
    }

    fn read_log(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_else(|error| format!("({}: {error})", self.log.display()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

enum StartFailure {
    Exited(ExitStatus),
    NotReady,
}

/// Whether the server on `port` answers PING with PONG.
fn pong(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut reply = [0u8; 5];
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .is_ok()
        && stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}

/// The path of the executable `name` on the PATH, as a shell would find it.
fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

#[cfg(unix)]
fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &std::path::Path) -> bool {
    path.is_file()
}

/// Whether this process runs as root; `id -u` because std has no getuid.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.trim_ascii() == b"0")
}

/// The command's own exit code, or 128 + the signal that ended it, as a
/// shell reports it, so that CI sees what the tests returned.
fn exit_code(status: ExitStatus) -> ExitCode {
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return ExitCode::from(u8::try_from(128 + signal).unwrap_or(1));
    }
    ExitCode::FAILURE
}

/// `program arg ...`, for messages.
fn display(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug)]
struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn test_passes_its_arguments_to_cargo_test() {
        assert_eq!(Task::parse(args(&["test"])), Ok(Task::Test(vec![])));
        assert_eq!(
            Task::parse(args(&["test", "--no-fail-fast", "--", "--nocapture"])),
            Ok(Task::Test(args(&["--no-fail-fast", "--", "--nocapture"])))
        );
    }

    #[test]
    fn redis_runs_the_command_after_an_optional_double_dash() {
        let bench = Task::Redis("cargo".into(), args(&["bench", "--", "--x"]));
        assert_eq!(
            Task::parse(args(&["redis", "--", "cargo", "bench", "--", "--x"])),
            Ok(bench)
        );
        assert_eq!(
            Task::parse(args(&["redis", "cargo", "bench", "--", "--x"])),
            Ok(Task::Redis("cargo".into(), args(&["bench", "--", "--x"])))
        );
    }

    #[test]
    fn bad_input_is_refused_with_its_reason() {
        assert_eq!(Task::parse(args(&[])), Err("no task given".into()));
        assert_eq!(
            Task::parse(args(&["redis", "--"])),
            Err("`redis` needs a command to run".into())
        );
        assert_eq!(
            Task::parse(args(&["tset"])),
            Err("unknown task `tset`".into())
        );
    }
}
