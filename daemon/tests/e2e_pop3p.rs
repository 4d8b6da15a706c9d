//! End-to-end: the POP3 proxy (`pop3p`) on both runtimes, with curl as the client and the
//! small POP3 server of `common::mail` as the target.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::mail::{pop3_server, MESSAGE};
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;

both_runtimes!(
    curl_retrieves_a_message_through_pop3p,
    a_default_host_and_proxy_credentials,
    bad_users_unreachable_servers_and_loops_get_err,
    over_long_lines_and_quit_before_user,
);

const OPEN: &str = "log\nauth iponly\nallow *\npop3p -p0 -i127.0.0.1\n";

/// `user@host:port` in a POP3 URL's user info (curl decodes `%40` and `%3A`).
fn pop3_url(proxy: SocketAddr, user: &str, path: &str) -> String {
    let user = user.replace('@', "%40").replace(':', "%3A");
    format!("pop3://{user}:secret@{proxy}/{path}")
}

fn curl_retrieves_a_message_through_pop3p(runtime: &str) {
    let server = pop3_server();
    let d = Daemon::start(OPEN, runtime);
    let user = format!("joe@{}", server.addr);
    let (ok, body, err) = curl(&[&pop3_url(d.addr, &user, "1")]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, MESSAGE);
    let line = d.wait_code(0, &user);
    assert!(line.contains(" joe "), "the user is logged: {line}");
    let lines = server.lines();
    assert!(lines.contains(&"USER joe".to_owned()), "{lines:?}");
    assert!(lines.contains(&"PASS secret".to_owned()), "{lines:?}");
    // A listing too, on a new connection.
    let (ok, list, err) = curl(&[&pop3_url(d.addr, &user, "")]);
    assert!(ok, "curl failed: {err}");
    assert!(list.starts_with("1 "), "{list}");
}

fn a_default_host_and_proxy_credentials(runtime: &str) {
    let server = pop3_server();
    let cfg = format!(
        "log\nusers alice:CL:wonder\nauth strong\nallow alice\npop3p -p0 -i127.0.0.1 -h{}\n",
        server.addr
    );
    let d = Daemon::start(&cfg, runtime);
    // proxyuser:proxypass:user, and no host: the -h default.
    let url = pop3_url(d.addr, "alice:wonder:joe", "1");
    let (ok, body, err) = curl(&[&url]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, MESSAGE);
    d.wait_code(0, "joe");
    // A wrong proxy password: refused with -ERR, logged 6.
    let (ok, _, _) = curl(&[&pop3_url(d.addr, "alice:nope:joe", "1")]);
    assert!(!ok);
    d.wait_code(6, "joe");
}

/// Sends `lines` to the proxy one by one, returns every line it answered until it closed.
fn talk(proxy: SocketAddr, lines: &[&str]) -> Vec<String> {
    let s = connect(proxy);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    let mut got = Vec::new();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    got.push(line.trim_end().to_owned());
    for l in lines {
        if w.write_all(format!("{l}\r\n").as_bytes()).is_err() {
            break;
        }
    }
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return got,
            Ok(_) => got.push(line.trim_end().to_owned()),
        }
    }
}

fn bad_users_unreachable_servers_and_loops_get_err(runtime: &str) {
    let d = Daemon::start(OPEN, runtime);
    let got = talk(d.addr, &["USER nohost"]);
    assert!(got.last().unwrap().starts_with("-ERR"), "{got:?}");
    d.wait_code(615, "");
    // Nothing listens on port 9 of 127.0.0.1.
    let got = talk(d.addr, &["USER joe@127.0.0.1:9"]);
    assert!(got.last().unwrap().starts_with("-ERR"), "{got:?}");
    d.wait_code(13, "joe@127.0.0.1:9");
    // The proxy asked to log in to itself sees its own greeting: 622, not a loop.
    let got = talk(d.addr, &[&format!("USER joe@{}", d.addr)]);
    assert!(got.last().unwrap().starts_with("-ERR"), "{got:?}");
    d.wait_code(622, "joe@");
}

fn over_long_lines_and_quit_before_user(runtime: &str) {
    let d = Daemon::start(OPEN, runtime);
    let long = "X".repeat(4000);
    let got = talk(d.addr, &[&long]);
    assert!(got.last().unwrap().starts_with("-ERR"), "{got:?}");
    d.wait_code(612, "");
    let got = talk(d.addr, &["CAPA", "QUIT"]);
    assert!(
        got.iter().any(|l| l == "USER"),
        "CAPA answered by the proxy: {got:?}"
    );
    assert!(got.last().unwrap().starts_with("+OK"), "{got:?}");
    // Still serving.
    let server = pop3_server();
    let user = format!("joe@{}", server.addr);
    let (ok, body, err) = curl(&[&pop3_url(d.addr, &user, "1")]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, MESSAGE);
}
