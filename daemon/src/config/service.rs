//! What one service line asks for: [`ServiceConfig`] (the settings in force at the line),
//! [`ServiceKind`] (which protocol, with its own options) and [`LogTarget`] (where its
//! records go).
//!
//! Plain data only: the reader (`parse`) fills these in, and the daemon starts the
//! services from them.

use super::{
    MailOptions, NeedUser, SourceAddrs, TlsOptions, DEFAULT_ADMIN_PORT, DEFAULT_DNSPR_PORT,
    DEFAULT_PROXY_PORT, DEFAULT_SOCKS_PORT,
};
use crate::logformat::LogFormat;
use std::net::SocketAddr;
use std::path::PathBuf;
use triproxy_policy::acl::Ace;
use triproxy_policy::auth::AuthChain;
use triproxy_policy::authcache::AuthCacheSettings;
use triproxy_policy::service::Anonymity;
use triproxy_wire::TargetAddr;

// Named only in doc links.
#[cfg(doc)]
use super::DEFAULT_MAXCONN;

/// One service to start, with the settings that were in force at its line.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Which protocol it serves.
    pub kind: ServiceKind,
    /// Listen address: `-i` or the last `internal` (default 0.0.0.0, as 3proxy), port `-p`
    /// or the service default (SOCKS 1080); a port mapper's SRCPORT argument wins over
    /// `-p`. Port 0 means "any free port".
    pub listen: SocketAddr,
    /// The `auth` chain in force (the default chain when no `auth` line came before).
    pub auth: AuthChain,
    /// The `authcache` settings in force (`None` before any `authcache` line: nothing is
    /// cached).
    pub authcache: Option<AuthCacheSettings>,
    /// The `allow`/`deny` entries in force, in order (empty = allow everything, as 3proxy).
    pub acl: Vec<Ace>,
    /// `-u` / `-u1` / `-u2`.
    pub needuser: NeedUser,
    /// Most simultaneous clients (`maxconn` in force; default [`DEFAULT_MAXCONN`]).
    pub maxconn: u32,
    /// Whether established tunnels relay with zero-copy `splice(2)` (true, the default;
    /// `-s`) or through user-space buffers (`-s0`). 3proxy only splices when built with it
    /// and asked with `-s`; triproxy splices unless told not to.
    pub splice: bool,
    /// Where its records go: `-l...`, else the `log` in force. Services before the first
    /// `log` line do not log, as in 3proxy.
    pub log: LogTarget,
    /// Record format: `-f...`, else the `logformat` in force, else 3proxy's default.
    pub logformat: LogFormat,
    /// `logdump` in force at the service line: when its tunnels write interim records.
    pub logdump: triproxy_policy::relay::LogDump,
    /// What a forwarded HTTP request says about its client: `-a`, `-a1`, `-a2` (the HTTP
    /// proxy only; other services ignore it, as 3proxy does).
    pub anonymity: Anonymity,
    /// Address families of resolved names, in order: `-4`, `-6`, `-46`, `-64`. Without
    /// one, triproxy uses `-46` (3proxy's default is `-4`: IPv4 only); the README says so.
    pub family: triproxy_dns::Family,
    /// Source addresses of outgoing connections: `-e` options, else the `external` lines in
    /// force (none: the kernel chooses and nothing is bound).
    pub external: SourceAddrs,
    /// Listen backlog: `backlog` in force, else `1 + maxconn/8` (3proxy), at least 128.
    pub backlog: Option<u32>,
    /// File and line of the service command (`("command line", 0)` for the standalone form).
    pub origin: (String, usize),
    /// `force` (the default) or `noforce` in force at the service line: whether a reload
    /// checks this service's established connections against the new configuration.
    pub force: bool,
}

/// A service protocol.
#[allow(clippy::large_enum_variant)] // one per service, read once at start
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceKind {
    /// SOCKS 4, 4a and 5 on one port (3proxy `socks`).
    Socks,
    /// The HTTP proxy (3proxy `proxy`): CONNECT tunnels and plain forwarding.
    Proxy,
    /// The TCP port mapper (3proxy `tcppm SRCPORT DSTHOST DSTPORT`): every client is
    /// relayed to `target` (a name is resolved again for each connection).
    TcpPm {
        /// DSTHOST and DSTPORT.
        target: TargetAddr,
    },
    /// The UDP port mapper (3proxy `udppm SRCPORT DSTHOST DSTPORT`): each client's
    /// datagrams go to `target`, and its answers come back.
    UdpPm {
        /// DSTHOST and DSTPORT.
        target: TargetAddr,
        /// `-s`: one answer per client, then its mapping ends.
        single: bool,
    },
    /// The DNS proxy (3proxy `dnspr`, UDP port 53 by default): `-s` simple mode, `-FIP`
    /// fake answers.
    DnsPr(triproxy_dns::proxy::ProxyConfig),
    /// The POP3 proxy (3proxy `pop3p`, port 110): `-hHOST[:PORT]`, `-x`.
    Pop3p(MailOptions),
    /// The SMTP proxy (3proxy `smtpp`, port 587 as in 3proxy's code): `-h`, `-x`.
    Smtpp(MailOptions),
    /// The IMAP proxy (3proxy `imapp`, port 143): `-h`, `-x`.
    Imapp(MailOptions),
    /// The TLS SNI proxy (3proxy `tlspr`, port 1443): `-PPORT`, `-cN`, `-h`.
    Tlspr(TlsOptions),
    /// 3proxy `auto` (port 8080): SOCKS, HTTP proxy or `tlspr` by the first byte.
    Auto(TlsOptions),
    /// 3proxy `admin` (port 80): the web admin pages and Prometheus `/metrics`
    /// ([`crate::admin`]).
    Admin {
        /// `-s`: read-only, as in 3proxy (counters and metrics only, of the rules that
        /// match the requester; no counter switching, no reload, no status page).
        read_only: bool,
    },
}

impl ServiceKind {
    /// The commands of every service triproxy runs.
    pub const COMMANDS: [&'static str; 11] = [
        "socks", "proxy", "tcppm", "udppm", "dnspr", "pop3p", "smtpp", "imapp", "tlspr", "auto",
        "admin",
    ];

    /// The 3proxy command that starts it.
    pub fn command(&self) -> &'static str {
        match self {
            ServiceKind::Socks => "socks",
            ServiceKind::Proxy => "proxy",
            ServiceKind::TcpPm { .. } => "tcppm",
            ServiceKind::UdpPm { .. } => "udppm",
            ServiceKind::DnsPr(_) => "dnspr",
            ServiceKind::Pop3p(_) => "pop3p",
            ServiceKind::Smtpp(_) => "smtpp",
            ServiceKind::Imapp(_) => "imapp",
            ServiceKind::Tlspr(_) => "tlspr",
            ServiceKind::Auto(_) => "auto",
            ServiceKind::Admin { .. } => "admin",
        }
    }

    /// Whether `name` is the command of a service triproxy runs.
    pub fn is_command(name: &str) -> bool {
        Self::COMMANDS.contains(&name)
    }

    /// The port it listens on without `-p` (3proxy's defaults); none for the port mapper,
    /// whose SRCPORT argument is mandatory.
    pub fn default_port(&self) -> Option<u16> {
        match self {
            ServiceKind::Socks => Some(DEFAULT_SOCKS_PORT),
            ServiceKind::Proxy => Some(DEFAULT_PROXY_PORT),
            ServiceKind::TcpPm { .. } | ServiceKind::UdpPm { .. } => None,
            ServiceKind::DnsPr(_) => Some(DEFAULT_DNSPR_PORT),
            ServiceKind::Pop3p(_) => Some(110),
            ServiceKind::Smtpp(_) => Some(587),
            ServiceKind::Imapp(_) => Some(143),
            ServiceKind::Tlspr(_) => Some(1443),
            ServiceKind::Auto(_) => Some(8080),
            ServiceKind::Admin { .. } => Some(DEFAULT_ADMIN_PORT),
        }
    }

    /// The datagram service it is, for a UDP one.
    pub fn datagram(&self) -> Option<triproxy_policy::service::DatagramService> {
        use triproxy_policy::service::DatagramService;
        match self {
            ServiceKind::UdpPm { target, single } => Some(DatagramService::PortMap {
                target: target.clone(),
                single: *single,
            }),
            ServiceKind::DnsPr(c) => Some(DatagramService::DnsProxy(*c)),
            ServiceKind::Socks
            | ServiceKind::Proxy
            | ServiceKind::TcpPm { .. }
            | ServiceKind::Pop3p(_)
            | ServiceKind::Smtpp(_)
            | ServiceKind::Imapp(_)
            | ServiceKind::Tlspr(_)
            | ServiceKind::Auto(_)
            | ServiceKind::Admin { .. } => None,
        }
    }
}

/// Where a service writes its log records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogTarget {
    /// No records (`log /dev/null`, `-l/dev/null`, or no `log` line before the service).
    Off,
    /// Standard output, one line per record (`log` or `-l` without a file).
    Stdout,
    /// Appended to this file (`log FILE` or `-lFILE`), without rotation.
    File(PathBuf),
    /// A file whose name changes with time (`log FILE ROTATION`, or a `%` template).
    Rotating(RotatingLog),
    /// The local syslog socket, with this ident (`log @IDENT`, `-l@IDENT`).
    Syslog(String),
}

/// A rotated log: `log NAME [C|H|D|W|M|Y]` where NAME has a `%` template or a rotation
/// letter follows. See [`crate::logrotate`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RotatingLog {
    /// The file name (plain, suffixed by period, or a template).
    pub name: crate::logrotate::LogName,
    /// How often the file changes.
    pub rotation: triproxy_policy::period::Period,
}
