//! Tests of the value parsers of `parse.rs`.

use super::*;

#[test]
fn listen_addresses() {
    assert_eq!(
        parse_listen_ip("127.0.0.1"),
        Ok("127.0.0.1".parse().unwrap())
    );
    assert_eq!(parse_listen_ip("::1"), Ok("::1".parse().unwrap()));
    assert_eq!(parse_listen_ip("[::1]"), Ok("::1".parse().unwrap()));
    assert!(matches!(
        parse_listen_ip("localhost"),
        Err(ConfigErrorKind::HostNameNotSupported { .. })
    ));
    assert!(matches!(
        parse_listen_ip("unix:/tmp/s"),
        Err(ConfigErrorKind::NotSupportedYet { .. })
    ));
    assert!(matches!(
        parse_listen_ip("1.2.3.4:80"),
        Err(ConfigErrorKind::InvalidAddress { .. })
    ));
    assert!(matches!(
        parse_listen_ip(""),
        Err(ConfigErrorKind::InvalidAddress { .. })
    ));
}

#[test]
fn numbers() {
    assert_eq!(parse_port("0"), Ok(0));
    assert_eq!(parse_port("65535"), Ok(65535));
    assert!(parse_port("65536").is_err());
    assert!(parse_port("+1").is_err());
    assert!(parse_port("").is_err());
    assert!(parse_port("99999999999999999999999").is_err());
    assert_eq!(parse_maxconn("1"), Ok(1));
    assert_eq!(parse_maxconn("1000000"), Ok(1_000_000));
    assert!(parse_maxconn("0").is_err());
    assert!(parse_maxconn("1000001").is_err());
    assert!(parse_maxconn("12abc").is_err());
}
