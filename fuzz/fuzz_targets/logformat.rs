#![cfg_attr(fuzzing, no_main)]
//! 3proxy `logformat` strings (`triproxy::logformat::LogFormat`): parsing arbitrary text
//! and rendering an arbitrary record with it.
//!
//! Input: `format text, 0x00, record...`; the record's fields (time, duration, code, ports,
//! addresses, byte counts, user, host, text) are read from the bytes after the NUL.
//!
//! Oracles: no panic; an accepted format keeps its text (`as_str`, `Display`) and parses
//! back to an equal value; rendering only appends, at most `MAX_RECORD_LEN` bytes, and
//! gives the same line twice.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, UNIX_EPOCH};
use triproxy_fuzz::daemon::logformat::{LogFields, LogFormat, MAX_RECORD_LEN};
use triproxy_fuzz::wire::LogCode;
use triproxy_fuzz::Input;

fn addr(input: &mut Input<'_>) -> Option<SocketAddr> {
    let ip: IpAddr = match input.byte() % 3 {
        0 => return None,
        1 => IpAddr::from([input.byte(), input.byte(), input.byte(), input.byte()]),
        _ => IpAddr::from([input.u16(), 0, 0, 0, 0, 0, input.u16(), input.u16()]),
    };
    Some(SocketAddr::new(ip, input.u16()))
}

fn text<'a>(input: &mut Input<'a>) -> String {
    String::from_utf8_lossy(input.until(0)).into_owned()
}

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let source = text(&mut input);
    let Ok(format) = LogFormat::parse(&source) else {
        return;
    };
    assert_eq!(format.as_str(), source);
    assert_eq!(format.to_string(), source);
    assert_eq!(LogFormat::parse(format.as_str()).as_ref(), Ok(&format));

    let secs = u64::from(input.u32()) << (input.byte() % 8);
    let duration = Duration::from_millis(u64::from(input.u32()));
    let service = ["SOCK5", "SOCK4", "SOC45", "SOCKS", ""][usize::from(input.byte() % 5)];
    let listen_port = input.u16();
    let code = LogCode(input.u16());
    let client = addr(&mut input).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 1)));
    let remote = addr(&mut input);
    let internal = addr(&mut input).map(|a| a.ip());
    let external = addr(&mut input).map(|a| a.ip());
    let requested = addr(&mut input);
    let requested_port = (input.byte() & 1 == 1).then(|| input.u16());
    let bytes_in = u64::from(input.u32()) << (input.byte() % 33);
    let bytes_out = u64::from(input.u32()) * u64::from(input.u32());
    let hops = u32::from(input.byte());
    let user = text(&mut input);
    let host = text(&mut input);
    let body = text(&mut input);
    let rec = LogFields {
        time: UNIX_EPOCH + Duration::from_secs(secs),
        duration,
        service,
        listen_port,
        code,
        user: (!user.is_empty()).then_some(user.as_str()),
        client,
        remote,
        internal,
        external,
        requested_host: (!host.is_empty()).then_some(host.as_str()),
        requested,
        requested_port,
        bytes_in,
        bytes_out,
        hops,
        text: &body,
        reason: None,
    };
    let mut line = String::from("prefix:");
    format.render(&rec, &mut line);
    let Some(added) = line.strip_prefix("prefix:") else {
        panic!("render changed what was already in the buffer");
    };
    assert!(
        added.len() <= MAX_RECORD_LEN,
        "{} bytes rendered",
        added.len()
    );
    let mut second = String::new();
    format.render(&rec, &mut second);
    assert_eq!(added, second, "rendering is not deterministic");
});
