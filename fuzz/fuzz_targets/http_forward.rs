#![cfg_attr(fuzzing, no_main)]
//! Head rewriting for forwarding (`triproxy_http::forward::forward_request` and
//! `forward_response`) on arbitrary bytes.
//!
//! Input: the bytes a client sent.
//!
//! Oracles: no panic; every strict prefix of an accepted head is incomplete; an accepted
//! head's rewrite is a head (ends with an empty line, no bare CR or LF), starts with the
//! method and an origin-form target, has exactly one `Host` field and no hop-by-hop field
//! (`Connection`, `Proxy-Connection`, `Keep-Alive`, `Proxy-Authorization`, `TE`,
//! `Trailer`, `Upgrade`), and carries `Via`.

use triproxy_fuzz::http::forward::{forward_request, forward_response};

triproxy_fuzz::target!(|data| {
    // The same bytes as an origin's response: no panic, and an accepted head comes out
    // as a head with no hop-by-hop field and with Via.
    if let Ok(Some(r)) = forward_response(data, data.first() == Some(&b'H'), "fuzz") {
        assert!(r.head_len <= data.len());
        assert!(r.head.ends_with(b"\r\n\r\n") && r.head.starts_with(b"HTTP/1.1 "));
        let text = String::from_utf8_lossy(&r.head).to_ascii_lowercase();
        for hop in [
            "\r\nconnection:",
            "\r\nkeep-alive:",
            "\r\nupgrade:",
            "\r\nte:",
        ] {
            assert!(!text.contains(hop), "{hop} forwarded");
        }
        assert!(text.contains("\r\nvia: "));
    }
    let Ok(Some(f)) = forward_request(data, "fuzz") else {
        return;
    };
    assert!(f.head_len <= data.len());
    for cut in [0, f.head_len / 2, f.head_len.saturating_sub(1)] {
        if cut < f.head_len {
            let prefix = data.get(..cut).unwrap_or_default();
            assert!(
                matches!(forward_request(prefix, "fuzz"), Ok(None)),
                "a strict prefix of an accepted head is incomplete"
            );
        }
    }
    let head = &f.head;
    assert!(head.ends_with(b"\r\n\r\n"));
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    assert!(first.starts_with(&format!("{} ", f.method)));
    let target = first.split(' ').nth(1).unwrap_or_default();
    assert!(
        target.starts_with('/') || target == "*",
        "origin form: {target:?}"
    );
    let mut hosts = 0;
    let mut via = false;
    for line in lines.filter(|l| !l.is_empty()) {
        assert!(!line.contains('\r') && !line.contains('\n'));
        let name = line
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(
            ![
                "connection",
                "proxy-connection",
                "keep-alive",
                "proxy-authorization",
                "te",
                "trailer",
                "upgrade"
            ]
            .contains(&name.as_str()),
            "hop-by-hop field forwarded: {name}"
        );
        hosts += usize::from(name == "host");
        via |= name == "via";
    }
    assert_eq!(hosts, 1);
    assert!(via);
});
