//! End-to-end: the SMTP and IMAP proxies (curl in its SMTP and IMAP modes against the small
//! servers of `common::mail`), the TLS SNI proxy (`openssl s_server` behind `tlspr`, reached
//! with `curl --resolve`), and `auto` (SOCKS, HTTP and TLS on one port), on both runtimes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::mail::{imap_server, smtp_server, MESSAGE};
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

both_runtimes!(
    curl_sends_mail_through_smtpp,
    smtpp_refusals_get_smtp_answers,
    curl_fetches_mail_through_imapp,
    curl_reaches_an_https_server_through_tlspr,
    tlspr_refuses_what_is_not_tls,
    auto_serves_socks_http_and_tls_on_one_port,
);

/// `user@host:port` in a URL's user info (curl decodes `%40` and `%3A`).
fn userinfo(user: &str) -> String {
    user.replace('@', "%40").replace(':', "%3A")
}

fn curl_sends_mail_through_smtpp(runtime: &str) {
    for mechanisms in ["PLAIN LOGIN", "LOGIN"] {
        let server = smtp_server(mechanisms);
        let d = Daemon::start(
            "log\nauth iponly\nallow *\nsmtpp -p0 -i127.0.0.1\n",
            runtime,
        );
        let user = format!("joe@{}", server.addr);
        let mail = std::env::temp_dir().join(format!("triproxy-mail-{}.txt", d.pid()));
        std::fs::write(&mail, MESSAGE).unwrap();
        let url = format!("smtp://{}:secret@{}", userinfo(&user), d.addr);
        let (ok, _, err) = curl(&[
            &url,
            "--mail-from",
            "a@example.test",
            "--mail-rcpt",
            "b@example.test",
            "--upload-file",
            mail.to_str().unwrap(),
        ]);
        let _ = std::fs::remove_file(&mail);
        assert!(ok, "curl failed ({mechanisms}): {err}");
        d.wait_code(0, &user);
        let lines = server.lines();
        assert!(
            lines.iter().any(|l| l.starts_with("EHLO [127.0.0.1]")),
            "EHLO with the client's address: {lines:?}"
        );
        assert!(
            lines.iter().any(|l| l == "Hello through the proxy."),
            "the message reached the server: {lines:?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("joe@")),
            "the server sees the real user only: {lines:?}"
        );
    }
}

/// Reads one SMTP reply (its last line) from `r`.
fn reply(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return String::new();
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.trim_end().to_owned();
        }
    }
}

fn smtpp_refusals_get_smtp_answers(runtime: &str) {
    let d = Daemon::start(
        "log\nauth iponly\ndeny * * 127.0.0.2\nallow *\nsmtpp -p0 -i127.0.0.1\n",
        runtime,
    );
    let talk = |user: &str| {
        let s = connect(d.addr);
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        assert!(reply(&mut r).starts_with("220"));
        w.write_all(b"EHLO client\r\n").unwrap();
        assert!(reply(&mut r).starts_with("250"));
        let plain = format!("\0{user}\0secret");
        let b64 = base64_encode(plain.as_bytes());
        w.write_all(format!("AUTH PLAIN {b64}\r\n").as_bytes())
            .unwrap();
        reply(&mut r)
    };
    // Nothing listens on 127.0.0.1:9: a temporary failure, 13.
    let answer = talk("joe@127.0.0.1:9");
    assert!(answer.starts_with('4'), "{answer}");
    d.wait_code(13, "joe@127.0.0.1:9");
    // Denied by the ACL: a permanent refusal, 1.
    let answer = talk("joe@127.0.0.2:25");
    assert!(answer.starts_with('5'), "{answer}");
    d.wait_code(1, "joe@127.0.0.2");
}

fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn curl_fetches_mail_through_imapp(runtime: &str) {
    let server = imap_server();
    let d = Daemon::start(
        "log\nauth iponly\nallow *\nimapp -p0 -i127.0.0.1\n",
        runtime,
    );
    let user = format!("joe@{}", server.addr);
    let url = format!("imap://{}:secret@{}/INBOX/;UID=1", userinfo(&user), d.addr);
    let (ok, body, err) = curl(&[&url]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, MESSAGE);
    d.wait_code(0, &user);
    let lines = server.lines();
    assert!(
        !lines.iter().any(|l| l.contains("joe@")),
        "the server sees the real user only: {lines:?}"
    );
}

/// `openssl s_server -www` for `tls.test` on 127.0.0.1, stopped on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_server() -> TlsServer {
    let dir = triproxy_test_support::scratch_dir();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=tls.test", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl must be installed");
    assert!(made.success());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("openssl")
        .args(["s_server", "-www", "-quiet", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s_server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    TlsServer { child, port }
}

fn https_via(proxy: SocketAddr) -> (bool, String, String) {
    let resolve = format!("tls.test:{}:127.0.0.1", proxy.port());
    let url = format!("https://tls.test:{}/", proxy.port());
    curl(&["-k", "--resolve", &resolve, &url])
}

fn curl_reaches_an_https_server_through_tlspr(runtime: &str) {
    let tls = tls_server();
    for check in ["-c1", "-c2"] {
        let cfg = format!(
            "nsrecord tls.test 127.0.0.1\nlog\nauth iponly\nallow * * tls.test\n\
             tlspr -p0 -i127.0.0.1 -P{} {check}\n",
            tls.port
        );
        let d = Daemon::start(&cfg, runtime);
        let (ok, body, err) = https_via(d.addr);
        assert!(ok, "curl failed ({check}): {err}");
        assert!(body.contains("s_server"), "the server's page: {body}");
        let line = d.wait_code(0, "tls.test");
        assert!(line.contains("TLSv1"), "{line}");
    }
}

fn tlspr_refuses_what_is_not_tls(runtime: &str) {
    let d = Daemon::start(
        "log\nauth iponly\nallow *\ntlspr -p0 -i127.0.0.1\n",
        runtime,
    );
    let mut s = connect(d.addr);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "closed without an answer: {rest:?}");
    d.wait_code(303, "");
    // A hello cut short (a truncated extension list) is malformed too.
    // A ClientHello whose extension list is cut short (it claims 64 bytes, holds 2).
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&[0, 64, 0, 0]); // extensions: 64 bytes announced, 2 present
    let mut handshake = vec![1, 0, 0, body.len() as u8];
    handshake.extend_from_slice(&body);
    let mut hello = vec![0x16, 3, 1, 0, handshake.len() as u8];
    hello.extend_from_slice(&handshake);
    let mut s = connect(d.addr);
    s.write_all(&hello).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "closed without an answer: {rest:?}");
    let line = d.wait_log("a malformed-hello record", |l| {
        l.split_whitespace()
            .nth(2)
            .is_some_and(|c| c.starts_with("003") && c != "00303")
    });
    assert!(line.contains("127.0.0.1"), "{line}");
}

fn auto_serves_socks_http_and_tls_on_one_port(runtime: &str) {
    let tls = tls_server();
    let origin = http_server("via auto");
    let cfg = format!(
        "nsrecord tls.test 127.0.0.1\nlog\nlogformat \"G%N %E %T\"\nauth iponly\nallow *\n\
         auto -p0 -i127.0.0.1 -P{}\n",
        tls.port
    );
    let d = Daemon::start(&cfg, runtime);
    let url = format!("http://{origin}/");
    let (ok, body, err) = curl(&["--socks5", &d.addr.to_string(), &url]);
    assert!(ok, "SOCKS5 through auto: {err}");
    assert_eq!(body, "via auto");
    let (ok, body, err) = curl(&["-x", &format!("http://{}", d.addr), &url]);
    assert!(ok, "HTTP through auto: {err}");
    assert_eq!(body, "via auto");
    let (ok, body, err) = https_via(d.addr);
    assert!(ok, "TLS through auto: {err}");
    assert!(body.contains("s_server"), "{body}");
    // Each logged under the protocol the first byte chose.
    for service in ["SOCK5 00000", "PROXY 00000", "TLSPR 00000"] {
        d.wait_log(service, |l| l.starts_with(service));
    }
}
