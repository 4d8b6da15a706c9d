//! End-to-end: names resolved by triproxy's own resolver (`nserver`, `nsrecord`,
//! `fakeresolve`, the `-4`/`-6` family options), with dnsmasq as the name server and curl
//! as the client, on both runtimes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::dnsmasq::Dnsmasq;
use common::*;

both_runtimes!(
    curl_reaches_a_name_only_the_nserver_knows,
    nserver_over_tcp,
    with_nserver_no_name_reaches_the_system_resolver,
    nsrecord_and_its_blacklist_form,
    fakeresolve_answers_127_0_0_2,
    family_option_6_asks_for_aaaa_only,
);

fn socks_config(names: &str, options: &str) -> String {
    format!("{names}\nlog\nauth iponly\nallow *\nsocks -p0 -i127.0.0.1 {options}\n")
}

fn fetch_by_name(proxy: std::net::SocketAddr, url: &str) -> (bool, String, String) {
    curl(&["--socks5-hostname", &proxy.to_string(), url])
}

/// dnsmasq knows `only.dnsmasq.test`; the system resolver does not. curl sends the name
/// to the proxy (`--socks5-hostname`), and the proxy asks dnsmasq. A second request is
/// answered from the cache: dnsmasq sees the name once.
fn curl_reaches_a_name_only_the_nserver_knows(runtime: &str) {
    let dns = Dnsmasq::start(&[("only.dnsmasq.test", "127.0.0.1")]);
    let origin = http_server("named origin");
    let d = Daemon::start(
        &socks_config(&format!("nserver {}", dns.addr), "-4"),
        runtime,
    );
    let url = format!("http://only.dnsmasq.test:{}/", origin.port());
    for _ in 0..2 {
        let (ok, body, err) = fetch_by_name(d.addr, &url);
        assert!(ok, "curl failed: {err}");
        assert_eq!(body, "named origin");
    }
    d.wait_code(0, "only.dnsmasq.test");
    let asked: Vec<String> = dns
        .queries()
        .into_iter()
        .filter(|q| q.contains("only.dnsmasq.test"))
        .collect();
    assert_eq!(
        asked.len(),
        1,
        "the second lookup came from the cache: {asked:?}"
    );
    assert!(
        asked[0].contains("query[A]"),
        "-4 asks for A only: {asked:?}"
    );
}

/// `nserver ADDR:PORT/tcp` asks over TCP (dnsmasq serves both on its port).
fn nserver_over_tcp(runtime: &str) {
    let dns = Dnsmasq::start(&[("tcp.dnsmasq.test", "127.0.0.1")]);
    let origin = http_server("over tcp");
    let d = Daemon::start(
        &socks_config(&format!("nserver {}/tcp", dns.addr), "-4"),
        runtime,
    );
    let url = format!("http://tcp.dnsmasq.test:{}/", origin.port());
    let (ok, body, err) = fetch_by_name(d.addr, &url);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "over tcp");
}

/// With `nserver`, `localhost` (which the system resolver knows) is asked of the name
/// server only: dnsmasq says NXDOMAIN, the request fails with code 100 and SOCKS5 REP 4.
fn with_nserver_no_name_reaches_the_system_resolver(runtime: &str) {
    let dns = Dnsmasq::start(&[("localhost", "")]);
    let origin = http_server("must not be reached");
    let d = Daemon::start(&socks_config(&format!("nserver {}", dns.addr), ""), runtime);
    let url = format!("http://localhost:{}/", origin.port());
    let (ok, _, err) = fetch_by_name(d.addr, &url);
    assert!(!ok, "the system resolver must not be used");
    assert!(err.contains("(4)") || err.contains("unreachable"), "{err}");
    d.wait_code(100, "localhost");
    assert!(dns.queries().iter().any(|q| q.contains("localhost")));
}

/// `nsrecord` pins a name without any `nserver`; `nsrecord NAME 0.0.0.0` blacklists one.
fn nsrecord_and_its_blacklist_form(runtime: &str) {
    let origin = http_server("pinned");
    let names = "nsrecord pinned.test 127.0.0.1\nnsrecord blocked.test 0.0.0.0";
    let d = Daemon::start(&socks_config(names, ""), runtime);
    let (ok, body, err) = fetch_by_name(d.addr, &format!("http://pinned.test:{}/", origin.port()));
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "pinned");
    let (ok, _, _) = fetch_by_name(d.addr, &format!("http://blocked.test:{}/", origin.port()));
    assert!(!ok);
    d.wait_code(100, "blocked.test");
    // Names nsrecord does not know still go to the system resolver (no nserver).
    let (ok, body, err) = fetch_by_name(d.addr, &format!("http://localhost:{}/", origin.port()));
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "pinned");
}

/// `fakeresolve`: every name is 127.0.0.2.
fn fakeresolve_answers_127_0_0_2(runtime: &str) {
    let origin = http_server_on("127.0.0.2:0", "fake");
    let d = Daemon::start(&socks_config("fakeresolve", "-4"), runtime);
    let url = format!("http://anything.invalid:{}/", origin.port());
    let (ok, body, err) = fetch_by_name(d.addr, &url);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "fake");
}

/// `-6`: only AAAA is asked, and the IPv6 answer is used.
fn family_option_6_asks_for_aaaa_only(runtime: &str) {
    let dns = Dnsmasq::start(&[("six.dnsmasq.test", "::1")]);
    let origin = http_server_on("[::1]:0", "over ipv6");
    let d = Daemon::start(
        &socks_config(&format!("nserver {}", dns.addr), "-6"),
        runtime,
    );
    let url = format!("http://six.dnsmasq.test:{}/", origin.port());
    let (ok, body, err) = fetch_by_name(d.addr, &url);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "over ipv6");
    let asked = dns.queries();
    assert!(asked.iter().all(|q| q.contains("query[AAAA]")), "{asked:?}");
}
