//! Test data: the captured hellos and a builder for synthetic ones.
#![allow(dead_code)]

/// curl 7.88.1 (OpenSSL 3.0.19) to https://example.test:PORT/.
pub const CURL: &[u8] = include_bytes!("../data/curl.bin");
/// `openssl s_client -servername example.test` (OpenSSL 3.0.19).
pub const OPENSSL: &[u8] = include_bytes!("../data/openssl.bin");
/// `openssl s_client -noservername`.
pub const OPENSSL_NOSNI: &[u8] = include_bytes!("../data/openssl-nosni.bin");
/// `openssl s_client -servername example.test -tls1_2 -alpn h2,http/1.1`.
pub const OPENSSL_TLS12: &[u8] = include_bytes!("../data/openssl-tls12.bin");
/// Python 3 `ssl` (OpenSSL 3.0.19), server_hostname example.test.
pub const PYTHON: &[u8] = include_bytes!("../data/python-ssl.bin");
/// What `openssl s_server` (TLS 1.3) sent back to the curl hello: ServerHello, then
/// ChangeCipherSpec and encrypted records.
pub const SERVER_FLIGHT: &[u8] = include_bytes!("../data/openssl-server-hello.bin");

/// Every captured client hello, with its expected SNI.
pub const REAL: &[(&str, &[u8], Option<&str>)] = &[
    ("curl", CURL, Some("example.test")),
    ("openssl", OPENSSL, Some("example.test")),
    ("openssl-nosni", OPENSSL_NOSNI, None),
    ("openssl-tls12", OPENSSL_TLS12, Some("example.test")),
    ("python", PYTHON, Some("example.test")),
];

fn u16b(n: usize) -> [u8; 2] {
    (n as u16).to_be_bytes()
}

/// A TLS 1.3-style ClientHello handshake message (header included) with an optional SNI
/// and extra extensions.
pub fn client_hello_msg(sni: Option<&str>, extra: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
    body.extend_from_slice(&[1, 0]); // null compression
    let mut exts = Vec::new();
    if let Some(name) = sni {
        let n = name.len();
        exts.extend_from_slice(&[0, 0]);
        exts.extend_from_slice(&u16b(n + 5));
        exts.extend_from_slice(&u16b(n + 3));
        exts.push(0);
        exts.extend_from_slice(&u16b(n));
        exts.extend_from_slice(name.as_bytes());
    }
    exts.extend_from_slice(&[0, 43, 0, 3, 2, 3, 4]); // supported_versions: TLS 1.3
    for (t, data) in extra {
        exts.extend_from_slice(&t.to_be_bytes());
        exts.extend_from_slice(&u16b(data.len()));
        exts.extend_from_slice(data);
    }
    body.extend_from_slice(&u16b(exts.len()));
    body.extend_from_slice(&exts);
    let mut msg = vec![1, 0];
    msg.extend_from_slice(&u16b(body.len()));
    msg.extend_from_slice(&body);
    msg
}

/// `msg` in handshake records of at most `size` bytes each.
pub fn records(msg: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in msg.chunks(size) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&u16b(chunk.len()));
        out.extend_from_slice(chunk);
    }
    out
}

/// The handshake message of a single-record hello.
pub fn message_of(hello: &[u8]) -> &[u8] {
    &hello[5..]
}

/// Some instant to start virtual time at; tests only add to it.
pub fn t0() -> std::time::Instant {
    // A fixed origin for virtual time: nothing depends on the value.
    #[allow(clippy::disallowed_methods)]
    std::time::Instant::now()
}
