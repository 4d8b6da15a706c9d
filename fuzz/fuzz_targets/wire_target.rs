#![cfg_attr(fuzzing, no_main)]
//! `TargetAddr`'s text forms in `triproxy_wire`: `str::parse` (`host:port`, `[v6]:port`,
//! `a.b.c.d:port`) and `TryFrom<(&str, u16)>`.
//!
//! Input: `port_lo, port_hi, text...` (the text as lossy UTF-8; the port for the pair form).
//!
//! Oracles: no panic; a parsed IP target prints back to text that parses to the same
//! target; a parsed name is exactly the text before the last colon, never contains a
//! colon or starts with `[`, keeps the port, and when it prints as itself (no byte that
//! `Display` escapes) its text parses back to the same target; the pair form accepts
//! every host the string form accepted, with the same result.

use triproxy_fuzz::wire::TargetAddr;
use triproxy_fuzz::Input;

triproxy_fuzz::target!(|data| {
    let mut input = Input::new(data);
    let port = input.u16();
    let text = String::from_utf8_lossy(input.rest());
    let _ = TargetAddr::try_from((text.as_ref(), port));
    let Ok(target) = text.parse::<TargetAddr>() else {
        return;
    };
    let printed = target.to_string();
    match &target {
        TargetAddr::Ip(_) => {
            assert_eq!(printed.parse::<TargetAddr>().ok(), Some(target.clone()));
        }
        TargetAddr::Domain(name, p) => {
            let (host, tail) = text.rsplit_once(':').unwrap_or_default();
            assert_eq!(
                name.as_bytes(),
                host.as_bytes(),
                "name is not the host text"
            );
            assert_eq!(tail.parse::<u16>().ok(), Some(*p), "port changed");
            assert!(!host.contains(':') && !host.starts_with('['), "{host:?}");
            if name.as_str().is_some_and(|s| printed == format!("{s}:{p}")) {
                assert_eq!(printed.parse::<TargetAddr>().ok(), Some(target.clone()));
            }
            let pair = TargetAddr::try_from((host, *p)).ok();
            assert_eq!(pair, Some(target.clone()), "pair form disagrees");
        }
    }
});
