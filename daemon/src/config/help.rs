//! `triproxy SERVICE --help`: the options each service takes (3proxy.md section 3), as
//! triproxy runs them.

use super::ServiceKind;

/// Options every service takes.
const COMMON: &str = "\
  -pPORT        listen port
  -iADDR        listen address (IPv4 or IPv6)
  -eADDR        source address of outgoing connections (one IPv4 and one IPv6 may be given)
  -l            log to standard output; -lFILE to FILE; -l/dev/null: no log
  -fFORMAT      log format (3proxy logformat)
  -4 -6 -46 -64 address families of resolved names, in order (default -46)
  -u -u1 -u2    needuser: never / if offered / required
  -n            accepted, no effect (3proxy 0.8's \"no NTLM\")
";

/// What the service is and the options only it takes.
fn specific(service: &str) -> Option<(&'static str, &'static str)> {
    Some(match service {
        "socks" => (
            "socks [options]: SOCKS 4, 4a and 5 (CONNECT, BIND, UDP ASSOCIATE), default port 1080",
            "  -s -s0        relay with splice(2) (default) / through buffers\n",
        ),
        "proxy" => (
            "proxy [options]: HTTP proxy (plain requests and CONNECT), default port 3128",
            "  -a -a1 -a2    anonymity: as 3proxy\n  -s -s0        relay with splice(2) (default) / through buffers\n",
        ),
        "tcppm" => (
            "tcppm [options] SRCPORT DSTHOST DSTPORT: TCP port mapper",
            "  -s -s0        relay with splice(2) (default) / through buffers\n",
        ),
        "udppm" => (
            "udppm [options] SRCPORT DSTHOST DSTPORT: UDP port mapper",
            "  -s            one answer per client, then its mapping ends\n",
        ),
        "dnspr" => (
            "dnspr [options]: DNS proxy over UDP, default port 53",
            "  -s            simple mode\n  -FADDR        fake answers with ADDR\n",
        ),
        "pop3p" => (
            "pop3p [options]: POP3 proxy (USER user@host), default port 110",
            "  -hHOST[:PORT] default server\n  -x            keep the client's STLS\n",
        ),
        "smtpp" => (
            "smtpp [options]: SMTP proxy (AUTH with user@host), default port 587",
            "  -hHOST[:PORT] default server\n  -x            keep the client's STARTTLS\n",
        ),
        "imapp" => (
            "imapp [options]: IMAP proxy (LOGIN user@host), default port 143",
            "  -hHOST[:PORT] default server\n  -x            keep the client's STARTTLS\n",
        ),
        "tlspr" => (
            "tlspr [options]: TLS proxy by SNI, default port 1443",
            "  -PPORT        server port (default 443)\n  -c0 -c1 -c2   SNI required: no / yes / yes and checked\n  -hHOST[:PORT] server when there is no SNI\n",
        ),
        "admin" => (
            "admin [options]: 3proxy's web admin (counters, status, reload, /metrics), default port 80; only from a configuration file, after `auth` and `allow` lines",
            "  -s            read-only: counters and metrics only\n",
        ),
        "auto" => (
            "auto [options]: SOCKS, HTTP proxy or TLS by the first byte, default port 8080",
            "  -PPORT -cN    as tlspr\n",
        ),
        _ => return None,
    })
}

/// The help text of `service` (one of [`ServiceKind::COMMANDS`]), or the list of services.
pub fn service_help(service: &str) -> String {
    match specific(service) {
        Some((what, options)) => format!("{what}\n\nOptions:\n{COMMON}{options}"),
        None => format!(
            "unknown service `{service}`; services: {}\n",
            ServiceKind::COMMANDS.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_has_help() {
        for service in ServiceKind::COMMANDS {
            let text = service_help(service);
            assert!(text.starts_with(service), "{text}");
            assert!(text.contains("-pPORT"), "{text}");
        }
        assert!(service_help("nope").contains("services: socks"));
    }
}
