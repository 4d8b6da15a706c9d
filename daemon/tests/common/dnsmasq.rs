//! dnsmasq (apt `dnsmasq-base`) as a name server on 127.0.0.1 for the tests: it knows only
//! the names it is given, forwards nothing, and logs every query it gets.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A running dnsmasq, stopped on drop.
pub struct Dnsmasq {
    child: Child,
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    queries: Arc<Mutex<Vec<String>>>,
}

impl Dnsmasq {
    /// Starts dnsmasq answering `records` (`name`, address; an empty address makes the
    /// name NXDOMAIN) and nothing else.
    pub fn start(records: &[(&str, &str)]) -> Dnsmasq {
        Self::start_with(records, &[])
    }

    /// [`Dnsmasq::start`] with more dnsmasq options (`--txt-record=...`).
    pub fn start_with(records: &[(&str, &str)], extra: &[&str]) -> Dnsmasq {
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("dnsmasq");
            cmd.args([
                "--keep-in-foreground",
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                // Answers to `--address` names carry TTL 0 unless told otherwise.
                "--local-ttl=60",
                "--log-queries",
                "--log-facility=-",
                "--user=root",
                "--pid-file=",
                &format!("--port={port}"),
            ]);
            for (name, ip) in records {
                cmd.arg(format!("--address=/{name}/{ip}"));
            }
            cmd.args(extra);
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("dnsmasq must be installed (apt dnsmasq-base; the CI script installs it)");
            let queries = Arc::new(Mutex::new(Vec::new()));
            let log = Arc::clone(&queries);
            let stderr = child.stderr.take().unwrap();
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let d = Dnsmasq {
                child,
                addr,
                queries,
            };
            if d.wait_ready() {
                return d;
            }
        }
        panic!("dnsmasq did not start");
    }

    /// Waits until dnsmasq answers on its port (it prints "started" first).
    fn wait_ready(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .queries
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains("started"))
            {
                return TcpListener::bind(self.addr).is_err();
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Query lines logged so far ("query[A] name from ...").
    pub fn queries(&self) -> Vec<String> {
        self.queries
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("query["))
            .cloned()
            .collect()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 (a race with other processes is
/// possible; the caller retries).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
