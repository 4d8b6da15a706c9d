//! The authentication commands besides `users` and `auth`: `authcache`, `delimchar`, and
//! the refused `radius` and `authnserver`.
//!
//! Each function reads one line's arguments and returns the value the parser keeps, or the
//! precise reason the line is refused. What the values do is in policy
//! (`triproxy_policy::authcache`, `MailOptions::delimiter`).

use super::ConfigErrorKind;
use triproxy_policy::authcache::AuthCacheLine;

/// `authcache TYPES [TIME [SIZE]]`.
pub(super) fn authcache(args: &[&str]) -> Result<AuthCacheLine, ConfigErrorKind> {
    AuthCacheLine::parse(args).map_err(|e| ConfigErrorKind::AuthCache(Box::new(e)))
}

/// `delimchar C`: one printable ASCII character other than space and `:` (which already
/// separates the proxy credentials and the port in `proxyuser:proxypass:user@host:port`).
/// 3proxy takes the first byte of any word; a longer word is refused here, since the rest
/// of it would be ignored.
pub(super) fn delimchar(args: &[&str]) -> Result<u8, ConfigErrorKind> {
    let value = args.first().copied().unwrap_or_default();
    match value.as_bytes() {
        [c] if c.is_ascii_graphic() && *c != b':' => Ok(*c),
        _ => Err(ConfigErrorKind::BadDelimChar {
            value: value.to_owned(),
        }),
    }
}

/// `radius SECRET SERVER...`: refused, whatever its arguments.
pub(super) fn radius() -> ConfigErrorKind {
    ConfigErrorKind::CommandRefused {
        command: "radius",
        reason: "triproxy has no RADIUS client yet",
    }
}

/// `authnserver IP[:PORT]`: refused, whatever its arguments.
pub(super) fn authnserver() -> ConfigErrorKind {
    ConfigErrorKind::CommandRefused {
        command: "authnserver",
        reason: "it only serves `auth dnsname`, which triproxy refuses (it trusts a PTR \
                 record an attacker can control)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimchar_values() {
        assert_eq!(delimchar(&["#"]), Ok(b'#'));
        assert_eq!(delimchar(&["@"]), Ok(b'@'));
        for bad in ["", "##", ":", " ", "é", "\t"] {
            let e = delimchar(&[bad]).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "`delimchar` takes one printable ASCII character other than `:`, \
                     not `{bad}`"
                )
            );
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            radius().to_string(),
            "`radius` is not supported: triproxy has no RADIUS client yet"
        );
        assert_eq!(
            authnserver().to_string(),
            "`authnserver` is not supported: it only serves `auth dnsname`, which triproxy \
             refuses (it trusts a PTR record an attacker can control)"
        );
    }
}
