//! Reloads and the orderly stop, end to end on both runtimes: SIGUSR1, SIGHUP and a
//! `monitor`ed file put a new configuration in force for new clients while open tunnels
//! keep flowing and each port keeps exactly one listener; a broken file keeps the old
//! configuration; many reloads in a row leak nothing; SIGTERM writes the records of the
//! tunnels it ends; the pid file holds the pid; `force` ends the tunnels and the plain HTTP
//! forwarding connections the new configuration refuses, `noforce` keeps them; a datagram
//! service keeps its socket and open mappings across a reload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::{connect, echo_target, socks5_connect, socks5_reply, Daemon, Start, IO_TIMEOUT};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

both_runtimes!(
    sigusr1_applies_a_new_acl_and_keeps_open_tunnels,
    sighup_reloads_too,
    a_monitored_file_change_reloads,
    a_broken_file_keeps_the_old_configuration,
    listeners_are_added_and_removed,
    many_reloads_leak_nothing,
    sigterm_writes_the_records_of_the_tunnels_it_ends,
    the_pid_file_holds_the_pid,
    force_closes_exactly_the_tunnels_the_new_configuration_refuses,
    noforce_keeps_established_tunnels,
    force_ends_http_forwarding_connections_the_new_configuration_refuses,
    datagram_services_keep_their_mappings_across_a_reload,
    force_keeps_tunnels_granted_from_the_auth_cache,
);

/// A port that is free now (bound and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How many listening TCP sockets `ss` shows on 127.0.0.1:`port`.
fn listeners_on(port: u16) -> usize {
    let out = Command::new("ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .expect("ss (iproute2) must be installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

fn config(port: u16, acl: &str, extra: &str) -> String {
    format!("log\nauth iponly\n{acl}\n{extra}socks -p{port} -i127.0.0.1\n")
}

/// One echo round trip through an open tunnel.
fn echo(s: &mut TcpStream, what: &[u8]) {
    s.write_all(what).unwrap();
    let mut back = vec![0u8; what.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, what);
}

/// Rewrites the daemon's configuration file.
fn rewrite(daemon: &Daemon, text: &str) {
    std::fs::write(daemon.config.as_ref().unwrap(), text).unwrap();
}

/// Rewrites the configuration, asks for a reload with SIGUSR1 and waits for the `nth`
/// (0-based) "reloaded" line, which it returns.
fn reload_with(daemon: &Daemon, text: &str, nth: usize) -> String {
    rewrite(daemon, text);
    daemon.signal("USR1");
    reloaded(daemon, nth)
}

/// Waits for the `nth` (0-based) "reloaded" line.
fn reloaded(daemon: &Daemon, nth: usize) -> String {
    daemon.wait_stderr("reloaded", nth, |l| l.contains(": reloaded ("))
}

/// Whether a new SOCKS5 CONNECT to `target` is granted.
fn granted(proxy: SocketAddr, target: SocketAddr) -> bool {
    let (reply, _) = socks5_reply(proxy, target, IO_TIMEOUT).expect("a reply");
    reply[1] == 0
}

fn reload_by(runtime: &str, signal: &str) {
    let target = echo_target();
    let port = free_port();
    let daemon = Daemon::start(&config(port, "allow *", "noforce\n"), runtime);
    let proxy = daemon.addr;
    let mut open = socks5_connect(proxy, target);
    echo(&mut open, b"before");
    rewrite(&daemon, &config(port, "deny *", "noforce\n"));
    daemon.signal(signal);
    let line = reloaded(&daemon, 0);
    assert!(line.contains(&format!("({}", "SIG")), "{line}");
    assert!(line.contains("1 service(s) kept their listener"), "{line}");
    // New clients get the new ACL (with `auth iponly`, a refusal is code 1); the open
    // tunnel keeps flowing.
    assert!(!granted(proxy, target), "the new ACL denies");
    daemon.wait_code(1, "CONNECT");
    echo(&mut open, b"after the reload");
    assert_eq!(listeners_on(port), 1, "one listener on the port");
    // And back.
    rewrite(&daemon, &config(port, "allow *", "noforce\n"));
    daemon.signal(signal);
    reloaded(&daemon, 1);
    assert!(granted(proxy, target));
    echo(&mut open, b"still");
    assert_eq!(listeners_on(port), 1);
}

fn sigusr1_applies_a_new_acl_and_keeps_open_tunnels(runtime: &str) {
    reload_by(runtime, "USR1");
}

fn sighup_reloads_too(runtime: &str) {
    reload_by(runtime, "HUP");
}

fn a_monitored_file_change_reloads(runtime: &str) {
    let target = echo_target();
    let port = free_port();
    let dir = triproxy_test_support::scratch_dir();
    let watched = dir.join("watched");
    std::fs::write(&watched, "one").unwrap();
    let extra = format!("monitor {}\nnoforce\n", watched.display());
    let daemon = Daemon::start(&config(port, "allow *", &extra), runtime);
    let mut open = socks5_connect(daemon.addr, target);
    rewrite(&daemon, &config(port, "deny *", &extra));
    // The file the daemon watches changes size.
    std::fs::write(&watched, "two, longer").unwrap();
    let line = reloaded(&daemon, 0);
    assert!(line.contains("watched changed"), "{line}");
    assert!(!granted(daemon.addr, target));
    echo(&mut open, b"still open");
    assert_eq!(listeners_on(port), 1);
}

fn a_broken_file_keeps_the_old_configuration(runtime: &str) {
    let target = echo_target();
    let port = free_port();
    let daemon = Daemon::start(&config(port, "allow *", ""), runtime);
    rewrite(
        &daemon,
        &format!("{}frobnicate\nmaxconn many\n", config(port, "deny *", "")),
    );
    daemon.signal("USR1");
    let refused = daemon.wait_stderr("refused", 0, |l| l.contains("refused: 2 error(s)"));
    assert!(
        refused.contains("previous configuration stays"),
        "{refused}"
    );
    let lines = daemon.stderr_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("triproxy.cfg:5: unknown command `frobnicate`")),
        "{lines:#?}"
    );
    assert!(
        granted(daemon.addr, target),
        "the old ACL is still in force"
    );
    // A port already in use by someone else: refused whole, the old services stay.
    let blocker = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = blocker.local_addr().unwrap().port();
    rewrite(
        &daemon,
        &format!(
            "{}socks -p{taken} -i127.0.0.1\n",
            config(port, "deny *", "")
        ),
    );
    daemon.signal("USR1");
    let failed = daemon.wait_stderr("bind failure", 0, |l| {
        l.contains("cannot start the service")
    });
    assert!(failed.contains("triproxy.cfg:5:"), "{failed}");
    assert!(granted(daemon.addr, target), "still the old ACL");
    assert_eq!(listeners_on(port), 1);
}

fn listeners_are_added_and_removed(runtime: &str) {
    let port = free_port();
    let second = free_port();
    let daemon = Daemon::start(&config(port, "allow *", ""), runtime);
    let two = format!(
        "{}socks -p{second} -i127.0.0.1\n",
        config(port, "allow *", "")
    );
    let line = reload_with(&daemon, &two, 0);
    assert!(line.contains("1 started, 0 stopped"), "{line}");
    assert_eq!((listeners_on(port), listeners_on(second)), (1, 1));
    let target = echo_target();
    let via_second: SocketAddr = format!("127.0.0.1:{second}").parse().unwrap();
    let mut s = socks5_connect(via_second, target);
    echo(&mut s, b"second");
    // The first service goes; its open tunnel does not.
    let line = reload_with(
        &daemon,
        &format!("log\nauth iponly\nallow *\nsocks -p{second} -i127.0.0.1\n"),
        1,
    );
    assert!(line.contains("0 started, 1 stopped"), "{line}");
    assert_eq!((listeners_on(port), listeners_on(second)), (0, 1));
    assert!(std::net::TcpStream::connect(daemon.addr).is_err(), "closed");
    echo(&mut s, b"still");
}

/// Open file descriptors and resident memory (KiB) of `pid`.
fn footprint(pid: u32) -> (usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    (fds, rss)
}

/// 3proxy has crashed after a few hundred SIGUSR1s (3proxy issue #97) and reconnected its
/// listeners several times per reload (#804).
fn many_reloads_leak_nothing(runtime: &str) {
    const RELOADS: usize = 500;
    let target = echo_target();
    let port = free_port();
    let daemon = Daemon::start(&config(port, "allow *", ""), runtime);
    let mut open = socks5_connect(daemon.addr, target);
    // Warm up: the first reload allocates what every later one reuses.
    daemon.signal("USR1");
    reloaded(&daemon, 0);
    let before = footprint(daemon.pid());
    for i in 1..=RELOADS {
        daemon.signal("USR1");
        reloaded(&daemon, i);
    }
    let after = footprint(daemon.pid());
    assert_eq!(after.0, before.0, "file descriptors before and after");
    assert!(
        after.1 <= before.1 + 2048,
        "resident memory grew from {} KiB to {} KiB",
        before.1,
        after.1
    );
    assert_eq!(listeners_on(port), 1);
    echo(&mut open, b"after 500 reloads");
    assert!(granted(daemon.addr, target));
}

fn sigterm_writes_the_records_of_the_tunnels_it_ends(runtime: &str) {
    let target = echo_target();
    let port = free_port();
    let mut daemon = Daemon::start(&config(port, "allow *", ""), runtime);
    let mut open = socks5_connect(daemon.addr, target);
    echo(&mut open, b"0123456789");
    let started = std::time::Instant::now();
    let status = daemon.terminate();
    assert!(status.success(), "an orderly stop exits 0: {status}");
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "drained within the bound"
    );
    // The open tunnel was ended, and logged with its bytes.
    let line = daemon.wait_log("for the ended tunnel", |l| {
        l.contains("CONNECT") && l.contains(&target.to_string())
    });
    assert!(
        line.contains(" 10 10 ") || line.contains(" 10 10"),
        "{line}"
    );
    let mut rest = Vec::new();
    let _ = open.read_to_end(&mut rest);
    assert!(daemon.stderr_lines().iter().any(|l| l.ends_with("stopped")));
}

fn the_pid_file_holds_the_pid(runtime: &str) {
    let dir = triproxy_test_support::scratch_dir();
    let pidfile = dir.join("triproxy.pid");
    let port = free_port();
    let extra = format!("pidfile {}\n", pidfile.display());
    let mut daemon = Daemon::start(&config(port, "allow *", &extra), runtime);
    let text = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(text, format!("{}\n", daemon.pid()));
    assert!(daemon.terminate().success());
    assert!(!Path::new(&pidfile).exists(), "removed at an orderly stop");
    let _ = connect;
}

/// A SOCKS5 CONNECT with RFC 1929 user and password; asserts success.
fn socks5_login(proxy: SocketAddr, target: SocketAddr, user: &str, password: &str) -> TcpStream {
    let mut s = connect(proxy);
    s.write_all(&[5, 1, 2]).unwrap();
    let mut method = [0u8; 2];
    s.read_exact(&mut method).unwrap();
    assert_eq!(method, [5, 2]);
    let mut auth = vec![1, user.len() as u8];
    auth.extend_from_slice(user.as_bytes());
    auth.push(password.len() as u8);
    auth.extend_from_slice(password.as_bytes());
    s.write_all(&auth).unwrap();
    let mut status = [0u8; 2];
    s.read_exact(&mut status).unwrap();
    let SocketAddr::V4(t) = target else { panic!() };
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&t.ip().octets());
    req.extend_from_slice(&t.port().to_be_bytes());
    s.write_all(&req).unwrap();
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply[1], 0, "CONNECT as {user}");
    s
}

fn users_config(port: u16, users: &str, allowed: &str, force: &str) -> String {
    format!("log\nusers {users}\nauth strong\nallow {allowed}\n{force}socks -p{port} -i127.0.0.1\n")
}

/// Whether the tunnel was closed by the proxy (end of stream or reset).
fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(b"x");
    let mut buf = [0u8; 16];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return true,
            // The echo of a byte written before the close.
            Ok(_) => continue,
        }
    }
}

fn force_closes_exactly_the_tunnels_the_new_configuration_refuses(runtime: &str) {
    let target = echo_target();
    let port = free_port();
    let daemon = Daemon::start(
        &users_config(port, "alice:CL:a bob:CL:b", "alice,bob", ""),
        runtime,
    );
    let mut alice = socks5_login(daemon.addr, target, "alice", "a");
    let mut bob = socks5_login(daemon.addr, target, "bob", "b");
    echo(&mut alice, b"alice");
    echo(&mut bob, b"bob");
    // bob is removed from the users table.
    let line = reload_with(
        &daemon,
        &users_config(port, "alice:CL:a", "alice,bob", ""),
        0,
    );
    assert!(
        line.contains("1 established connection(s) closed"),
        "{line}"
    );
    assert!(closed(&mut bob), "bob's tunnel is closed");
    // Logged with the refusal's code (5: no such user) and the bytes it moved.
    let record = daemon.wait_code(5, "CONNECT");
    assert!(record.contains(" bob "), "{record}");
    echo(&mut alice, b"alice keeps flowing");
    // A changed password ends alice's tunnel too (code 6), with its own record.
    reload_with(&daemon, &users_config(port, "alice:CL:new", "alice", ""), 1);
    assert!(closed(&mut alice));
    let record = daemon.wait_code(6, "CONNECT");
    assert!(record.contains(" alice "), "{record}");
}

fn noforce_keeps_established_tunnels(runtime: &str) {
    let target = echo_target();
    let port = free_port();
    let daemon = Daemon::start(
        &users_config(port, "alice:CL:a bob:CL:b", "alice,bob", "noforce\n"),
        runtime,
    );
    let mut bob = socks5_login(daemon.addr, target, "bob", "b");
    let line = reload_with(
        &daemon,
        &users_config(port, "alice:CL:a", "alice", "noforce\n"),
        0,
    );
    assert!(
        line.contains("0 established connection(s) closed"),
        "{line}"
    );
    echo(&mut bob, b"bob under noforce");
}

/// A keep-alive connection to the HTTP proxy as `user`, with one request sent.
fn http_request(proxy: SocketAddr, origin: SocketAddr, path: &str, user: &str) -> TcpStream {
    let mut s = connect(proxy);
    send_request(&mut s, origin, path, user);
    s
}

fn send_request(s: &mut TcpStream, origin: SocketAddr, path: &str, user: &str) {
    use base64::Engine as _;
    let credentials = base64::engine::general_purpose::STANDARD.encode(user);
    let head = format!(
        "GET http://{origin}{path} HTTP/1.1\r\nHost: {origin}\r\nProxy-Authorization: Basic {credentials}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
}

/// Reads until `what` has arrived (the answer's head and body so far).
fn read_until(s: &mut TcpStream, what: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(what.len()).any(|w| w == what) {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before {:?}: {:?}",
            String::from_utf8_lossy(what),
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Plain HTTP forwarding under `force`: a request in progress whose user the new
/// configuration removes is ended and logged with code 5; an idle keep-alive connection
/// whose last request is still granted goes on; one whose user's password changed is
/// closed between requests, without a record.
fn force_ends_http_forwarding_connections_the_new_configuration_refuses(runtime: &str) {
    use common::origin::{Origin, HOLD_FIRST};
    let origin = Origin::start("origin");
    let port = free_port();
    let config = |users: &str| {
        format!("log\nusers {users}\nauth strong\nallow alice,bob\nproxy -p{port} -i127.0.0.1\n")
    };
    let daemon = Daemon::start(&config("alice:CL:a bob:CL:b"), runtime);
    // bob's answer is held half-way; alice's request is answered and her connection idles.
    let mut bob = http_request(daemon.addr, origin.addr, "/hold", "bob:b");
    read_until(&mut bob, HOLD_FIRST);
    let mut alice = http_request(daemon.addr, origin.addr, "/first", "alice:a");
    read_until(&mut alice, b"origin GET /first");
    daemon.wait_code(0, "/first");

    let line = reload_with(&daemon, &config("alice:CL:a"), 0);
    assert!(
        line.contains("1 established connection(s) closed"),
        "{line}"
    );
    assert!(closed(&mut bob), "bob's connection is closed");
    let record = daemon.wait_code(5, "/hold");
    assert!(record.contains(" bob "), "{record}");

    // alice's connection carries another request.
    send_request(&mut alice, origin.addr, "/second", "alice:a");
    read_until(&mut alice, b"origin GET /second");
    daemon.wait_code(0, "/second");

    // A new password: alice's idle connection is closed, with no record for it.
    let line = reload_with(&daemon, &config("alice:CL:new"), 1);
    assert!(
        line.contains("1 established connection(s) closed"),
        "{line}"
    );
    assert!(closed(&mut alice), "alice's idle connection is closed");
    origin.release();
    std::thread::sleep(Duration::from_millis(200));
    let sixes = daemon
        .log_lines()
        .iter()
        .filter(|l| l.split_whitespace().nth(2) == Some("00006"))
        .count();
    assert_eq!(sixes, 0, "{:#?}", daemon.log_lines());
}

/// `udppm` across reloads: an ACL change keeps the service, its socket and the open mapping
/// (which goes on with the policy it was opened with) while a new client gets the new ACL,
/// logged to the new log; a new target restarts it.
fn datagram_services_keep_their_mappings_across_a_reload(runtime: &str) {
    use common::udp_echo;
    use std::net::UdpSocket;
    let echo = udp_echo();
    let port = free_port();
    let config = |acl: &str, target: SocketAddr| {
        format!(
            "log\nauth iponly\n{acl}\nudppm -i127.0.0.1 {port} 127.0.0.1 {}\n",
            target.port()
        )
    };
    let daemon = Daemon::start(&config("allow *", echo), runtime);
    let service: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let round_trip = |u: &UdpSocket, what: &[u8]| -> bool {
        u.send_to(what, service).unwrap();
        let mut buf = [0u8; 64];
        matches!(u.recv_from(&mut buf), Ok((n, _)) if &buf[..n] == what)
    };
    let client = |wait_ms| {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_millis(wait_ms)))
            .unwrap();
        u
    };
    let kept = client(5000);
    assert!(round_trip(&kept, b"before"));

    let line = reload_with(&daemon, &config("deny *", echo), 0);
    assert!(
        line.contains("1 service(s) kept their listener, 0 started, 0 stopped"),
        "{line}"
    );
    assert!(round_trip(&kept, b"after"), "the open mapping goes on");
    let stranger = client(700);
    assert!(
        !round_trip(&stranger, b"refused"),
        "a new client gets the new ACL"
    );
    daemon.wait_code(1, "UDPMAP");

    // Another target: the service is restarted on its address.
    let other = udp_echo();
    let line = reload_with(&daemon, &config("allow *", other), 1);
    assert!(
        line.contains("0 service(s) kept their listener, 1 started, 1 stopped"),
        "{line}"
    );
    let fresh = client(5000);
    assert!(round_trip(&fresh, b"restarted"));
}

/// A tunnel granted by a cache hit that presented the cached password stands as one that
/// passed `strong`: a reload that changes nothing keeps it; one that changes the user's
/// password ends it (code 6), like the tunnel that passed `strong` itself.
fn force_keeps_tunnels_granted_from_the_auth_cache(runtime: &str) {
    let target = echo_target();
    let port = free_port();
    let config = |users: &str, extra: &str| {
        format!(
            "log\nusers {users}\nauthcache user,password 60\nauth cache strong\nallow alice\n{extra}socks -p{port} -i127.0.0.1\n"
        )
    };
    let daemon = Daemon::start(&config("alice:CL:a", ""), runtime);
    let mut first = socks5_login(daemon.addr, target, "alice", "a");
    let mut cached = socks5_login(daemon.addr, target, "alice", "a");
    echo(&mut first, b"strong");
    echo(&mut cached, b"from the cache");

    // Another line that changes nothing for alice.
    let line = reload_with(&daemon, &config("alice:CL:a", "maxconn 50\n"), 0);
    assert!(
        line.contains("0 established connection(s) closed"),
        "{line}"
    );
    echo(&mut cached, b"still flowing");

    let line = reload_with(&daemon, &config("alice:CL:new", ""), 1);
    assert!(
        line.contains("2 established connection(s) closed"),
        "{line}"
    );
    assert!(closed(&mut first) && closed(&mut cached));
}
