//! Where an `AUTH` user name points: `user@server[:port]` split into the user to log in as
//! and the server to log in to (3proxy's `parseconnusername`), and the `%T` text 3proxy
//! logs for it.
//!
//! Only the name is read here; decoding the `AUTH` exchange and logging in are the
//! [`Proxy`](super::Proxy)'s.

use super::{Config, MAX_CREDENTIAL};
use crate::error::CredentialsError;
use std::net::IpAddr;
use triproxy_wire::{DomainName, TargetAddr};

/// Splits `user<delim>server[:port]` at the last delimiter (3proxy `parseconnusername`).
pub(super) fn split_user(
    raw: &[u8],
    config: &Config,
) -> Result<(Vec<u8>, TargetAddr), CredentialsError> {
    let default_port = config
        .default_target
        .as_ref()
        .map_or(config.default_port, TargetAddr::port);
    let Some(at) = raw.iter().rposition(|&b| b == config.delimiter) else {
        if raw.is_empty() {
            return Err(CredentialsError::EmptyUser);
        }
        if raw.len() > MAX_CREDENTIAL {
            return Err(CredentialsError::TooLong);
        }
        let target = config
            .default_target
            .clone()
            .ok_or(CredentialsError::NoServer)?;
        return Ok((raw.to_vec(), target));
    };
    let user = raw.get(..at).unwrap_or_default();
    let server = raw.get(at + 1..).unwrap_or_default();
    if user.is_empty() {
        return Err(CredentialsError::EmptyUser);
    }
    if user.len() > MAX_CREDENTIAL {
        return Err(CredentialsError::TooLong);
    }
    let (host, port) = split_host_port(server)?;
    let port = port.unwrap_or(default_port);
    let target = if host.is_empty() {
        // 3proxy: `user@:port` keeps the default server and changes its port.
        match &config.default_target {
            Some(TargetAddr::Ip(sa)) => TargetAddr::from((sa.ip(), port)),
            Some(TargetAddr::Domain(name, _)) => TargetAddr::Domain(name.clone(), port),
            None => return Err(CredentialsError::NoServer),
        }
    } else if let Some(ip) = core::str::from_utf8(host)
        .ok()
        .and_then(|h| h.parse::<IpAddr>().ok())
    {
        TargetAddr::from((ip, port))
    } else {
        let name = DomainName::new(host).map_err(|_| CredentialsError::BadServer)?;
        TargetAddr::Domain(name, port)
    };
    Ok((user.to_vec(), target))
}

fn split_host_port(server: &[u8]) -> Result<(&[u8], Option<u16>), CredentialsError> {
    let (host, port) = if let Some(inner) = server.strip_prefix(b"[") {
        let close = inner
            .iter()
            .position(|&b| b == b']')
            .ok_or(CredentialsError::BadServer)?;
        let host = inner.get(..close).unwrap_or_default();
        match inner.get(close + 1..).unwrap_or_default() {
            [] => (host, None),
            [b':', port @ ..] => (host, Some(port)),
            _ => return Err(CredentialsError::BadServer),
        }
    } else {
        let colons = server.iter().filter(|&&b| b == b':').count();
        match server.iter().position(|&b| b == b':') {
            Some(c) if colons == 1 => (
                server.get(..c).unwrap_or_default(),
                Some(server.get(c + 1..).unwrap_or_default()),
            ),
            _ => (server, None),
        }
    };
    let port = match port {
        None => None,
        Some(digits) => {
            let text = core::str::from_utf8(digits).map_err(|_| CredentialsError::BadPort)?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CredentialsError::BadPort);
            }
            match text.parse::<u16>() {
                Ok(p) if p != 0 => Some(p),
                _ => return Err(CredentialsError::BadPort),
            }
        }
    };
    Ok((host, port))
}

/// 3proxy's `%T` for smtpp: `user@server`, `:port` unless the port is the default.
pub(super) fn log_text(user: &[u8], target: &TargetAddr, default_port: u16) -> String {
    fn clean(s: &str) -> String {
        s.chars()
            .take(128)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    }
    let host = match target {
        TargetAddr::Ip(sa) => sa.ip().to_string(),
        TargetAddr::Domain(name, _) => String::from_utf8_lossy(name.as_bytes()).into_owned(),
    };
    let mut text = format!("{}@{}", clean(&String::from_utf8_lossy(user)), clean(&host));
    if target.port() != default_port {
        text.push_str(&format!(":{}", target.port()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_last_delimiter() {
        let config = Config::default();
        let (user, target) = split_user(b"a@b@mail.example:25", &config).unwrap();
        assert_eq!(user, b"a@b");
        assert_eq!(target.to_string(), "mail.example:25");
        let (_, target) = split_user(b"u@[::1]:2525", &config).unwrap();
        assert_eq!(target.to_string(), "[::1]:2525");
        let (_, target) = split_user(b"u@::1", &config).unwrap();
        assert_eq!(target.port(), 587);
        assert_eq!(split_user(b"u", &config), Err(CredentialsError::NoServer));
        assert_eq!(split_user(b"@h", &config), Err(CredentialsError::EmptyUser));
        assert_eq!(
            split_user(b"u@h:0", &config),
            Err(CredentialsError::BadPort)
        );
        assert_eq!(
            split_user(b"u@h:x", &config),
            Err(CredentialsError::BadPort)
        );
        assert_eq!(split_user(b"u@", &config), Err(CredentialsError::NoServer));
        let config = Config {
            default_target: Some("10.0.0.1:25".parse().unwrap()),
            delimiter: b'#',
            ..Config::default()
        };
        let (user, target) = split_user(b"u@x", &config).unwrap();
        assert_eq!(
            (user.as_slice(), target.to_string()),
            (&b"u@x"[..], "10.0.0.1:25".into())
        );
        let (_, target) = split_user(b"u#:2525", &config).unwrap();
        assert_eq!(target.to_string(), "10.0.0.1:2525");
        let (_, target) = split_user(b"u#h", &config).unwrap();
        assert_eq!(target.to_string(), "h:25");
    }

    #[test]
    fn log_text_is_3proxys() {
        let t: TargetAddr = "mail.example:587".parse().unwrap();
        assert_eq!(log_text(b"bob", &t, 587), "bob@mail.example");
        let t: TargetAddr = "mail.example:25".parse().unwrap();
        assert_eq!(log_text(b"b\nob", &t, 587), "b?ob@mail.example:25");
    }
}
