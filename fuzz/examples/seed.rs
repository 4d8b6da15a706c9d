//! Writes the seed inputs of every fuzz target into `fuzz/corpus/<target>/`.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --no-default-features --example seed [OUT_DIR [TRACES]]
//! ```
//!
//! Seeds come from three places:
//! - hand-made messages built with the codecs' own encoders (every SOCKS4/4a/5 and RFC 1929
//!   message, whole handshakes for the machines), and HTTP parent answers to CONNECT;
//! - the conformance traces, `conformance/traces/**/*.trace`: the `client:` data of server
//!   traces become client streams (server machine, session engine, request codecs), the
//!   `server:` data of client traces parent streams (client machine, reply codecs),
//!   `udp-send:` data UDP datagrams;
//! - the 3proxy sample configurations in `../shared/reference/3proxy-configs/` and the
//!   daemon's embedded default, for the configuration, policy and logformat targets.
//!
//! File names are `seed-` plus a hash of the content, so running it again rewrites the same
//! files. It does not delete anything; `cargo fuzz cmin` keeps the corpus small.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use triproxy_fuzz::socks::v5::{self, Method};
use triproxy_fuzz::socks::{v4, Command, Credentials};
use triproxy_fuzz::wire::{DomainName, TargetAddr};

type Seeds = BTreeMap<&'static str, Vec<Vec<u8>>>;

fn add(seeds: &mut Seeds, target: &'static str, bytes: Vec<u8>) {
    seeds.entry(target).or_default().push(bytes);
}

fn with_header(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = header.to_vec();
    v.extend_from_slice(body);
    v
}

fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut v);
    v
}

fn targets() -> Vec<TargetAddr> {
    let mut out = vec![
        TargetAddr::Ip(([192, 0, 2, 7], 80).into()),
        TargetAddr::Ip(([0x2001, 0xdb8, 0, 0, 0, 0, 0, 7], 443).into()),
    ];
    for name in [&b"example.org"[..], &[b'x'; 255][..]] {
        if let Ok(d) = DomainName::new(name) {
            out.push(TargetAddr::Domain(d, 443));
        }
    }
    out
}

/// Client streams: whole handshakes as a client would send them.
fn client_streams() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let greeting = |m: &[Method]| enc(|o| v5::Greeting::new(m).encode(o));
    for target in targets() {
        for command in [Command::Connect, Command::Bind, Command::UdpAssociate] {
            let req = enc(|o| {
                v5::Request {
                    command,
                    target: target.clone(),
                }
                .encode(o)
            });
            let mut plain = greeting(&[Method::NO_AUTH]);
            plain.extend_from_slice(&req);
            plain.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
            out.push(plain);
            if let Ok(c) = Credentials::new(b"alice", b"secret") {
                let mut auth = greeting(&[Method::NO_AUTH, Method::PASSWORD]);
                auth.extend_from_slice(&enc(|o| c.encode(o)));
                auth.extend_from_slice(&req);
                out.push(auth);
            }
        }
    }
    for (destination, user) in [
        (v4::Destination::Ip([10, 0, 0, 1].into()), &b"bob"[..]),
        (v4::Destination::Ip([127, 0, 0, 1].into()), &b""[..]),
    ]
    .into_iter()
    .chain(
        DomainName::new(b"example.org")
            .ok()
            .map(|d| (v4::Destination::Domain(d), &b"u"[..])),
    ) {
        for command in [v4::Command::Connect, v4::Command::Bind] {
            let r = v4::Request {
                command,
                port: 80,
                destination: destination.clone(),
                user_id: user.iter().copied().collect(),
            };
            let mut s = enc(|o| r.encode(o));
            s.extend_from_slice(b"data");
            out.push(s);
        }
    }
    out
}

/// Parent streams for the client machine: (client header, stream).
fn parent_streams() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let bound = TargetAddr::Ip(([198, 51, 100, 1], 40000).into());
    let ok = enc(|o| {
        v5::Reply {
            reply: v5::ReplyCode::Succeeded,
            bound: bound.clone(),
        }
        .encode(o)
    });
    let refused = enc(|o| v5::Reply::failure(v5::ReplyCode::NotAllowed).encode(o));
    let sel = |m: Method| enc(|o| v5::MethodSelection { method: m }.encode(o));
    let auth_ok = enc(|o| v5::AuthReply::SUCCESS.encode(o));
    // version 2 = SOCKS5; command 0 connect, 1 bind; credentials 1 = alice; target 0 / 3.
    for (cmd, target) in [(0u8, 0u8), (1, 0), (0, 3), (2, 2)] {
        let mut s = sel(Method::NO_AUTH);
        s.extend_from_slice(&ok);
        if cmd == 1 {
            s.extend_from_slice(&ok);
        }
        s.extend_from_slice(b"tunnel bytes");
        out.push((vec![2, cmd, 0, target, 0], s));
    }
    let mut s = sel(Method::PASSWORD);
    s.extend_from_slice(&auth_ok);
    s.extend_from_slice(&refused);
    out.push((vec![2, 0, 1, 3, 0], s));
    let v4ok = enc(|o| {
        v4::Reply {
            code: v4::ReplyCode::Granted,
            port: 40000,
            ip: [198, 51, 100, 1].into(),
        }
        .encode(o)
    });
    for (version, target) in [(0u8, 0u8), (1, 3)] {
        let mut s = v4ok.clone();
        s.extend_from_slice(&v4ok);
        s.extend_from_slice(b"x");
        out.push((vec![version, 1, 0, target, 0], s));
    }
    out
}

fn codec_seeds(seeds: &mut Seeds) {
    let v5 = |sel: u8, m: Vec<u8>| with_header(&[sel], &m);
    add(
        seeds,
        "socks_v5",
        v5(
            0,
            enc(|o| v5::Greeting::new(&[Method::NO_AUTH, Method::PASSWORD]).encode(o)),
        ),
    );
    add(
        seeds,
        "socks_v5",
        v5(
            1,
            enc(|o| {
                v5::MethodSelection {
                    method: Method::PASSWORD,
                }
                .encode(o)
            }),
        ),
    );
    if let Ok(c) = Credentials::new(b"alice", b"secret") {
        add(seeds, "socks_v5", v5(2, enc(|o| c.encode(o))));
    }
    add(
        seeds,
        "socks_v5",
        v5(3, enc(|o| v5::AuthReply::FAILURE.encode(o))),
    );
    for target in targets() {
        let req = v5::Request {
            command: Command::Connect,
            target: target.clone(),
        };
        add(seeds, "socks_v5", v5(4, enc(|o| req.encode(o))));
        let rep = v5::Reply {
            reply: v5::ReplyCode::Succeeded,
            bound: target.clone(),
        };
        add(seeds, "socks_v5", v5(5, enc(|o| rep.encode(o))));
        let mut dgram = enc(|o| v5::encode_udp(&v5::UdpHeader { frag: 0, target }, o));
        dgram.extend_from_slice(b"payload");
        add(seeds, "socks_v5", v5(6, dgram));
    }
    for stream in client_streams()
        .into_iter()
        .filter(|s| s.first() == Some(&4))
    {
        add(seeds, "socks_v4", with_header(&[0], &stream));
    }
    add(
        seeds,
        "socks_v4",
        with_header(&[1], &enc(|o| v4::Reply::rejected().encode(o))),
    );
}

fn machine_seeds(seeds: &mut Seeds) {
    for stream in client_streams() {
        // Server: NoAuthOrPassword, accept and grant; whole, byte by byte, generated.
        for header in [[2u8, 0, 0], [2, 0, 1], [0x12, 0x22, 9]] {
            add(seeds, "socks_server", with_header(&header, &stream));
        }
        // Session: -u1 with `auth iponly` and `auth strong`; resolve, connect, clean relay.
        for header in [[1u8, 0, 0, 0], [5, 0, 0, 1], [0x21, 0x41, 1, 7]] {
            add(seeds, "session", with_header(&header, &stream));
        }
    }
    for (header, stream) in parent_streams() {
        for split in [0u8, 1] {
            let mut h = header.clone();
            h.push(split);
            add(seeds, "socks_client", with_header(&h, &stream));
        }
    }
    for (header, stream) in http_parent_streams() {
        add(seeds, "http_connect_client", with_header(&header, stream));
    }
}

/// HTTP parent answers to CONNECT: (header `target, credentials, flags, split`, stream).
fn http_parent_streams() -> Vec<([u8; 4], &'static [u8])> {
    vec![
        // Name target with credentials; 200, then the target's first bytes.
        (
            [2, 1, 0, 0],
            b"HTTP/1.1 200 Connection established\r\n\r\ntunnel bytes",
        ),
        // IPv4 target; 407 with a body, byte by byte, deadline fired.
        (
            [0, 0, 1, 1],
            b"HTTP/1.0 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"proxy\"\r\nContent-Length: 2\r\n\r\nno",
        ),
        // IPv6 target, long credentials; an interim 100, then 200 with a field, chunked.
        (
            [1, 2, 0, 3],
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nProxy-Agent: p\r\n\r\nx",
        ),
        // Not HTTP at all (a SOCKS5 reply), in two halves.
        ([0, 0, 0, 2], b"\x05\x00\x00\x01\xc0\x00\x02\x07\x00\x50"),
    ]
}

// ---------------------------------------------------------------------------------------
// Conformance traces.

/// Value of a harness placeholder, as the traces use them.
fn harness(name: &str) -> Option<Vec<u8>> {
    if let Some(base) = name.strip_suffix(".len") {
        let v = harness(base)?;
        return Some(vec![u8::try_from(v.len()).ok()?]);
    }
    Some(if name.ends_with(".ip4") {
        vec![127, 0, 0, 1]
    } else if name.ends_with(".ip6") {
        let mut v = vec![0; 15];
        v.push(1);
        v
    } else if name.ends_with(".port") {
        vec![0x1f, 0x90]
    } else {
        match name {
            "echo.host" => b"localhost".to_vec(),
            "user" => b"user".to_vec(),
            "pass" => b"pass".to_vec(),
            "nxdomain" => b"nx.invalid".to_vec(),
            _ => return None,
        }
    })
}

/// Parses trace DATA (hex bytes, quoted strings, `{harness}` values, `*N` repeats);
/// `None` for anything else (EXPECT patterns, `close`, `wait`).
fn parse_data(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (item, after) = if let Some(q) = rest.strip_prefix('"') {
            let mut bytes = Vec::new();
            let mut chars = q.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '"' => break i,
                    '\\' => {
                        let (_, e) = chars.next()?;
                        match e {
                            'n' => bytes.push(b'\n'),
                            'r' => bytes.push(b'\r'),
                            't' => bytes.push(b'\t'),
                            '0' => bytes.push(0),
                            'x' => {
                                let (_, h) = chars.next()?;
                                let (_, l) = chars.next()?;
                                let hex: String = [h, l].iter().collect();
                                bytes.push(u8::from_str_radix(&hex, 16).ok()?);
                            }
                            other => {
                                let mut buf = [0; 4];
                                bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                            }
                        }
                    }
                    other => {
                        let mut buf = [0; 4];
                        bytes.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                    }
                }
            };
            (bytes, q.get(end + 1..)?)
        } else if let Some(b) = rest.strip_prefix('{') {
            let (name, after) = b.split_once('}')?;
            (harness(name)?, after)
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '*')
                .unwrap_or(rest.len());
            let (hex, after) = rest.split_at(end);
            if hex.len() != 2 {
                return None;
            }
            (vec![u8::from_str_radix(hex, 16).ok()?], after)
        };
        let (count, after) = match after.strip_prefix('*') {
            Some(n) => {
                let end = n.find(|c: char| !c.is_ascii_digit()).unwrap_or(n.len());
                let (digits, after) = n.split_at(end);
                (digits.parse::<usize>().ok()?.min(4096), after)
            }
            None => (1, after),
        };
        for _ in 0..count {
            out.extend_from_slice(&item);
        }
        rest = after.trim_start();
    }
    Some(out)
}

/// Strips a `#` comment that is outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '#' if !quoted => return line.get(..i).unwrap_or(line),
            _ => {}
        }
    }
    line
}

fn client_header(config: &str) -> Vec<u8> {
    let words: Vec<&str> = config.split_whitespace().collect();
    let version = match words.first() {
        Some(&"socks4") => 0,
        Some(&"socks4a") => 1,
        _ => 2,
    };
    let command = match words.get(1) {
        Some(&"bind") => 1,
        Some(&"udp-associate") => 2,
        _ => 0,
    };
    let credentials = u8::from(words.iter().any(|w| w.starts_with("user=")));
    let target = match words.get(2) {
        Some(t) if t.starts_with('[') => 2,
        Some(t) if t.parse::<std::net::SocketAddr>().is_ok() => 0,
        _ => 3,
    };
    vec![version, command, credentials, target, 0]
}

fn trace_seeds(seeds: &mut Seeds, root: &Path) -> usize {
    let mut files = Vec::new();
    collect_traces(root, &mut files, 0);
    files.sort();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let mut side_client = false;
        let mut config = String::new();
        let mut client_stream = Vec::new();
        let mut server_stream = Vec::new();
        let mut client_open = true;
        let mut server_open = true;
        for line in text.lines() {
            let line = strip_comment(line).trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key.trim() {
                "side" => side_client = value == "client",
                "config" => config = value.to_owned(),
                "client" if value == "close" => client_open = false,
                "server" if value == "close" => server_open = false,
                "client" => {
                    if let Some(data) = parse_data(value) {
                        if client_open {
                            client_stream.extend_from_slice(&data);
                        }
                        message_seeds(seeds, &data, true);
                    }
                }
                "server" => {
                    if let Some(data) = parse_data(value) {
                        if server_open {
                            server_stream.extend_from_slice(&data);
                        }
                        message_seeds(seeds, &data, false);
                    }
                }
                "udp-send" => {
                    if let Some(data) = parse_data(value) {
                        add(seeds, "socks_v5", with_header(&[6], &data));
                    }
                }
                _ => {}
            }
        }
        if side_client {
            if !server_stream.is_empty() {
                let mut h = client_header(&config);
                h.push(0);
                add(seeds, "socks_client", with_header(&h, &server_stream));
            }
        } else if !client_stream.is_empty() {
            add(
                seeds,
                "socks_server",
                with_header(&[2, 0, 0], &client_stream),
            );
            add(
                seeds,
                "socks_server",
                with_header(&[2, 0, 1], &client_stream),
            );
            add(seeds, "session", with_header(&[1, 0, 0, 0], &client_stream));
            add(seeds, "session", with_header(&[5, 0, 0, 1], &client_stream));
        }
    }
    files.len()
}

/// One message of a trace, for the codec targets (the type is guessed from its first byte).
fn message_seeds(seeds: &mut Seeds, data: &[u8], from_client: bool) {
    let selectors: &[(&'static str, u8)] = match (data.first(), from_client) {
        (Some(5), true) => &[("socks_v5", 0), ("socks_v5", 4)],
        (Some(1), true) => &[("socks_v5", 2)],
        (Some(4), true) => &[("socks_v4", 0)],
        (Some(5), false) => &[("socks_v5", 1), ("socks_v5", 5)],
        (Some(1), false) => &[("socks_v5", 3)],
        (Some(0), false) => &[("socks_v4", 1)],
        _ => &[],
    };
    for (target, selector) in selectors {
        add(seeds, target, with_header(&[*selector], data));
    }
}

fn collect_traces(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if path.is_dir() && depth < 8 {
            collect_traces(&path, out, depth + 1);
        } else if path.extension().is_some_and(|x| x == "trace") {
            out.push(path);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Configurations and log formats.

fn config_seeds(seeds: &mut Seeds, repo: &Path) -> usize {
    let mut texts = vec![triproxy_fuzz::daemon::EMBEDDED_DEFAULT.to_owned()];
    let dir = repo.join("../shared/reference/3proxy-configs");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let is_config = name.is_some_and(|n| n.contains("cfg") || n.contains("example"));
            if let (true, Ok(text)) = (is_config, std::fs::read_to_string(&path)) {
                texts.push(text);
            }
        }
    }
    texts.push(
        "users alice:CL:secret bob:pw\nauth strong\nallow alice * * 80,443 CONNECT 1-5 \
         09:00:00-18:00:00\ndeny * * 10.0.0.0/8,*.example.org\nflush\nlog\nlogformat \
         \"- +_G%y%m%d %N %E %U %C:%c %T\"\nmaxconn 10\ninternal 127.0.0.1\nsocks -p1081 -u2\n"
            .to_owned(),
    );
    for text in &texts {
        add(seeds, "config", text.clone().into_bytes());
        add(seeds, "policy_parsers", text.clone().into_bytes());
        for line in text.lines() {
            let line = line.trim();
            if let Some(format) = line.strip_prefix("logformat ") {
                let format = format.trim().trim_matches('"');
                let mut v = format.as_bytes().to_vec();
                v.push(0);
                v.extend_from_slice(&record_tail());
                add(seeds, "logformat", v);
            }
        }
    }
    for format in [
        "G%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %T",
        "L%d-%m-%Y %H:%M:%S %z %N.%p %E %U %C:%c %R:%r %O %I %h %T",
        "- +_L%t.%. %N.%p %E %U %C:%c %R:%r %O %I %h %T %2-3T %D %b %B %n %Q:%q %i %e %L %%",
    ] {
        let mut v = format.as_bytes().to_vec();
        v.push(0);
        v.extend_from_slice(&record_tail());
        add(seeds, "logformat", v);
    }
    texts.len()
}

/// The record part of a logformat seed (see the target's input layout).
fn record_tail() -> Vec<u8> {
    let mut v = vec![
        0x63, 0x5f, 0x5e, 0x10, 2, 0, 0, 0x30, 0x39, 0, 0x04, 0x38, 0, 0,
    ];
    v.extend_from_slice(&[1, 127, 0, 0, 1, 0xc3, 0x50]); // client
    v.extend_from_slice(&[1, 192, 0, 2, 7, 0, 80]); // remote
    v.extend_from_slice(&[1, 127, 0, 0, 1, 0x04, 0x38]); // internal
    v.extend_from_slice(&[2, 0x20, 0x01, 0, 1, 0, 2, 0, 0]); // external (IPv6)
    v.extend_from_slice(&[0, 1, 0, 80]); // no requested address, port 80
    v.extend_from_slice(&[0, 0, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 1]);
    v.extend_from_slice(b"alice\0example.org\0CONNECT example.org:80 with\tcontrol");
    v
}

// ---------------------------------------------------------------------------------------

fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let repo = fuzz.join("..");
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let out = args.next().unwrap_or_else(|| fuzz.join("corpus"));
    let traces = args
        .next()
        .unwrap_or_else(|| repo.join("conformance/traces"));
    let mut seeds = Seeds::new();
    codec_seeds(&mut seeds);
    machine_seeds(&mut seeds);
    let traces = trace_seeds(&mut seeds, &traces);
    let configs = config_seeds(&mut seeds, &repo);
    println!("{traces} trace files, {configs} configurations read");
    for (target, inputs) in &seeds {
        let dir = out.join(target);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("{}: {e}", dir.display());
            std::process::exit(1);
        }
        let mut written = 0;
        for input in inputs {
            let path = dir.join(format!("seed-{:016x}", fnv64(input)));
            if !path.exists() {
                if let Err(e) = std::fs::write(&path, input) {
                    eprintln!("{}: {e}", path.display());
                    std::process::exit(1);
                }
                written += 1;
            }
        }
        println!("{target}: {} seeds, {written} new", inputs.len());
    }
}
