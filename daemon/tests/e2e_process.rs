//! Process control end to end: `setuid`/`setgid` after binding (checked through /proc),
//! `daemon` with `pidfile`, start-up errors that name the line and exit 2, `--check`, and
//! the service-manager notifications (`NOTIFY_SOCKET`) a systemd `Type=notify` unit reads,
//! and `chroot`: every configured file stays inside the root, before and after it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::{echo_target, socks5_connect, Daemon, Start};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_triproxy");

both_runtimes!(
    privileges_are_dropped_after_binding,
    the_service_manager_hears_ready_reloading_and_stopping,
    chroot_keeps_every_file_in_the_root_before_and_after,
);

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        == Some("0")
}

/// The effective user and group of `pid`, from /proc.
fn ids(pid: u32) -> (String, String) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().nth(1))
            .unwrap()
            .to_owned()
    };
    (field("Uid:"), field("Gid:"))
}

fn privileges_are_dropped_after_binding(runtime: &str) {
    let config = "log\nsetgid 65534\nsetuid 65534\nsocks -p0 -i127.0.0.1\n";
    if !is_root() {
        // Without root, dropping privileges must fail loudly, never be skipped.
        let path = triproxy_test_support::scratch_dir().join("priv.cfg");
        std::fs::write(&path, config).unwrap();
        let out = Command::new(BIN)
            .args(["--runtime", runtime, path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("failed: Operation not permitted"), "{err}");
        return;
    }
    let daemon = Daemon::start(config, runtime);
    assert_eq!(
        ids(daemon.pid()),
        ("65534".to_owned(), "65534".to_owned()),
        "uid and gid of the running daemon"
    );
    // It still serves (the listener was bound before).
    let target = echo_target();
    let mut s = socks5_connect(daemon.addr, target);
    s.write_all(b"as nobody").unwrap();
    let mut back = [0u8; 9];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"as nobody");
}

#[test]
fn daemon_detaches_and_writes_its_pid() {
    let dir = triproxy_test_support::scratch_dir();
    let pidfile = dir.join("d.pid");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.join("d.cfg");
    std::fs::write(
        &cfg,
        format!(
            "daemon\npidfile {}\nsocks -p{port} -i127.0.0.1\n",
            pidfile.display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let status = Command::new(BIN).arg(&cfg).status().unwrap();
    assert!(status.success(), "the foreground process exits 0: {status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "no pid file");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "the daemon runs"
    );
    let target = echo_target();
    let _s = socks5_connect(format!("127.0.0.1:{port}").parse().unwrap(), target);
    // Its own session: no controlling terminal ties it to ours.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = stat.rsplit(')').next().unwrap();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields after the name: state, ppid, pgrp, session, tty_nr.
    assert_eq!(fields[3], pid.to_string(), "session leader");
    assert_eq!(fields[4], "0", "no controlling terminal");
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
    {
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn start_up_errors_name_the_line_and_exit_2() {
    let dir = triproxy_test_support::scratch_dir();
    let blocker = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let cfg = dir.join("busy.cfg");
    std::fs::write(&cfg, format!("\nsocks -p{port} -i127.0.0.1\n")).unwrap();
    let out = Command::new(BIN).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "busy.cfg:2: cannot start the service on 127.0.0.1:{port}: Address already in use"
        )),
        "{err}"
    );
    let cfg = dir.join("nolog.cfg");
    std::fs::write(
        &cfg,
        "log /nonexistent-dir/x/triproxy.log\nsocks -p0 -i127.0.0.1\n",
    )
    .unwrap();
    let out = Command::new(BIN).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nolog.cfg:2: cannot open the service's log: No such file or directory"),
        "{err}"
    );
}

#[test]
fn check_prints_the_services_or_every_error() {
    let dir = triproxy_test_support::scratch_dir();
    let good = dir.join("good.cfg");
    std::fs::write(
        &good,
        "pidfile /nonexistent/x.pid\nsetuid 65534\nsocks -p1080 -i127.0.0.1\nudppm -p0 5353 127.0.0.1 53\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--check", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("socks 127.0.0.1 1080 tcp"), "{text}");
    assert!(text.contains("udppm 0.0.0.0 5353 udp"), "{text}");
    assert!(text.contains("configuration OK, 2 service(s)"), "{text}");
    assert!(!Path::new("/nonexistent/x.pid").exists());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("open proxy"),
        "udppm on 0.0.0.0 without auth: {err}"
    );
    let bad = dir.join("bad.cfg");
    std::fs::write(&bad, "maxconn x\nsocks -p1080\nfrobnicate\nsocks -q\n").unwrap();
    let out = Command::new(BIN)
        .args(["--check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for line in ["bad.cfg:1:", "bad.cfg:3:", "bad.cfg:4:", "3 error(s)"] {
        assert!(err.contains(line), "{line} in {err}");
    }
    // The container's default configuration is valid.
    let docker = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/docker.cfg");
    let out = Command::new(BIN)
        .args(["--check", docker])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --version names the commit; a service's --help lists its options.
    let out = Command::new(BIN).arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("triproxy 0.1.0 (commit "), "{text}");
    let out = Command::new(BIN)
        .args(["tlspr", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("-PPORT"), "{text}");
    let _ = Daemon::spawn;
}

/// The daemon tells the socket in `NOTIFY_SOCKET` it is ready (with its pid and a status)
/// once it listens; a reload is bracketed by RELOADING=1 (with MONOTONIC_USEC) and READY=1,
/// also when the new file is refused; SIGTERM sends STOPPING=1.
fn the_service_manager_hears_ready_reloading_and_stopping(runtime: &str) {
    let dir = triproxy_test_support::scratch_dir();
    let socket_path = dir.join("notify.sock");
    let manager = UnixDatagram::bind(&socket_path).unwrap();
    manager
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let next = || {
        let mut buf = [0u8; 4096];
        let n = manager.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let config = "socks -p0 -i127.0.0.1\n";
    let mut d = Daemon::start_env(config, runtime, &[("NOTIFY_SOCKET", &socket_path)]);
    let ready = next();
    let pid = d.pid();
    assert_eq!(
        ready,
        format!("READY=1\nSTATUS=1 service(s) listening\nMAINPID={pid}\n")
    );

    d.signal("USR1");
    let reloading = next();
    assert!(
        reloading.starts_with("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(next(), "READY=1\nSTATUS=reloaded; 1 service(s) listening\n");

    // A broken file: refused, the old configuration stays, and the manager hears it.
    let path = d.config.clone().unwrap();
    std::fs::write(&path, "socks -p0 -i127.0.0.1\nnosuchcommand\n").unwrap();
    d.signal("USR1");
    assert!(next().starts_with("RELOADING=1\n"));
    assert_eq!(
        next(),
        "READY=1\nSTATUS=reload refused (1 error(s)); previous configuration in force\n"
    );

    assert!(d.terminate().success());
    assert_eq!(next(), "STOPPING=1\nSTATUS=stopping\n");
}

/// Every file whose name comes after `chroot DIR` is inside DIR, whether the daemon opens it
/// before the chroot (the pid file, the first log file) or after it (records after a reload
/// that reads `config /conf/inner.cfg` inside the root, the counter file saved at exit, the
/// pid file's removal). As 3proxy's `scripts/3proxy.cfg.chroot` sample: a top file with
/// `chroot` and an `include` of the real configuration inside the root.
fn chroot_keeps_every_file_in_the_root_before_and_after(runtime: &str) {
    if !is_root() {
        eprintln!("not root: chroot cannot be tried here (skipped)");
        return;
    }
    let jail = triproxy_test_support::scratch_dir();
    for dir in ["conf", "logs", "count", "run"] {
        std::fs::create_dir_all(jail.join(dir)).unwrap();
    }
    // A fixed port: a reload keeps a listener whose address did not change.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let inner = format!(
        "config /conf/inner.cfg
pidfile /run/t.pid
log /logs/p.log D
counter /count/t.3cf
countin \"1/all\" D 100 *
auth iponly
allow * 127.0.0.1
socks -p{port} -i127.0.0.1
"
    );
    std::fs::write(jail.join("conf/inner.cfg"), inner).unwrap();
    let top = triproxy_test_support::scratch_dir().join("top.cfg");
    std::fs::write(
        &top,
        format!("chroot {}\ninclude /conf/inner.cfg\n", jail.display()),
    )
    .unwrap();
    let mut d = Daemon::spawn(&["--runtime", runtime, top.to_str().unwrap()]);
    let pid = d.pid();
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).unwrap(),
        std::fs::canonicalize(&jail).unwrap(),
        "the daemon's root"
    );
    let pidfile = jail.join("run/t.pid");
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string()
    );
    let target = echo_target();
    let records = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text: String = std::fs::read_dir(jail.join("logs"))
                .unwrap()
                .map_while(Result::ok)
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect();
            if text.lines().filter(|l| l.contains("CONNECT")).count() >= n {
                return text;
            }
            assert!(Instant::now() < deadline, "{n} records wanted: {text:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    drop(socks5_connect(d.addr, target));
    records(1);
    // A reload reads `config /conf/inner.cfg` inside the root; records still land there.
    d.signal("USR1");
    let line = d.wait_stderr("reloaded", 0, |l| l.contains(": reload"));
    assert!(line.contains(": reloaded ("), "{line}");
    drop(socks5_connect(d.addr, target));
    records(2);
    assert!(d.terminate().success());
    let errors: Vec<String> = d
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("cannot"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(
        jail.join("count/t.3cf").exists(),
        "the counter file is saved at exit, inside the root"
    );
    assert!(!pidfile.exists(), "the pid file is removed at exit");
}
