//! End-to-end: 3proxy's own sample configurations, remapped to loopback, start and serve on
//! both runtimes, driven by real clients (curl in its SOCKS5, HTTP-proxy, POP3 and plain
//! HTTP modes, and `dig`).
//!
//! The remapping changes addresses and ports only, never a rule: `internal`/`external`
//! become 127.0.0.1, every `nserver` becomes a dnsmasq on 127.0.0.1 that knows the samples'
//! names, and every service gets `-p0` (tcppm's local port 0, its target port the test's
//! server). Users, ACLs, limits, log formats and Windows paths stay as written, so the
//! classic sample's `log c:\3proxy\logs\3proxy.log D` writes a daily file of that name in
//! the configuration's folder, and its `deny * * 127.0.0.1,...` refuses the HTTP proxy
//! every loopback target, which the test checks too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::dnsmasq::Dnsmasq;
use common::mail::{pop3_server, MESSAGE};
use common::samples::sample_dir;
use common::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

both_runtimes!(
    classic_sample_serves_every_service,
    counters_sample_serves_and_counts
);

/// The sample's text with its addresses and ports moved to loopback: every `nserver` to
/// `dns`, `internal`/`external` to 127.0.0.1, `-p0` on every service, and tcppm's target
/// port to `tcppm_target`.
fn remap(sample: &str, dns: SocketAddr, tcppm_target: u16) -> String {
    const SERVICES: [&str; 5] = ["dnspr", "pop3p", "admin", "proxy", "socks"];
    let mut out = String::new();
    for line in sample.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let moved = match words.as_slice() {
            ["nserver", _] => format!("nserver {dns}"),
            ["internal", _] => "internal 127.0.0.1".to_owned(),
            ["external", _] => "external 127.0.0.1".to_owned(),
            ["tcppm", _, host, _] => format!("tcppm 0 {host} {tcppm_target}"),
            [service, ..] if SERVICES.contains(service) => format!("{line} -p0"),
            _ => line.to_owned(),
        };
        out.push_str(&moved);
        out.push('\n');
    }
    out
}

/// Starts the daemon on the sample's remapped text and returns it with every service's
/// address, by command name, once all `count` services listen.
fn start(
    config: &str,
    runtime: &str,
    count: usize,
) -> (Daemon, BTreeMap<&'static str, SocketAddr>) {
    let d = Daemon::start(config, runtime);
    d.wait_stderr("for every service", count - 1, |l| {
        l.contains(" listening on ")
    });
    let mut addrs = BTreeMap::new();
    for line in d.stderr_lines() {
        let Some((head, rest)) = line.split_once(" listening on ") else {
            continue;
        };
        let service = ["dnspr", "pop3p", "tcppm", "admin", "proxy", "socks"]
            .into_iter()
            .find(|s| head.ends_with(s))
            .unwrap_or_else(|| panic!("unknown service in {line}"));
        let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
        assert!(addrs.insert(service, addr).is_none(), "{service} twice");
    }
    assert_eq!(addrs.len(), count, "{addrs:?}");
    (d, addrs)
}

fn read_sample(dir: &Path, name: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(dir.join(name)).unwrap()).into_owned()
}

/// `dig @server name A +short`.
fn dig_a(server: SocketAddr, name: &str) -> String {
    let out = Command::new("dig")
        .args([
            &format!("@{}", server.ip()),
            "-p",
            &server.port().to_string(),
            "+time=5",
            "+tries=1",
            name,
            "A",
            "+short",
        ])
        .output()
        .expect("dig must be installed (apt dnsutils; the CI script installs it)");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The status code of `curl -i`'s answer.
fn status(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

/// `cfg_3proxy.cfg.sample`: six services (dnspr, pop3p, tcppm 25, admin, proxy, socks),
/// a CL and a CR user, a daily log under a Windows name with its own format.
fn classic_sample_serves_every_service(runtime: &str) {
    let Some(dir) = sample_dir() else { return };
    let dns = Dnsmasq::start(&[("mail.my.provider", "127.0.0.1")]);
    let web = http_server("through the sample");
    let echo = echo_target();
    let pop3 = pop3_server();
    let config = remap(
        &read_sample(&dir, "cfg_3proxy.cfg.sample"),
        dns.addr,
        echo.port(),
    );
    let (mut d, at) = start(&config, runtime, 6);

    // dnspr answers from the name server.
    assert_eq!(dig_a(at["dnspr"], "mail.my.provider"), "127.0.0.1");

    // socks: `auth strong`, `allow 3APA3A,test`; the CL and the CR (MD5-crypt) user.
    let url = format!("http://{web}/");
    for user in ["3APA3A:3apa3a", "test:test"] {
        let proxy = format!("socks5h://{user}@{}", at["socks"]);
        let (ok, body, err) = curl(&["--proxy", &proxy, &url]);
        assert!(ok, "{user}: {err}");
        assert_eq!(body, "through the sample");
    }
    let proxy = format!("socks5h://test:wrong@{}", at["socks"]);
    assert!(!curl(&["--proxy", &proxy, &url]).0, "a wrong password");

    // proxy -n: `auth strong` asks for credentials; with them its
    // `deny * * 127.0.0.1,192.168.1.1` refuses a loopback target.
    let proxy = format!("http://{}", at["proxy"]);
    let (ok, answer, err) = curl(&["-i", "--proxy", &proxy, &url]);
    assert!(ok, "{err}");
    assert_eq!(status(&answer), 407, "{answer}");
    let (ok, answer, err) = curl(&["-i", "--proxy", &proxy, "-U", "3APA3A:3apa3a", &url]);
    assert!(ok, "{err}");
    assert_eq!(status(&answer), 403, "{answer}");

    // pop3p (auth none): curl fetches a message naming the server in the user.
    let user = format!("joe@{}", pop3.addr)
        .replace('@', "%40")
        .replace(':', "%3A");
    let (ok, body, err) = curl(&[&format!("pop3://{user}:secret@{}/1", at["pop3p"])]);
    assert!(ok, "pop3: {err}");
    assert_eq!(body, MESSAGE);

    // tcppm: mail.my.provider resolved through the nserver, bytes echoed.
    let mut s = connect(at["tcppm"]);
    s.write_all(b"HELO sample\r\n").unwrap();
    assert_eq!(read_n(&mut s, 13), b"HELO sample\r\n");
    drop(s);

    // admin: `allow 3APA3A 127.0.0.1` under `auth strong`.
    let page = format!("http://{}/", at["admin"]);
    let (ok, answer, err) = curl(&["-i", "-u", "3APA3A:3apa3a", &page]);
    assert!(ok, "{err}");
    assert_eq!(status(&answer), 200, "{answer}");
    let (_, answer, _) = curl(&["-i", "-u", "test:test", &page]);
    assert_eq!(status(&answer), 403, "another user: {answer}");

    // Every record went to the daily file named `c:\3proxy\logs\3proxy.log` + date, in
    // the configuration's folder, with the sample's format (`%N.%p` = service.port).
    let folder = d.config.clone().unwrap().parent().unwrap().to_owned();
    let socks_port = format!(" SOCK5.{}", at["socks"].port());
    // `%N.%p %E %U`: 3proxy's service names, codes (7: wrong password; 4: no credentials;
    // 1: refused by the ACL; 3: not in the admin's ACL) and users.
    let wanted = [
        format!("{socks_port} 00000 3APA3A "),
        format!("{socks_port} 00000 test "),
        format!("{socks_port} 00007 test "),
        format!(" PROXY.{} 00004 - ", at["proxy"].port()),
        format!(" PROXY.{} 00001 3APA3A ", at["proxy"].port()),
        format!(" POP3P.{} 00000 joe ", at["pop3p"].port()),
        format!(" TCPPM.{} 00000 - ", at["tcppm"].port()),
        format!(" DNSPR.{} 00000 - ", at["dnspr"].port()),
        format!(" ADMIN.{} 00003 test ", at["admin"].port()),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let records: String = std::fs::read_dir(&folder)
            .unwrap()
            .map_while(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(r"c:\3proxy\logs\3proxy.log")
            })
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect();
        let missing: Vec<&String> = wanted.iter().filter(|w| !records.contains(*w)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing:?} not in {folder:?}: {records}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(d.terminate().success());
}

/// `cfg_counters.sample`: dnspr, six CL users, the counter file with daily reports, the
/// HTTP proxy under `auth strong`, the admin for `user1` whose counters page shows the
/// traffic the proxy counted.
fn counters_sample_serves_and_counts(runtime: &str) {
    let Some(dir) = sample_dir() else { return };
    let dns = Dnsmasq::start(&[("counted.test", "127.0.0.1")]);
    let web = http_server("counted");
    let config = remap(&read_sample(&dir, "cfg_counters.sample"), dns.addr, 0);
    let (mut d, at) = start(&config, runtime, 3);

    assert_eq!(dig_a(at["dnspr"], "counted.test"), "127.0.0.1");

    let proxy = format!("http://user1:password1@{}", at["proxy"]);
    let url = format!("http://{web}/");
    let (ok, body, err) = curl(&["--proxy", &proxy, &url]);
    assert!(ok, "{err}");
    assert_eq!(body, "counted");
    let (_, answer, _) = curl(&["-i", "--proxy", &format!("http://{}", at["proxy"]), &url]);
    assert_eq!(status(&answer), 407, "no credentials: {answer}");

    // `countin "1/Test 1" D 100 *` counted the request; the admin (user1 only) shows it.
    let counters = format!("http://{}/C", at["admin"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (ok, page, err) = curl(&["-u", "user1:password1", &counters]);
        assert!(ok, "{err}");
        if used_bytes(&page, "1/Test 1").is_some_and(|n| n > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "no traffic counted: {page}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, answer, _) = curl(&["-i", "-u", "user2:password2", &counters]);
    assert_eq!(status(&answer), 403, "user2 is not the admin: {answer}");

    // The counter file is written under its Windows name in the configuration's folder.
    assert!(d.terminate().success());
    let folder = d.config.clone().unwrap().parent().unwrap().to_owned();
    let mut file = Vec::new();
    std::fs::File::open(folder.join(r"d:\3proxy\3profy.3cf"))
        .unwrap()
        .read_to_end(&mut file)
        .unwrap();
    assert!(!file.is_empty());
}

/// The "Used (bytes)" cell (the eighth) of the counters page's row for `name`.
fn used_bytes(page: &str, name: &str) -> Option<u64> {
    let row = page.lines().find(|l| l.contains(name))?;
    let cell = row.split("<td>").nth(8)?;
    cell.split("</td>").next()?.parse().ok()
}
