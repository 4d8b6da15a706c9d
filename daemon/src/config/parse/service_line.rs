//! Service lines (`socks`, `proxy`, `tcppm`, ...): which service a line starts, its
//! options (`-p`, `-i`, `-u`, `-l`, ...) applied over the settings in force, and the
//! standalone form (`triproxy socks -p1080`), which is one service line with no
//! configuration around it.
//!
//! It does not run the other commands (the `dispatch` module) or read files.

use super::{parse_decimal, parse_listen_ip, parse_port, resolve, Here, Parser};
use crate::config::commands;
use crate::config::lexer::SyntaxError;
use crate::config::logging::{self, LogRetention};
use crate::config::names::NamesConfig;
use crate::config::process::ProcessConfig;
use crate::config::{
    Config, ConfigError, ConfigErrorKind, ConfigWarning, LogTarget, NeedUser, ServiceConfig,
    ServiceKind, SourceAddrs, DEFAULT_INTERNAL, DEFAULT_MAXCONN, MAX_SERVICES, MAX_WORDS_PER_LINE,
};
use crate::logformat::LogFormat;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use triproxy_dns::proxy::ProxyConfig;
use triproxy_dns::Family;
use triproxy_policy::auth::AuthChain;
use triproxy_policy::authcache::AuthCache;
use triproxy_policy::bandlim::BandLimits;
use triproxy_policy::connlim::ConnLimits;
use triproxy_policy::quota::Quotas;
use triproxy_policy::relay::LogDump;
use triproxy_policy::service::{Anonymity, Timeouts};
use triproxy_policy::service::{MailOptions, TlsOptions, DEFAULT_DELIMITER};
use triproxy_policy::users::Users;
use triproxy_wire::TargetAddr;

impl Parser {
    /// A service line (`socks`, `proxy`, `tcppm`): the service runs with the auth, ACL and
    /// limits in force at this line, changed by its options.
    pub(super) fn start_service(
        &mut self,
        here: Here<'_>,
        command: &str,
        args: &[&str],
    ) -> Result<(), ConfigError> {
        if self.services.len() >= MAX_SERVICES {
            return Err(self.error(
                here,
                ConfigErrorKind::TooManyServices {
                    limit: MAX_SERVICES,
                },
            ));
        }
        if self.auth.uses_cache() && self.authcache.is_none() {
            return Err(self.error(here, ConfigErrorKind::CacheWithoutAuthcache));
        }
        let line = service_line(command, args).map_err(|k| self.error(here, k))?;
        logging::check_nolog(&line.kind, &self.acl).map_err(|k| self.error(here, k))?;
        let defaults = ServiceConfig {
            listen: SocketAddr::new(self.internal, line.default_port()),
            kind: line.kind,
            auth: self.auth.clone(),
            authcache: self.authcache,
            acl: self.acl.clone(),
            needuser: NeedUser::IfOffered,
            maxconn: self.maxconn,
            external: self.external,
            backlog: self.backlog,
            splice: true,
            anonymity: Anonymity::default(),
            family: Family::V4ThenV6,
            log: self.log.clone(),
            logformat: self.logformat.clone(),
            logdump: self.logdump,
            origin: (here.file.to_owned(), here.line),
            force: self.force,
        };
        let mut service = apply_options(defaults, command, line.options, here.base_dir)
            .map_err(|k| self.error(here, k))?;
        for warning in logging::option_warnings(line.options) {
            self.warn(here, Some(warning));
        }
        if let Some(port) = line.port {
            service.listen.set_port(port);
        }
        self.services.push(service);
        Ok(())
    }
}

/// The words of a service line after its command: which service it is (the port mapper
/// with its target), its options, and the port mapper's SRCPORT (which wins over `-p`, as
/// in 3proxy).
struct ServiceLine<'a> {
    kind: ServiceKind,
    options: &'a [&'a str],
    port: Option<u16>,
}

impl ServiceLine<'_> {
    /// The port before options: SRCPORT, else the service's default.
    fn default_port(&self) -> u16 {
        self.port.or(self.kind.default_port()).unwrap_or(0)
    }
}

/// Splits a service line (`command` one of [`ServiceKind::COMMANDS`]). Options come first;
/// `tcppm` then takes exactly SRCPORT DSTHOST DSTPORT (3proxy.md section 3), the other
/// services nothing (a stray word is reported by [`apply_options`]).
fn service_line<'a>(
    command: &str,
    args: &'a [&'a str],
) -> Result<ServiceLine<'a>, ConfigErrorKind> {
    let kind = match command {
        "socks" => ServiceKind::Socks,
        "proxy" => ServiceKind::Proxy,
        "dnspr" => ServiceKind::DnsPr(ProxyConfig::default()),
        "pop3p" => ServiceKind::Pop3p(MailOptions {
            default_target: None,
            starttls: true,
            delimiter: DEFAULT_DELIMITER,
        }),
        "smtpp" => ServiceKind::Smtpp(MailOptions {
            default_target: None,
            starttls: true,
            delimiter: DEFAULT_DELIMITER,
        }),
        "imapp" => ServiceKind::Imapp(MailOptions {
            default_target: None,
            starttls: true,
            delimiter: DEFAULT_DELIMITER,
        }),
        "tlspr" => ServiceKind::Tlspr(TlsOptions::default()),
        "auto" => ServiceKind::Auto(TlsOptions::default()),
        "admin" => ServiceKind::Admin { read_only: false },
        "tcppm" | "udppm" => {
            let options = args.iter().take_while(|a| a.starts_with('-')).count();
            let (options, positional) = args.split_at(options);
            let &[src, host, dst] = positional else {
                return Err(ConfigErrorKind::PortMapArguments {
                    command: command.to_owned(),
                    given: positional.iter().map(|&a| a.to_owned()).collect(),
                });
            };
            let port = parse_numbered_port(src, "SRCPORT (listen port)", 0)?;
            let target = parse_map_target(host, parse_numbered_port(dst, "DSTPORT", 1)?)?;
            let kind = if command == "tcppm" {
                ServiceKind::TcpPm { target }
            } else {
                ServiceKind::UdpPm {
                    target,
                    single: false,
                }
            };
            return Ok(ServiceLine {
                kind,
                options,
                port: Some(port),
            });
        }
        _ => {
            return Err(ConfigErrorKind::UnknownService {
                name: command.to_owned(),
            })
        }
    };
    Ok(ServiceLine {
        kind,
        options: args,
        port: None,
    })
}

/// Whether `kind` is a mail or TLS proxy (they take `-hHOST[:PORT]`).
fn mail_or_tls(kind: &ServiceKind) -> bool {
    matches!(
        kind,
        ServiceKind::Pop3p(_)
            | ServiceKind::Smtpp(_)
            | ServiceKind::Imapp(_)
            | ServiceKind::Tlspr(_)
            | ServiceKind::Auto(_)
    )
}

/// `-hHOST[:PORT]`: an IP address or a host name, with `default_port` when none is given
/// (`[v6]:port` for an IPv6 address with a port).
fn parse_default_host(value: &str, default_port: u16) -> Option<TargetAddr> {
    if value.is_empty() {
        return None;
    }
    if let Ok(t) = value.parse::<TargetAddr>() {
        return Some(t);
    }
    let target = TargetAddr::try_from((value, default_port)).ok()?;
    let name_like = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'));
    name_like.then_some(target)
}

/// A port argument from `min` to 65535. SRCPORT 0 asks for any free port, as `-p0` does
/// (3proxy refuses 0); DSTPORT 0 cannot be connected to.
fn parse_numbered_port(value: &str, what: &'static str, min: u16) -> Result<u16, ConfigErrorKind> {
    parse_decimal(value)
        .and_then(|n| u16::try_from(n).ok())
        .filter(|&n| n >= min)
        .ok_or_else(|| ConfigErrorKind::InvalidNumber {
            what,
            value: value.to_owned(),
            min: u64::from(min),
            max: u64::from(u16::MAX),
        })
}

/// A port mapper's DSTHOST: an IP address (IPv6 with or without brackets) or a host name,
/// resolved for each connection. 3proxy's other forms are refused by name: `unix:` sockets
/// and a `host:port` inside DSTHOST.
fn parse_map_target(host: &str, port: u16) -> Result<TargetAddr, ConfigErrorKind> {
    let unusable = |reason: &str| ConfigErrorKind::PortMapHost {
        value: host.to_owned(),
        reason: reason.to_owned(),
    };
    if host.starts_with("unix:") {
        return Err(ConfigErrorKind::NotSupportedYet {
            feature: format!("port mapping to a unix socket (`{host}`)"),
        });
    }
    let target = TargetAddr::try_from((host, port)).map_err(|e| unusable(&e.to_string()))?;
    if let TargetAddr::Domain(..) = target {
        if host.contains(':') {
            return Err(unusable(
                "a port inside DSTHOST is not supported; give it as DSTPORT",
            ));
        }
        let name_like = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !name_like {
            return Err(unusable(
                "a host name has only letters, digits, `-`, `.` and `_`",
            ));
        }
    }
    Ok(target)
}

/// 3proxy service options that triproxy does not implement yet (3proxy.md section 3).
const OPTIONS_NOT_YET: &[char] = &[
    'b', 'c', 'C', 'd', 'D', 'F', 'g', 'h', 'H', 'I', 'N', 'o', 'P', 'r', 'R', 'S', 't', 'T', 'U',
    'x', 'X',
];

/// Applies service options (`-p`, `-i`, `-e`, `-u`, `-s`, `-l`, `-f`, `-n`, `-a`) to `svc`,
/// in order.
fn apply_options(
    mut svc: ServiceConfig,
    command: &str,
    args: &[&str],
    base_dir: &Path,
) -> Result<ServiceConfig, ConfigErrorKind> {
    for &arg in args {
        let Some(opt) = arg.strip_prefix('-') else {
            return Err(ConfigErrorKind::UnexpectedArgument {
                command: command.to_owned(),
                argument: arg.to_owned(),
            });
        };
        let mut chars = opt.chars();
        let Some(letter) = chars.next() else {
            return Err(ConfigErrorKind::UnknownOption {
                option: arg.to_owned(),
            });
        };
        let value = chars.as_str();
        let invalid = || ConfigErrorKind::InvalidOptionValue {
            option: arg.to_owned(),
        };
        match letter {
            'p' => svc.listen.set_port(parse_port(value)?),
            'i' => svc.listen.set_ip(parse_listen_ip(value)?),
            'e' => svc.external.set(parse_listen_ip(value)?),
            'u' => {
                svc.needuser = match value {
                    "" | "0" => NeedUser::Never,
                    "1" => NeedUser::IfOffered,
                    "2" => NeedUser::Required,
                    _ => return Err(invalid()),
                }
            }
            // `-s` means what the service says (3proxy.md section 3): single packet for
            // udppm, simple mode for dnspr, splice for TCP services.
            's' => match &mut svc.kind {
                ServiceKind::UdpPm { single, .. } if value.is_empty() => *single = true,
                ServiceKind::DnsPr(c) if value.is_empty() => c.simple = true,
                ServiceKind::UdpPm { .. } | ServiceKind::DnsPr(_) => return Err(invalid()),
                // `admin -s`: read-only (counters and metrics, no switching, no reload).
                ServiceKind::Admin { read_only } if value.is_empty() => *read_only = true,
                ServiceKind::Admin { .. } => return Err(invalid()),
                _ => {
                    svc.splice = match value {
                        "" | "1" => true,
                        "0" => false,
                        _ => return Err(invalid()),
                    }
                }
            },
            // `-FIP`: dnspr answers every A (an IPv4 IP) or AAAA (an IPv6 IP) with it.
            'F' if matches!(svc.kind, ServiceKind::DnsPr(_)) => {
                let ip = value.parse::<IpAddr>().map_err(|_| invalid())?;
                if let ServiceKind::DnsPr(c) = &mut svc.kind {
                    match ip {
                        IpAddr::V4(a) => c.fake_v4 = Some(a),
                        IpAddr::V6(a) => c.fake_v6 = Some(a),
                    }
                }
            }
            'l' => {
                svc.log = if value.is_empty() {
                    LogTarget::Stdout
                } else if value == "/dev/null" {
                    LogTarget::Off
                } else if let Some(ident) = value.strip_prefix('@') {
                    logging::syslog(ident)?
                } else {
                    LogTarget::File(resolve(base_dir, value))
                }
            }
            'f' => svc.logformat = LogFormat::parse(value).map_err(ConfigErrorKind::LogFormat)?,
            // HTTP proxy anonymity (3proxy.md section 3); `Via` is always sent (RFC 9110).
            'a' => {
                svc.anonymity = match value {
                    "" => Anonymity::Hidden,
                    "1" => Anonymity::RandomForwardedFor,
                    "2" => Anonymity::ForwardedFor,
                    _ => return Err(invalid()),
                }
            }
            // Address families of resolved names (3proxy.md section 3).
            '4' | '6' => {
                svc.family = match (letter, value) {
                    ('4', "") => Family::V4,
                    ('6', "") => Family::V6,
                    ('4', "6") => Family::V4ThenV6,
                    ('6', "4") => Family::V6ThenV4,
                    _ => return Err(invalid()),
                }
            }
            // The mail and TLS proxies' own options (3proxy.md section 3).
            'h' if mail_or_tls(&svc.kind) => {
                let default_port = match &svc.kind {
                    ServiceKind::Pop3p(_) => 110,
                    ServiceKind::Smtpp(_) => 587,
                    ServiceKind::Imapp(_) => 143,
                    _ => 443,
                };
                let target = parse_default_host(value, default_port).ok_or_else(invalid)?;
                match &mut svc.kind {
                    ServiceKind::Pop3p(m) | ServiceKind::Smtpp(m) | ServiceKind::Imapp(m) => {
                        m.default_target = Some(target)
                    }
                    ServiceKind::Tlspr(t) | ServiceKind::Auto(t) => t.default_target = Some(target),
                    _ => {}
                }
            }
            'x' if value.is_empty()
                && matches!(
                    svc.kind,
                    ServiceKind::Pop3p(_) | ServiceKind::Smtpp(_) | ServiceKind::Imapp(_)
                ) =>
            {
                if let ServiceKind::Pop3p(m) | ServiceKind::Smtpp(m) | ServiceKind::Imapp(m) =
                    &mut svc.kind
                {
                    m.starttls = false;
                }
            }
            'P' if matches!(svc.kind, ServiceKind::Tlspr(_) | ServiceKind::Auto(_)) => {
                let port = parse_numbered_port(value, "-P (destination port)", 1)?;
                if let ServiceKind::Tlspr(t) | ServiceKind::Auto(t) = &mut svc.kind {
                    t.port = port;
                }
            }
            'c' if matches!(svc.kind, ServiceKind::Tlspr(_) | ServiceKind::Auto(_)) => {
                let level = match value {
                    "" => 1,
                    "0" | "1" | "2" => value.parse::<u8>().map_err(|_| invalid())?,
                    "3" | "4" => {
                        return Err(ConfigErrorKind::NotSupportedYet {
                            feature: format!("TLS certificate checks (`{arg}`)"),
                        })
                    }
                    _ => return Err(invalid()),
                };
                if let ServiceKind::Tlspr(t) | ServiceKind::Auto(t) = &mut svc.kind {
                    t.check = level;
                }
            }
            'X' if matches!(svc.kind, ServiceKind::Tlspr(_)) => {
                return Err(ConfigErrorKind::NotSupportedYet {
                    feature: format!("a plaintext protocol before STARTTLS (`{arg}`)"),
                })
            }
            // `-n` (no NTLM) is a no-op in 3proxy 1.0 and still in its sample configs.
            'n' if value.is_empty() => {}
            c if OPTIONS_NOT_YET.contains(&c) => {
                return Err(ConfigErrorKind::UnsupportedOption {
                    option: arg.to_owned(),
                })
            }
            _ => {
                return Err(ConfigErrorKind::UnknownOption {
                    option: arg.to_owned(),
                })
            }
        }
    }
    Ok(svc)
}

pub(in crate::config) fn standalone(service: &str, args: &[String]) -> Result<Config, ConfigError> {
    const ORIGIN: &str = "command line";
    let fail = |kind| ConfigError {
        file: ORIGIN.to_owned(),
        line: 0,
        kind,
        included_from: Vec::new(),
    };
    if !ServiceKind::is_command(service) {
        return Err(fail(if commands::is_3proxy_service(service) {
            ConfigErrorKind::UnsupportedCommand {
                command: service.to_owned(),
            }
        } else {
            ConfigErrorKind::UnknownService {
                name: service.to_owned(),
            }
        }));
    }
    if args.len() > MAX_WORDS_PER_LINE {
        return Err(fail(ConfigErrorKind::Syntax(SyntaxError::TooManyWords {
            limit: MAX_WORDS_PER_LINE,
        })));
    }
    if service == "admin" {
        return Err(fail(ConfigErrorKind::StandaloneAdmin));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let line = service_line(service, &args).map_err(fail)?;
    let defaults = ServiceConfig {
        listen: SocketAddr::new(DEFAULT_INTERNAL, line.default_port()),
        kind: line.kind,
        auth: AuthChain::default_chain(),
        authcache: None,
        acl: Vec::new(),
        needuser: NeedUser::Never,
        maxconn: DEFAULT_MAXCONN,
        external: SourceAddrs::default(),
        backlog: None,
        splice: true,
        anonymity: Anonymity::default(),
        family: Family::V4ThenV6,
        log: LogTarget::Stdout,
        logformat: LogFormat::default_3proxy(),
        logdump: LogDump::default(),
        origin: (ORIGIN.to_owned(), 0),
        force: true,
    };
    let mut svc = apply_options(defaults, service, line.options, Path::new("")).map_err(fail)?;
    let warnings = logging::option_warnings(line.options)
        .into_iter()
        .map(|kind| ConfigWarning {
            file: ORIGIN.to_owned(),
            line: 0,
            kind,
        })
        .collect();
    if let Some(port) = line.port {
        svc.listen.set_port(port);
    }
    Ok(Config {
        services: vec![svc],
        users: Arc::new(Users::new()),
        authcache: Arc::new(AuthCache::default()),
        bandlimits: Arc::new(BandLimits::new()),
        quotas: Arc::new(Quotas::new()),
        connlimits: Arc::new(ConnLimits::new()),
        timeouts: Timeouts::default(),
        counter: None,
        names: NamesConfig::default(),
        process: ProcessConfig::default(),
        warnings,
        log_retention: LogRetention::default(),
    })
}
