//! The one harness that runs the real `triproxy` binary for end-to-end tests, shared by
//! the daemon's own tests and the conformance suite's live replay (each finds the binary
//! its own way: Cargo names it only to tests of the package that builds it).
//!
//! A [`Daemon`] is a child process on loopback: started with a configuration or with
//! arguments, its listening address read from its first "listening on" line on stderr,
//! its log (stdout) collected line by line, stopped with SIGTERM by [`Daemon::terminate`]
//! or killed when dropped. Every wait is bounded (20 s, for loaded CI machines) and fails
//! the test with what was seen so far.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a test waits for the daemon to listen or for a log line.
pub const WAIT: Duration = Duration::from_secs(20);

/// A unique scratch directory under the system temp dir.
pub fn scratch_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "triproxy-e2e-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `triproxy` process; killed on drop.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// The address of the first service it reported.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    /// Every line of standard error so far (notices, reloads, warnings).
    stderr: Arc<Mutex<Vec<String>>>,
    /// The configuration file, when started with [`Daemon::start_binary`].
    pub config: Option<PathBuf>,
}

impl Daemon {
    /// Starts `bin` with `config` written to a scratch file, on `runtime` (`std` or
    /// `smol`). The config's first service should listen on `-p0 -i127.0.0.1`.
    pub fn start_binary(bin: &Path, config: &str, runtime: &str) -> Daemon {
        Self::start_binary_env(bin, config, runtime, &[])
    }

    /// [`Daemon::start_binary`] with extra environment variables for the child (such as
    /// `TRIPROXY_SYSLOG_SOCKET`), so parallel tests need not change this process's.
    pub fn start_binary_env(
        bin: &Path,
        config: &str,
        runtime: &str,
        env: &[(&str, &Path)],
    ) -> Daemon {
        let path = scratch_dir().join("triproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let mut daemon =
            Self::spawn_binary_env(bin, &["--runtime", runtime, path.to_str().unwrap()], env);
        daemon.config = Some(path);
        daemon
    }

    /// Starts `bin` with these arguments and waits for its first listening line.
    pub fn spawn_binary(bin: &Path, args: &[&str]) -> Daemon {
        Self::spawn_binary_env(bin, args, &[])
    }

    /// [`Daemon::spawn_binary`] with extra environment variables for the child.
    pub fn spawn_binary_env(bin: &Path, args: &[&str], env: &[(&str, &Path)]) -> Daemon {
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let errors = Arc::new(Mutex::new(Vec::new()));
        let error_sink = Arc::clone(&errors);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[triproxy stderr] {line}");
                error_sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        let stdout = child.stdout.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("[triproxy log] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("triproxy did not report a listening address"));
            if let Some(rest) = line.split(" listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap().parse().unwrap();
            }
        };
        Daemon {
            child,
            addr,
            log,
            stderr: errors,
            config: None,
        }
    }

    /// Every line of standard error so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most [`WAIT`]) for the `nth` (0-based) line of standard error that
    /// satisfies `pred`, and returns it.
    pub fn wait_stderr(&self, what: &str, nth: usize, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let lines = self.stderr_lines();
            if let Some(l) = lines.iter().filter(|l| pred(l)).nth(nth) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no stderr line {what} (#{nth}); stderr so far: {lines:#?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `signal` (a `kill` name such as `USR1`) to the daemon.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("the `kill` command must be installed");
        assert!(sent.success(), "kill -{signal} {pid} failed: {sent}");
    }

    /// Waits (at most [`WAIT`]) for a log line that satisfies `pred` and returns it.
    pub fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let lines = self.log_lines();
            if let Some(l) = lines.iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line {what}; log so far: {lines:#?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a log record whose `%E` (third field of the default format) is `code`
    /// and whose text contains `needle`.
    pub fn wait_code(&self, code: u16, needle: &str) -> String {
        let code = format!("{code:05}");
        self.wait_log(&format!("with code {code} and {needle:?}"), |l| {
            l.split_whitespace().nth(2) == Some(code.as_str()) && l.contains(needle)
        })
    }

    /// Every log line so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Stops the daemon as an init system does: SIGTERM (sent with the system's `kill`,
    /// to this child only), then waits at most [`WAIT`] for it to exit. Returns how it
    /// exited, so a test can tell an orderly stop from a death by the signal.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("the `kill` command must be installed");
        assert!(sent.success(), "kill -TERM {pid} failed: {sent}");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "triproxy (pid {pid}) still runs {WAIT:?} after SIGTERM"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
