//! Hashed passwords end to end, on both runtimes: curl authenticates with `--proxy-user`
//! to a `proxy` service (HTTP `Proxy-Authorization: Basic`) and to a `socks` service
//! (SOCKS5 username/password, RFC 1929), both under `auth strong`, as a `CR` user
//! (MD5-crypt) and an `NT` user; a wrong password is refused and logged with 3proxy's code
//! for that type (7 for `CR`, 8 for `NT`). Then `authcache` with `cacheacl`: a client that
//! authenticated once is let in from the same address without credentials. Last,
//! `delimchar`: a POP3 login `user@domain#host:port` goes to `host` as `user@domain`.
//!
//! Records use the default 3proxy format with `%N` before `%T`. Everything listens on
//! 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

use common::mail::{pop3_server, MESSAGE};
use common::*;
use std::net::SocketAddr;

/// Fields: `0` time, `1` %p, `2` %E, `3` %U, `4` %C:%c, `5` %R:%r, `6` %O, `7` %I, `8` %h,
/// `9` %N, `10..` %T.
const FORMAT: &str = "logformat \"G%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %N %T\"\n";

/// `carl`: `openssl passwd -1 -salt abc secret`; `nina`: the NT hash of `password`.
const USERS: &str = "users \"carl:CR:$1$abc$iCQ2D3nhptRYi27fDYv2s1\" \
                     nina:NT:8846F7EAEE8FB117AD06BDD830B7586C\n";

both_runtimes!(
    http_proxy_cr_and_nt_users,
    socks5_cr_and_nt_users,
    authcache_lets_a_known_address_in,
    delimchar_splits_pop3_logins,
);

/// One `service` line on 127.0.0.1 after the users, `rules` and [`FORMAT`].
fn start(runtime: &str, rules: &str, service: &str) -> Daemon {
    Daemon::start(
        &format!("log\n{FORMAT}{USERS}{rules}{service} -p0 -i127.0.0.1\n"),
        runtime,
    )
}

/// Waits for a record of service `name` (`%N`) with `code` and user `%U`.
fn record(d: &Daemon, name: &str, code: u16, user: &str) -> Vec<String> {
    let code = format!("{code:05}");
    let line = d.wait_log(&format!("{name} code {code} user {user}"), |l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 10 && f[2] == code && f[3] == user && f[9] == name
    });
    line.split_whitespace().map(str::to_owned).collect()
}

/// curl through `proxy` with `how` (`--proxy` URL, as a CONNECT tunnel, or `--socks5`
/// address) and `extra`.
fn fetch(how: &str, proxy: &str, url: &str, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![how, proxy];
    if how == "--proxy" {
        args.push("--proxytunnel");
    }
    args.extend_from_slice(extra);
    args.push(url);
    curl(&args)
}

fn http_proxy_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

fn http_proxy_cr_and_nt_users(runtime: &str) {
    let d = start(runtime, "auth strong\nallow carl,nina\n", "proxy");
    let web = http_server("hashed welcome");
    let url = format!("http://{web}/");
    let proxy = http_proxy_url(d.addr);
    for user in ["carl:secret", "nina:password"] {
        let (ok, body, err) = fetch("--proxy", &proxy, &url, &["--proxy-user", user]);
        assert!(ok, "{user}: curl failed: {err}");
        assert_eq!(body, "hashed welcome", "{user}");
    }
    record(&d, "PROXY", 0, "carl");
    record(&d, "PROXY", 0, "nina");
    // Wrong passwords: the CR code, then the NT code; curl sees 407.
    let (ok, _, _) = fetch("--proxy", &proxy, &url, &["--proxy-user", "carl:Secret"]);
    assert!(!ok, "a wrong CR password must fail");
    record(&d, "PROXY", 7, "carl");
    let (ok, _, _) = fetch("--proxy", &proxy, &url, &["--proxy-user", "nina:passwor"]);
    assert!(!ok, "a wrong NT password must fail");
    record(&d, "PROXY", 8, "nina");
    // The stored hash is not a password.
    let (ok, _, _) = fetch(
        "--proxy",
        &proxy,
        &url,
        &["--proxy-user", "nina:8846F7EAEE8FB117AD06BDD830B7586C"],
    );
    assert!(!ok);
    // On the wire the refusal is 407 (curl fails the tunnel and says so).
    let (ok, _, err) = fetch("--proxy", &proxy, &url, &["--proxy-user", "carl:x"]);
    assert!(!ok && err.contains("407"), "{err}");
}

fn socks5_cr_and_nt_users(runtime: &str) {
    let d = start(runtime, "auth strong\nallow carl,nina\n", "socks");
    let web = http_server("socks hashed welcome");
    let url = format!("http://{web}/");
    let proxy = d.addr.to_string();
    for user in ["carl:secret", "nina:password"] {
        let (ok, body, err) = fetch("--socks5", &proxy, &url, &["--proxy-user", user]);
        assert!(ok, "{user}: curl failed: {err}");
        assert_eq!(body, "socks hashed welcome", "{user}");
    }
    record(&d, "SOCK5", 0, "carl");
    record(&d, "SOCK5", 0, "nina");
    let (ok, _, _) = fetch("--socks5", &proxy, &url, &["--proxy-user", "carl:secrets"]);
    assert!(!ok, "a wrong CR password must fail");
    record(&d, "SOCK5", 7, "carl");
    let (ok, _, _) = fetch("--socks5", &proxy, &url, &["--proxy-user", "nina:Password"]);
    assert!(!ok, "a wrong NT password must fail");
    record(&d, "SOCK5", 8, "nina");
}

/// `auth strong cacheacl` with `authcache ip`: without credentials `strong` fails (4) and
/// `cacheacl` finds nothing; after carl logs in from 127.0.0.1, the same address gets in
/// without credentials, as carl.
fn authcache_lets_a_known_address_in(runtime: &str) {
    let d = start(
        runtime,
        "authcache ip 60\nauth strong cacheacl\nallow carl\n",
        "proxy",
    );
    let web = http_server("cached welcome");
    let url = format!("http://{web}/");
    let proxy = http_proxy_url(d.addr);
    let (ok, _, _) = fetch("--proxy", &proxy, &url, &[]);
    assert!(!ok, "nothing cached yet");
    record(&d, "PROXY", 4, "-");
    let (ok, body, err) = fetch("--proxy", &proxy, &url, &["--proxy-user", "carl:secret"]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, "cached welcome");
    record(&d, "PROXY", 0, "carl");
    let (ok, body, err) = fetch("--proxy", &proxy, &url, &[]);
    assert!(ok, "the cached address must get in: {err}");
    assert_eq!(body, "cached welcome");
    d.wait_log("two code-0 records for carl", |_| {
        d.log_lines()
            .iter()
            .filter(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() >= 4 && f[2] == "00000" && f[3] == "carl"
            })
            .count()
            >= 2
    });
}

/// With `delimchar #` the last `#` separates the user from the server, so an `@` stays in
/// the user name the server sees.
fn delimchar_splits_pop3_logins(runtime: &str) {
    let server = pop3_server();
    let d = Daemon::start(
        "log\ndelimchar #\nauth iponly\nallow *\npop3p -p0 -i127.0.0.1\n",
        runtime,
    );
    // curl decodes `%40` (@), `%23` (#) and `%3A` (:) in the user info.
    let url = format!(
        "pop3://joe%40example.org%23{}%3A{}:secret@{}/1",
        server.addr.ip(),
        server.addr.port(),
        d.addr
    );
    let (ok, body, err) = curl(&[&url]);
    assert!(ok, "curl failed: {err}");
    assert_eq!(body, MESSAGE);
    let lines = server.lines();
    assert!(
        lines.contains(&"USER joe@example.org".to_owned()),
        "{lines:?}"
    );
}
