//! The policy snapshot a service runs with: what its configuration line had in force.
//!
//! 3proxy snapshots the auth chain and ACL at the line that starts a service;
//! [`ServicePolicy`] is that snapshot, shared (behind an `Arc`) by every session of the
//! service. It holds plain data only; the decisions live in [`crate::auth`] and
//! [`crate::acl`], and the [`crate::session`] engine applies them.

use crate::acl::Ace;
use crate::auth::AuthChain;
use crate::authcache::ServiceAuthCache;
use crate::bandlim::BandLimits;
use crate::connlim::ConnLimits;
use crate::names::Names;
use crate::parent::ParentRandom;
use crate::quota::Quotas;
use crate::users::Users;
use core::time::Duration;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use triproxy_dns::Family;
use triproxy_wire::TargetAddr;

/// 3proxy's `-u` option: whether a service asks clients for a user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NeedUser {
    /// `-u`: never ask (SOCKS5 never selects method 0x02).
    Never,
    /// Default: use credentials when the client offers them.
    #[default]
    IfOffered,
    /// `-u2`: require a user name (SOCKS5 answers 0xFF unless 0x02 is offered).
    Required,
}

/// Which protocol a service speaks to its clients (3proxy `socks`, `proxy` or `tcppm`).
/// (The port mapper's target is inline: there is one per service, in its shared
/// [`ServicePolicy`].)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FrontProtocol {
    /// SOCKS 4, 4a and 5 on one port.
    #[default]
    Socks,
    /// The HTTP proxy (CONNECT tunnels and plain forwarding).
    Http,
    /// The TCP port mapper (3proxy `tcppm`): no handshake at all; every client is relayed
    /// to this one target (a name is resolved again for each connection, as 3proxy does),
    /// decided as a SOCKS CONNECT is (ACL operation `CONNECT`).
    PortMap(TargetAddr),
    /// The POP3 proxy (3proxy `pop3p`): the target comes from `USER user@host[:port]`.
    Pop3(MailOptions),
    /// The SMTP proxy (3proxy `smtpp`): the target comes from the `AUTH` user name.
    Smtp(MailOptions),
    /// The IMAP proxy (3proxy `imapp`): the target comes from `LOGIN user@host[:port]`.
    Imap(MailOptions),
    /// The TLS SNI proxy (3proxy `tlspr`): the target is the ClientHello's server name.
    Tls(TlsOptions),
    /// 3proxy `auto`: the first byte chooses SOCKS (4 or 5), TLS (0x16, as `tlspr`) or
    /// the HTTP proxy.
    Auto(TlsOptions),
}

/// The byte between the user and the host in a mail proxy login (`user@host`), unless a
/// `delimchar` line says otherwise.
pub const DEFAULT_DELIMITER: u8 = b'@';

/// The options of a mail proxy service (`pop3p`, `smtpp`, `imapp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailOptions {
    /// `-hHOST[:PORT]`: where to go when the user name names no host.
    pub default_target: Option<TargetAddr>,
    /// STLS / STARTTLS offered and handled as 3proxy does (`-x` turns it off).
    pub starttls: bool,
    /// `delimchar`: the byte between user and host; the last one in the login is used
    /// (default [`DEFAULT_DELIMITER`]). Global in 3proxy, so the daemon gives every mail
    /// service the last `delimchar` of the configuration.
    pub delimiter: u8,
}

impl Default for MailOptions {
    /// No default host, STLS/STARTTLS on, `@` between user and host (3proxy's defaults).
    fn default() -> Self {
        MailOptions {
            default_target: None,
            starttls: true,
            delimiter: DEFAULT_DELIMITER,
        }
    }
}

/// The options of the TLS SNI proxy (`tlspr`, and the TLS branch of `auto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// `-PPORT`: the destination port (default 443).
    pub port: u16,
    /// `-cN`: 0 lets non-TLS through, 1 requires a ClientHello (the default), 2 also a
    /// ServerHello from the server.
    pub check: u8,
    /// `-hHOST[:PORT]`: where a hello without a server name goes.
    pub default_target: Option<TargetAddr>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        TlsOptions {
            port: 443,
            check: 1,
            default_target: None,
        }
    }
}

impl FrontProtocol {
    /// How clients of this front reach the service. A service is a listener kind plus a
    /// front: SOCKS, the HTTP proxy and the TCP port mapper take TCP streams; the datagram
    /// fronts (UDP port mapping, the DNS proxy) take datagrams.
    pub fn listener(&self) -> ListenerKind {
        match self {
            FrontProtocol::Socks
            | FrontProtocol::Http
            | FrontProtocol::PortMap(_)
            | FrontProtocol::Pop3(_)
            | FrontProtocol::Smtp(_)
            | FrontProtocol::Imap(_)
            | FrontProtocol::Tls(_)
            | FrontProtocol::Auto(_) => ListenerKind::Stream,
        }
    }
}

/// A service on one UDP socket shared by every client ([`ListenerKind::Datagram`]),
/// run by [`crate::exec::serve_datagrams`].
// One value per service, never stored in bulk: the name inline is fine.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatagramService {
    /// 3proxy `udppm [options] SRCPORT DSTHOST DSTPORT`: each client's datagrams go to
    /// `target` ([`crate::udppm`]).
    PortMap {
        /// DSTHOST:DSTPORT (a name is resolved for each new client, as 3proxy does).
        target: TargetAddr,
        /// `-s`: one answer per client, then its mapping ends.
        single: bool,
    },
    /// 3proxy `dnspr`: answers A and AAAA from the process's resolver and relays the rest
    /// to the first `nserver` ([`crate::dnspr`], [`triproxy_dns::proxy`]).
    DnsProxy(triproxy_dns::proxy::ProxyConfig),
}

/// How a service receives its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// A TCP listening socket: each accepted connection is one session
    /// ([`crate::exec::serve`]).
    Stream,
    /// One UDP socket shared by every client: each client's datagrams form an association
    /// that expires when the client goes quiet ([`crate::datagram::Associations`]).
    Datagram,
}

/// How a runtime moves the bytes of an established tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RelayMode {
    /// Kernel-side copy (Linux `splice(2)` through a pipe), used whenever nothing needs to
    /// see or pace the bytes. The default. A tunnel that a bandwidth pipe paces is relayed
    /// `Buffered` whatever the service says (the session decides that).
    #[default]
    ZeroCopy,
    /// `read`/`write` through a pooled user-space buffer (3proxy `-s0`; also what a runtime
    /// falls back to where zero-copy is unavailable).
    Buffered,
}

/// The proxy's own source addresses for outgoing connections (3proxy `external` / `-e`):
/// at most one IPv4 and one IPv6 address. `None` lets the kernel choose, which is the
/// default and the cheapest (no `bind()` at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceAddrs {
    /// Source for IPv4 targets.
    pub v4: Option<Ipv4Addr>,
    /// Source for IPv6 targets.
    pub v6: Option<Ipv6Addr>,
}

impl SourceAddrs {
    /// Sets the address of `ip`'s family; an unspecified address (`0.0.0.0`, `::`) clears
    /// it, as 3proxy treats `external 0.0.0.0` as "no external address".
    pub fn set(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(a) => self.v4 = (!a.is_unspecified()).then_some(a),
            IpAddr::V6(a) => self.v6 = (!a.is_unspecified()).then_some(a),
        }
    }

    /// The source to bind for a connection to `target`, if one is configured.
    pub fn for_target(&self, target: &SocketAddr) -> Option<IpAddr> {
        match target {
            SocketAddr::V4(_) => self.v4.map(IpAddr::V4),
            SocketAddr::V6(_) => self.v6.map(IpAddr::V6),
        }
    }
}

/// 3proxy's `timeouts` defaults, in its order: BYTE_SHORT BYTE_LONG STRING_SHORT
/// STRING_LONG CONNECTION_SHORT CONNECTION_LONG DNS CHAIN CONNECT CONNECTBACK LINGER
/// (seconds; `src/common.c timeouts[]`).
pub const DEFAULT_TIMEOUTS: [u32; TIMEOUT_COUNT] = [1, 5, 30, 60, 180, 1800, 15, 60, 15, 5, 5];
/// How many values a `timeouts` line sets at most.
pub const TIMEOUT_COUNT: usize = 11;
/// The range 3proxy accepts for each `timeouts` value, in seconds.
pub const TIMEOUT_RANGE: core::ops::RangeInclusive<u32> = 1..=2_000_000;

/// Time limits of a service: 3proxy's `timeouts` (3proxy.md section 5.2). The first five
/// fields are the ones sessions use today; the others are kept for the services that will
/// (FTP, DNS, UDP, connect-back) and for the relay's linger. Defaults are 3proxy's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Whole SOCKS handshake, from accept to the request (3proxy: STRING_SHORT, 30 s).
    pub handshake: Duration,
    /// Outgoing connect to one address (3proxy: CONNECT, 15 s).
    pub connect: Duration,
    /// An established tunnel with no traffic in either direction is closed after this
    /// (3proxy: CONNECTION_LONG, 1800 s).
    pub idle: Duration,
    /// How long a SOCKS BIND waits for its incoming connection (3proxy: CONNECTION_SHORT,
    /// 180 s).
    pub bind_wait: Duration,
    /// Each parent hop's answer during chain negotiation (3proxy: CHAIN, 60 s).
    pub chain: Duration,
    /// Waiting for one byte of a short exchange (3proxy: BYTE_SHORT, 1 s).
    pub byte_short: Duration,
    /// Waiting for one byte of a longer exchange, a datagram send (3proxy: BYTE_LONG, 5 s).
    pub byte_long: Duration,
    /// Waiting for a whole line: an HTTP request line, an FTP reply, a UDP association's
    /// idle time (3proxy: STRING_LONG, 60 s).
    pub string_long: Duration,
    /// A short-lived transfer: HTTP bodies, FTP data (3proxy: CONNECTION_SHORT, 180 s).
    pub connection_short: Duration,
    /// Waiting for a DNS server's answer (3proxy: DNS, 15 s).
    pub dns: Duration,
    /// Waiting for a connection back, as an FTP active data connection (3proxy:
    /// CONNECTBACK, 5 s).
    pub connectback: Duration,
    /// Lingering after a half-close, and `SO_LINGER` of outgoing sockets (3proxy: LINGER,
    /// 5 s).
    pub linger: Duration,
}

impl Timeouts {
    /// The timeouts of a `timeouts` line's values in 3proxy's order (see
    /// [`DEFAULT_TIMEOUTS`]), in seconds. The configuration reader checks each against
    /// [`TIMEOUT_RANGE`] and fills missing ones with the defaults.
    ///
    /// ```
    /// use triproxy_policy::service::{Timeouts, DEFAULT_TIMEOUTS};
    /// assert_eq!(Timeouts::from_secs(DEFAULT_TIMEOUTS), Timeouts::default());
    /// let mut v = DEFAULT_TIMEOUTS;
    /// v[8] = 3; // CONNECT
    /// assert_eq!(Timeouts::from_secs(v).connect.as_secs(), 3);
    /// ```
    pub fn from_secs(values: [u32; TIMEOUT_COUNT]) -> Timeouts {
        let s = |i: usize| Duration::from_secs(u64::from(values.get(i).copied().unwrap_or(1)));
        Timeouts {
            byte_short: s(0),
            byte_long: s(1),
            handshake: s(2),
            string_long: s(3),
            connection_short: s(4),
            bind_wait: s(4),
            idle: s(5),
            dns: s(6),
            chain: s(7),
            connect: s(8),
            connectback: s(9),
            linger: s(10),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::from_secs(DEFAULT_TIMEOUTS)
    }
}

/// Everything a session of one service needs to decide, fixed when the service starts.
#[derive(Debug, Clone)]
pub struct ServicePolicy {
    /// The port the service listens on (logged as `%p`).
    pub listen_port: u16,
    /// The protocol clients speak.
    pub protocol: FrontProtocol,
    /// The `auth` chain in force at the service line.
    pub auth: AuthChain,
    /// The `allow`/`deny` entries in force at the service line, first match wins.
    pub acl: Arc<[Ace]>,
    /// The global `users` table.
    pub users: Arc<Users>,
    /// The `authcache` in force at the service line (`None`: nothing is cached, and
    /// `cache`/`cacheacl` always miss).
    pub authcache: Option<ServiceAuthCache>,
    /// The `-u` option.
    pub needuser: NeedUser,
    /// Time limits.
    pub timeouts: Timeouts,
    /// How established tunnels relay.
    pub relay: RelayMode,
    /// 3proxy's `force` (the default) or `noforce`: whether established tunnels are
    /// checked again against the auth chain and ACL of a reloaded configuration (the
    /// runtime then keeps each tunnel's [`crate::standing::Standing`]).
    pub force: bool,
    /// `logdump`: when a tunnel writes interim log records.
    pub logdump: crate::relay::LogDump,
    /// Source addresses for outgoing connections.
    pub external: SourceAddrs,
    /// The global `bandlimin`/`bandlimout` rules (shared by every service: one rule is one
    /// bucket for the whole process, as in 3proxy).
    pub bandlimits: Arc<BandLimits>,
    /// The global `countin`/`countout`/`countall` rules (one counter per rule for the
    /// whole process, as in 3proxy).
    pub quotas: Arc<Quotas>,
    /// The global `connlim`/`noconnlim` rules.
    pub connlimits: Arc<ConnLimits>,
    /// Draws for parent chains with weights (shared by every service of a process, seeded
    /// by the daemon).
    pub parent_random: Arc<ParentRandom>,
    /// What a forwarded HTTP request tells the origin about its client (`-a`, `-a1`,
    /// `-a2`).
    pub anonymity: Anonymity,
    /// Where names go (the system resolver, or the process's own resolver with its cache:
    /// `nserver`, `nsrecord`, `fakeresolve`); shared by every service.
    pub names: Arc<Names>,
    /// Which address families names resolve to, in which order (`-4`, `-6`, `-46`, `-64`;
    /// triproxy's default is `-46`, see [`crate::names`]).
    pub family: Family,
}

/// What the HTTP proxy adds to a forwarded request about its client, besides `Via` (which
/// RFC 9110 section 7.6.3 requires of every proxy and triproxy always sends, with the
/// pseudonym `triproxy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Anonymity {
    /// No option: `Forwarded: for="client:port";by="proxy:port"` (RFC 7239), as 3proxy.
    #[default]
    Forwarded,
    /// `-a`: nothing about the client.
    Hidden,
    /// `-a1`: `X-Forwarded-For` with a random IPv4 address, as 3proxy.
    RandomForwardedFor,
    /// `-a2`: `X-Forwarded-For` with the client's address.
    ForwardedFor,
}

impl ServicePolicy {
    /// A policy with 3proxy's defaults (`auth iponly`, empty ACL, no users) for `listen_port`.
    pub fn new(listen_port: u16) -> Self {
        ServicePolicy {
            listen_port,
            protocol: FrontProtocol::Socks,
            auth: AuthChain::default_chain(),
            acl: Arc::from(Vec::new()),
            users: Arc::new(Users::new()),
            authcache: None,
            needuser: NeedUser::default(),
            timeouts: Timeouts::default(),
            relay: RelayMode::default(),
            logdump: crate::relay::LogDump::default(),
            external: SourceAddrs::default(),
            bandlimits: Arc::new(BandLimits::new()),
            quotas: Arc::new(Quotas::new()),
            connlimits: Arc::new(ConnLimits::new()),
            parent_random: Arc::new(ParentRandom::new(0)),
            anonymity: Anonymity::default(),
            names: Arc::new(Names::system()),
            family: Family::V4ThenV6,
            force: true,
        }
    }
}
