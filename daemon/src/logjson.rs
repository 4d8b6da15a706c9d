//! triproxy's JSON log records (the `logjson` command): one JSON object per line with fixed
//! field names, every string escaped by serde_json.
//!
//! 3proxy's text records cannot be parsed reliably when a user name or a requested host
//! contains a quote, a space or a control character (3proxy issue #641); a JSON consumer
//! gets every field back exactly. This is not a 3proxy format: 3proxy configurations never
//! contain `logjson`, so the command cannot change how an existing configuration logs.
//!
//! Fields (keys in alphabetical order; absent values are `null`):
//!
//! | key | value |
//! |---|---|
//! | `time` | end of the connection, RFC 3339 UTC with milliseconds (`2026-12-02T18:05:42.351Z`) |
//! | `service`, `port` | 3proxy service name (`SOCK5`, `PROXY`, ...), listening port |
//! | `code`, `reason` | 3proxy error code as a number; short readable reason (as `%X`) |
//! | `user` | user name or `null` |
//! | `client`, `remote` | `{"ip": "...", "port": n}`; `remote` is `null` if never connected |
//! | `target_host`, `target_port` | the destination as requested (host name or IP literal) |
//! | `bytes_in`, `bytes_out` | from the server side, to the server side (`%I`, `%O`) |
//! | `duration_ms`, `hops`, `text` | `%D`, `%h`, `%T` |

use crate::logformat::LogFields;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::net::SocketAddr;

fn addr(a: Option<SocketAddr>) -> Value {
    match a {
        Some(a) => json!({ "ip": a.ip().to_string(), "port": a.port() }),
        None => Value::Null,
    }
}

/// Appends `rec` as one JSON object to `out` (no line ending).
pub fn render(rec: &LogFields<'_>, out: &mut String) {
    let time: DateTime<Utc> = rec.time.into();
    let target_host = match (rec.requested_host, rec.requested) {
        (Some(h), _) if !h.is_empty() => Some(h.to_owned()),
        (_, Some(sa)) => Some(sa.ip().to_string()),
        _ => None,
    };
    let target_port = rec.requested_port.or(rec.requested.map(|sa| sa.port()));
    let value = json!({
        "time": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "service": rec.service,
        "port": rec.listen_port,
        "code": rec.code.get(),
        "reason": rec.reason_text(),
        "user": rec.user.filter(|u| !u.is_empty()),
        "client": addr(Some(rec.client)),
        "remote": addr(rec.remote),
        "target_host": target_host,
        "target_port": target_port,
        "bytes_in": rec.bytes_in,
        "bytes_out": rec.bytes_out,
        "duration_ms": u64::try_from(rec.duration.as_millis()).unwrap_or(u64::MAX),
        "hops": rec.hops,
        "text": rec.text,
    });
    // A `Value` of strings and numbers always serializes; `Display` is serde_json's
    // compact form.
    out.push_str(&value.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};
    use triproxy_policy::reason::Reason;
    use triproxy_wire::LogCode;

    fn parse(rec: &LogFields<'_>) -> Value {
        let mut s = String::new();
        render(rec, &mut s);
        assert!(!s.contains('\n'), "{s}");
        serde_json::from_str(&s).unwrap()
    }

    #[test]
    fn every_field() {
        let rec = LogFields {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_256_983_351),
            duration: Duration::from_millis(2000),
            listen_port: 1080,
            user: Some("alice"),
            remote: Some("192.0.2.1:443".parse().unwrap()),
            requested_host: Some("example.org"),
            requested_port: Some(443),
            bytes_in: 286,
            bytes_out: 148,
            hops: 1,
            text: "CONNECT example.org:443",
            ..LogFields::new("SOCK5", "127.0.0.1:4000".parse().unwrap())
        };
        let v = parse(&rec);
        assert_eq!(
            v,
            json!({
                "time": "2026-11-21T10:29:43.351Z",
                "service": "SOCK5", "port": 1080, "code": 0, "reason": "ok",
                "user": "alice",
                "client": {"ip": "127.0.0.1", "port": 4000},
                "remote": {"ip": "192.0.2.1", "port": 443},
                "target_host": "example.org", "target_port": 443,
                "bytes_in": 286, "bytes_out": 148, "duration_ms": 2000, "hops": 1,
                "text": "CONNECT example.org:443",
            })
        );
    }

    #[test]
    fn missing_fields_are_null_and_reason_is_typed() {
        let reason = Reason::AclDenied;
        let rec = LogFields {
            code: LogCode::ACL_DENIED,
            reason: Some(&reason),
            requested: Some("[2001:db8::1]:80".parse().unwrap()),
            ..LogFields::new("PROXY", "[::1]:5000".parse().unwrap())
        };
        let v = parse(&rec);
        assert_eq!(v["user"], Value::Null);
        assert_eq!(v["remote"], Value::Null);
        assert_eq!(v["code"], 1);
        assert_eq!(v["reason"], "denied by ACL");
        assert_eq!(v["target_host"], "2001:db8::1");
        assert_eq!(v["target_port"], 80);
        assert_eq!(v["client"]["ip"], "::1");
    }

    #[test]
    fn hostile_strings_round_trip() {
        // Quotes, backslashes, every control character, and what a lossy decoding of
        // non-UTF-8 bytes leaves (U+FFFD), plus non-ASCII.
        let controls: String = (0u8..0x20).map(char::from).collect();
        for user in [
            "a\"b",
            "back\\slash",
            controls.as_str(),
            "caf\u{e9} \u{fffd}\u{fffd}",
            "\u{7f}\u{2028}\u{2029}",
            "}\"],{\"user\":\"root",
        ] {
            let rec = LogFields {
                user: Some(user),
                requested_host: Some(user),
                text: user,
                ..LogFields::new("SOCK5", "127.0.0.1:1".parse().unwrap())
            };
            let mut s = String::new();
            render(&rec, &mut s);
            assert!(!s.contains('\n') && !s.contains('\r'), "{s}");
            assert!(!s.bytes().any(|b| b < 0x20), "{s}");
            let v: Value = serde_json::from_str(&s).unwrap();
            assert_eq!(v["user"], user);
            assert_eq!(v["target_host"], user);
            assert_eq!(v["text"], user);
        }
    }
}
