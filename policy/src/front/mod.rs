//! The client-facing protocol machine of a session: SOCKS 4/4a/5, the HTTP proxy, or the
//! TCP port mapper.
//!
//! [`Front`] puts the two server machines ([`triproxy_socks::server::Server`] and
//! [`triproxy_http::ProxyServer`]), and the port mapper's fixed request, behind the few
//! operations the session engine needs: feed
//! input, report what the client asked for, answer it (granted, refused), end on a deadline
//! or end of stream. The session decides; the front only speaks the protocol, so one
//! session engine serves every service and the runtimes never see a protocol.
//!
//! It is not a parser: each machine parses its own protocol. It maps their events and
//! errors to one vocabulary ([`FrontEvent`], [`FrontFailure`]) and a refusal's 3proxy log
//! code to the protocol's answer (a SOCKS5 REP, an HTTP status).

mod tls;
mod upstream;

pub(crate) use tls::tls_failure;

use crate::reason::{ParentCause, Reason};
use crate::service::{FrontProtocol, MailOptions, NeedUser, ServicePolicy, TlsOptions};
use crate::session::{BindError, ConnectError};
use std::net::SocketAddr;
use std::time::Instant;
use triproxy_http::{
    ProxyEvent, ProxyServer, ProxyServerConfig, ProxyState, Refusal, RequestError,
};
use triproxy_socks::server::{
    AuthVerdict, Command, Credentials, MethodPolicy, Server, ServerConfig, ServerEvent, State,
    Version,
};
use triproxy_socks::v5::ReplyCode;
use triproxy_socks::ClientError;
use triproxy_wire::{LogCode, TargetAddr, Transmit};

/// What kind of relay a client asks for, whatever its protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// An outgoing TCP connection (SOCKS CONNECT, HTTP CONNECT).
    Connect,
    /// One incoming TCP connection (SOCKS BIND).
    Bind,
    /// UDP datagrams (SOCKS5 UDP ASSOCIATE).
    UdpAssociate,
    /// One plain HTTP request forwarded to its origin (any method but CONNECT).
    Forward,
}

impl RequestKind {
    /// The word 3proxy logs for it (`%T`).
    pub fn log_text(self) -> &'static str {
        match self {
            RequestKind::Connect => "CONNECT",
            RequestKind::Bind => "BIND",
            RequestKind::UdpAssociate => "UDPMAP",
            RequestKind::Forward => "FORWARD",
        }
    }
}

/// What the client asked for, whatever the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrontRequest {
    /// What kind of relay.
    pub kind: RequestKind,
    /// The destination as sent.
    pub target: TargetAddr,
    /// The user name to log when no credentials are checked: a SOCKS4 user id, or the
    /// name of HTTP credentials too long to check ([`FrontEvent::CredentialsTooLong`]).
    pub user_id: Option<Vec<u8>>,
    /// HTTP `Proxy-Authorization: Basic` credentials, if any (SOCKS5 credentials come
    /// earlier, as [`FrontEvent::Credentials`]).
    pub credentials: Option<Box<Credentials>>,
    /// The HTTP method of a forwarded request ([`RequestKind::Forward`]).
    pub method: Option<String>,
    /// What 3proxy logs as `%T` when it is not `KIND host:port`: a forwarded request's
    /// `METHOD URI`.
    pub text: Option<String>,
}

/// Something the session must decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrontEvent {
    /// SOCKS5 RFC 1929 credentials: answer at once with [`Front::handle_auth`].
    Credentials(Box<Credentials>),
    /// The request; answer with a grant or a refusal.
    Request(Box<FrontRequest>),
    /// HTTP credentials that cannot be checked (longer than 255 bytes, the limit triproxy
    /// keeps for every user name and password); the request is refused.
    CredentialsTooLong(Box<FrontRequest>),
}

/// What the front's upstream negotiation needs next (see [`Front::has_upstream`]).
#[derive(Debug)]
pub(crate) enum UpstreamStep {
    /// Write these bytes to the target.
    Send(Vec<u8>),
    /// Read from the target until this moment.
    Read(Instant),
    /// Done: the relay may start (with what the front queued for the client first).
    Established,
    /// Failed: the client gets the protocol's error answer (queued), then the connection
    /// closes and is logged with this code.
    Failed(FrontFailure),
}

/// A failure of the protocol exchange itself (malformed input, deadline, end of stream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrontFailure {
    pub code: LogCode,
    pub reason: Reason,
}

impl FrontFailure {
    fn socks(e: triproxy_socks::Error) -> Self {
        FrontFailure {
            code: e.log_code(),
            reason: Reason::Socks(e),
        }
    }
}

/// The protocol machine of one client connection. Boxed: it is dropped once the tunnel is
/// up, and an established tunnel should keep only a few hundred bytes.
#[derive(Debug)]
pub(crate) enum Front {
    Socks(Box<Server>),
    Http(Box<ProxyServer>),
    /// A mail proxy, which logs in upstream itself ([`upstream::LoginFront`]).
    Login(Box<upstream::Chunked>),
    /// The TLS SNI proxy.
    Tls(Box<tls::TlsFront>),
    /// `auto` before the first byte.
    Auto(Box<tls::Auto>),
    /// The port mapper (3proxy `tcppm`): no handshake. Its one request, to the configured
    /// target, is ready from the start and taken by the first [`Front::poll_event`]; it
    /// reads nothing (client bytes stay unread until the relay carries them to the
    /// target), writes nothing, and a refusal just closes the connection.
    PortMap(Option<Box<FrontRequest>>),
}

impl Front {
    /// The machine for `policy`'s protocol, started at `now`. The fronts other than SOCKS,
    /// the HTTP proxy and the port mapper are built out of line: built in this frame, their
    /// larger machines would deepen every SOCKS handshake's stack (the deepest page is what
    /// an idle std tunnel keeps).
    pub fn new(now: Instant, policy: &ServicePolicy, client: SocketAddr) -> Self {
        match &policy.protocol {
            FrontProtocol::Socks => Front::Socks(Box::new(Server::new(now, socks_config(policy)))),
            FrontProtocol::Http => {
                Front::Http(Box::new(ProxyServer::new(now, http_config(policy))))
            }
            FrontProtocol::PortMap(target) => Front::PortMap(Some(port_map_request(target))),
            FrontProtocol::Pop3(options) => Front::new_pop3(now, options, policy),
            FrontProtocol::Imap(options) => Front::new_imap(now, options, policy),
            FrontProtocol::Smtp(options) => Front::new_smtp(now, options, policy, client),
            FrontProtocol::Tls(options) => Front::new_tls(now, options, policy),
            FrontProtocol::Auto(options) => Front::new_auto(now, options, policy),
        }
    }

    #[inline(never)]
    fn new_pop3(now: Instant, options: &MailOptions, policy: &ServicePolicy) -> Self {
        let config = triproxy_pop3::Config {
            default_target: options.default_target.clone(),
            starttls: options.starttls,
            delimiter: options.delimiter,
            client_timeout: policy.timeouts.handshake,
            server_timeout: policy.timeouts.string_long,
            ..triproxy_pop3::Config::default()
        };
        login(triproxy_pop3::Server::new(now, config), policy)
    }

    #[inline(never)]
    fn new_imap(now: Instant, options: &MailOptions, policy: &ServicePolicy) -> Self {
        let config = triproxy_imap::Config {
            default_target: options.default_target.clone(),
            starttls: options.starttls,
            delimiter: options.delimiter,
            client_timeout: policy.timeouts.handshake,
            server_timeout: policy.timeouts.string_long,
            ..triproxy_imap::Config::default()
        };
        login(triproxy_imap::Server::new(now, config), policy)
    }

    #[inline(never)]
    fn new_smtp(
        now: Instant,
        options: &MailOptions,
        policy: &ServicePolicy,
        client: SocketAddr,
    ) -> Self {
        let config = triproxy_smtp::Config {
            default_target: options.default_target.clone(),
            starttls: options.starttls,
            delimiter: options.delimiter,
            command_timeout: policy.timeouts.handshake,
            reply_timeout: policy.timeouts.string_long,
            ..triproxy_smtp::Config::default()
        };
        login(triproxy_smtp::Proxy::new(now, config, client.ip()), policy)
    }

    #[inline(never)]
    fn new_tls(now: Instant, options: &TlsOptions, policy: &ServicePolicy) -> Self {
        Front::Tls(Box::new(tls::TlsFront::new(
            now,
            tls_config(options, policy),
        )))
    }

    #[inline(never)]
    fn new_auto(now: Instant, options: &TlsOptions, policy: &ServicePolicy) -> Self {
        Front::Auto(Box::new(tls::Auto {
            socks: socks_config(policy),
            http: http_config(policy),
            tls: tls_config(options, policy),
            deadline: now.checked_add(policy.timeouts.handshake),
        }))
    }

    /// Each protocol's input runs in its own out-of-line function: inlined here, the
    /// larger frame of one parser would deepen the stack of the other, and the deepest
    /// stack page a handshake touches is what an idle std tunnel keeps resident.
    pub fn handle_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure> {
        match self {
            Front::Socks(s) => socks_input(s, now, input),
            Front::Http(h) => http_input(h, now, input),
            // Nothing to parse: every byte is the client's data for the target.
            Front::PortMap(_) => Ok(0),
            Front::Login(l) => l.handle_input(now, input),
            Front::Tls(t) => t.handle_input(now, input),
            Front::Auto(_) => self.auto_input(now, input),
        }
    }

    /// `auto`: the first byte chooses the front, which then reads the input. Out of line,
    /// as each protocol's input is.
    #[inline(never)]
    fn auto_input(&mut self, now: Instant, input: &[u8]) -> Result<usize, FrontFailure> {
        let chosen = match (&*self, input.first()) {
            (Front::Auto(a), Some(&first)) => a.choose(now, first),
            _ => return Ok(0),
        };
        *self = chosen;
        self.handle_input(now, input)
    }

    /// Out of line: the machine's event and its translation would otherwise both sit in
    /// the frame of `Session::handle_input`, above every parser and ACL frame.
    #[inline(never)]
    pub fn poll_event(&mut self) -> Option<FrontEvent> {
        match self {
            Front::Socks(s) => s.poll_event().map(|e| match e {
                ServerEvent::Credentials(c) => FrontEvent::Credentials(Box::new(c)),
                ServerEvent::Request(r) => FrontEvent::Request(Box::new(FrontRequest {
                    kind: match r.command {
                        Command::Connect => RequestKind::Connect,
                        Command::Bind => RequestKind::Bind,
                        Command::UdpAssociate => RequestKind::UdpAssociate,
                    },
                    target: r.target,
                    user_id: r.user_id.map(|id| id.to_vec()),
                    credentials: None,
                    method: None,
                    text: None,
                })),
            }),
            Front::Http(h) => h.poll_event().map(|ProxyEvent::Request(r)| {
                let request = Box::new(FrontRequest {
                    kind: if r.connect {
                        RequestKind::Connect
                    } else {
                        RequestKind::Forward
                    },
                    target: r.target,
                    user_id: None,
                    credentials: None,
                    method: (!r.connect).then_some(r.method),
                    text: None,
                });
                with_credentials(request, r.credentials)
            }),
            Front::PortMap(request) => request.take().map(FrontEvent::Request),
            Front::Login(l) => l.poll_request().map(FrontEvent::Request),
            Front::Tls(t) => t.poll_request().map(FrontEvent::Request),
            Front::Auto(_) => None,
        }
    }

    /// Whether the machine still reads the handshake (more input may bring an event).
    pub fn wants_input(&self) -> bool {
        match self {
            Front::Socks(s) => matches!(
                s.state(),
                State::Greeting | State::Authenticating | State::AwaitingRequest
            ),
            Front::Http(h) => h.state() == ProxyState::ReadingHead,
            Front::PortMap(_) => false,
            Front::Login(l) => l.wants_input(),
            Front::Tls(t) => t.wants_input(),
            Front::Auto(_) => true,
        }
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        match self {
            Front::Socks(s) => s.poll_transmit(),
            Front::Http(h) => h.poll_transmit(),
            Front::PortMap(_) => None,
            Front::Login(l) => l.poll_transmit(),
            Front::Tls(t) => t.poll_transmit(),
            Front::Auto(_) => None,
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Front::Socks(s) => s.poll_timeout(),
            Front::Http(h) => h.poll_timeout(),
            Front::PortMap(_) => None,
            Front::Login(l) => l.poll_timeout(),
            Front::Tls(t) => t.poll_timeout(),
            Front::Auto(a) => a.deadline,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<FrontFailure> {
        match self {
            Front::Socks(s) => s.handle_timeout(now).map(FrontFailure::socks),
            Front::Http(h) => h.handle_timeout(now).map(|e| http_failure(&e)),
            Front::PortMap(_) => None,
            Front::Login(l) => l.handle_timeout(now),
            Front::Tls(t) => t.handle_timeout(now),
            Front::Auto(a) => a.timeout(now),
        }
    }

    /// The client closed before the handshake was over. `None` while a decision is
    /// pending (the session gives its own reason).
    pub fn handle_eof(&mut self) -> Option<FrontFailure> {
        match self {
            Front::Socks(s) => s.handle_eof().map(FrontFailure::socks),
            Front::Http(h) => h.handle_eof().map(|e| http_failure(&e)),
            Front::PortMap(_) => None,
            Front::Login(l) => l.machine.handle_eof(),
            Front::Tls(t) => t.handle_eof(),
            Front::Auto(_) => None,
        }
    }

    /// The answer to [`FrontEvent::Credentials`] (SOCKS5 only).
    pub fn handle_auth(&mut self, verdict: AuthVerdict) {
        if let Front::Socks(s) = self {
            s.handle_auth(verdict);
        }
    }

    /// The request is granted; `bound` is the address a SOCKS reply reports.
    pub fn handle_granted(&mut self, bound: SocketAddr) {
        match self {
            Front::Socks(s) => s.handle_granted(bound),
            Front::Http(h) => h.handle_granted(),
            Front::PortMap(_) | Front::Login(_) | Front::Tls(_) | Front::Auto(_) => {}
        }
    }

    /// The second BIND reply (SOCKS only).
    pub fn handle_bind_peer(&mut self, peer: SocketAddr) {
        if let Front::Socks(s) = self {
            s.handle_bind_peer(peer);
        }
    }

    /// The request is refused with `code` for `reason`: each protocol answers in its own
    /// terms (SOCKS the REP or CD that fits the reason, HTTP the status 3proxy gives the
    /// code; the port mapper has no words: the connection just closes, as in 3proxy).
    pub fn handle_refused(&mut self, code: LogCode, reason: &Reason) {
        match self {
            Front::Socks(s) => s.handle_refused(socks5_reply(reason)),
            Front::Http(h) => h.handle_refused(http_refusal(code)),
            Front::PortMap(_) => {}
            Front::Login(l) => l.machine.handle_refused(code),
            Front::Tls(t) => t.handle_refused(code),
            Front::Auto(_) => {}
        }
    }

    /// The head of a forwarded request (HTTP front; empty otherwise).
    pub fn take_head(&mut self) -> Vec<u8> {
        match self {
            Front::Http(h) => h.take_head(),
            Front::Socks(_)
            | Front::PortMap(_)
            | Front::Login(_)
            | Front::Tls(_)
            | Front::Auto(_) => Vec::new(),
        }
    }

    /// The most client bytes the machine may need to see at once before it consumes any
    /// (a TLS ClientHello is peeked whole); the executor's handshake buffer grows to it.
    pub fn max_input(&self) -> usize {
        match self {
            Front::Socks(_) | Front::Http(_) | Front::PortMap(_) => 0,
            Front::Login(l) => l.max_input(),
            Front::Tls(t) => t.max_input(),
            // The first byte decides; the chosen front then says.
            Front::Auto(_) => 0,
        }
    }

    /// Whether the connection to the target needs a negotiation of the front's own
    /// before the relay (a mail proxy logs in upstream, `tlspr -c2` checks the
    /// ServerHello). Tunnels and the port mapper have none.
    pub fn has_upstream(&self) -> bool {
        match self {
            Front::Socks(_) | Front::Http(_) | Front::PortMap(_) | Front::Auto(_) => false,
            Front::Login(_) => true,
            Front::Tls(t) => t.has_upstream(),
        }
    }

    /// The connection to the target is open: the upstream negotiation starts.
    pub fn handle_connected(&mut self, now: Instant) {
        match self {
            Front::Socks(_) | Front::Http(_) | Front::PortMap(_) | Front::Auto(_) => {}
            Front::Login(l) => l.machine.handle_connected(now),
            Front::Tls(t) => t.handle_connected(now),
        }
    }

    /// The next step of the upstream negotiation.
    pub fn poll_upstream(&mut self) -> UpstreamStep {
        match self {
            Front::Socks(_) | Front::Http(_) | Front::PortMap(_) | Front::Auto(_) => {
                UpstreamStep::Established
            }
            Front::Login(l) => l.machine.poll_upstream(),
            Front::Tls(t) => t.poll_upstream(),
        }
    }

    /// Bytes from the target during the upstream negotiation: how many were consumed (the
    /// rest is the target's first data for the client once established).
    pub fn handle_upstream_input(
        &mut self,
        now: Instant,
        input: &[u8],
    ) -> Result<usize, FrontFailure> {
        match self {
            Front::Socks(_) | Front::Http(_) | Front::PortMap(_) | Front::Auto(_) => Ok(0),
            Front::Login(l) => l.machine.handle_upstream_input(now, input),
            Front::Tls(t) => t.handle_upstream_input(now, input),
        }
    }

    /// The target closed (or failed) during the upstream negotiation.
    pub fn handle_upstream_eof(&mut self) -> FrontFailure {
        match self {
            Front::Socks(_) | Front::Http(_) | Front::PortMap(_) | Front::Auto(_) => FrontFailure {
                code: LogCode::CONNECT_FAILED,
                reason: Reason::ClientClosed,
            },
            Front::Login(l) => l.machine.handle_upstream_eof(),
            Front::Tls(t) => t.handle_upstream_eof(),
        }
    }

    /// 3proxy's service name for the log, from the machine that serves the client (so
    /// that `auto` logs the protocol its first byte chose); `protocol` names the mail
    /// proxies.
    pub fn service_name(&self, protocol: &FrontProtocol) -> &'static str {
        match self {
            Front::Socks(s) => service_name(&FrontProtocol::Socks, s.version()),
            Front::Http(_) => "PROXY",
            Front::Tls(_) => "TLSPR",
            Front::Auto(_) => "AUTO",
            Front::PortMap(_) | Front::Login(_) => service_name(protocol, None),
        }
    }

    /// The SOCKS version, once known.
    pub fn version(&self) -> Option<Version> {
        match self {
            Front::Socks(s) => s.version(),
            Front::Http(_)
            | Front::PortMap(_)
            | Front::Login(_)
            | Front::Tls(_)
            | Front::Auto(_) => None,
        }
    }
}

/// The SOCKS machine's configuration for `policy`.
fn socks_config(policy: &ServicePolicy) -> ServerConfig {
    let methods = match policy.needuser {
        NeedUser::Never => MethodPolicy::NoAuth,
        NeedUser::Required => MethodPolicy::Password,
        NeedUser::IfOffered if policy.auth.needs_password() => MethodPolicy::Password,
        NeedUser::IfOffered => MethodPolicy::NoAuthOrPassword,
    };
    ServerConfig {
        methods,
        allow_v4: true,
        allow_v5: true,
        handshake_timeout: policy.timeouts.handshake,
    }
}

/// The HTTP proxy machine's configuration for `policy`.
fn http_config(policy: &ServicePolicy) -> ProxyServerConfig {
    ProxyServerConfig {
        head_timeout: policy.timeouts.handshake,
    }
}

/// The TLS machine's configuration for `options`.
fn tls_config(options: &TlsOptions, policy: &ServicePolicy) -> triproxy_tls::ProxyConfig {
    let check = triproxy_tls::CheckLevel::from_number(u32::from(options.check))
        .unwrap_or(triproxy_tls::CheckLevel::RequireClientHello);
    triproxy_tls::ProxyConfig {
        port: options.port,
        check,
        default_target: options.default_target.clone(),
        hello_timeout: policy.timeouts.handshake,
    }
}

/// A login front for `machine`.
fn login(machine: impl upstream::LoginFront + 'static, policy: &ServicePolicy) -> Front {
    let chunked = upstream::Chunked::new(Box::new(machine), policy.timeouts.handshake);
    Front::Login(Box::new(chunked))
}

/// User name and password as the SOCKS machine keeps them (255 bytes each at most; longer
/// ones are not kept: the request then goes on without credentials and the auth chain
/// refuses it if it needs them).
pub(crate) fn socks_credentials(user: &[u8], password: &[u8]) -> Option<Box<Credentials>> {
    let mut c = Box::new(Credentials {
        username: Default::default(),
        password: Default::default(),
    });
    let fits = c.username.try_extend_from_slice(user).is_ok()
        && c.password.try_extend_from_slice(password).is_ok();
    fits.then_some(c)
}

/// `request` with HTTP Basic `credentials`: a request event, or
/// [`FrontEvent::CredentialsTooLong`] when they exceed the 255 bytes triproxy keeps for a
/// user name or password.
pub(crate) fn with_credentials(
    mut request: Box<FrontRequest>,
    credentials: Option<triproxy_http::Credentials>,
) -> FrontEvent {
    let Some(c) = credentials else {
        return FrontEvent::Request(request);
    };
    let Some(checked) = socks_credentials(&c.username, &c.password) else {
        request.user_id = Some(c.username);
        return FrontEvent::CredentialsTooLong(request);
    };
    request.credentials = Some(checked);
    FrontEvent::Request(request)
}

#[inline(never)]
fn socks_input(s: &mut Server, now: Instant, input: &[u8]) -> Result<usize, FrontFailure> {
    s.handle_input(now, input).map_err(FrontFailure::socks)
}

#[inline(never)]
fn http_input(h: &mut ProxyServer, now: Instant, input: &[u8]) -> Result<usize, FrontFailure> {
    h.handle_input(now, input).map_err(|e| http_failure(&e))
}

/// The port mapper's request: a CONNECT to its target, logged (`%T`) as 3proxy's tcppm
/// logs it, the target host as configured (an IPv6 address without brackets), no port.
fn port_map_request(target: &TargetAddr) -> Box<FrontRequest> {
    let host = match target {
        TargetAddr::Ip(addr) => addr.ip().to_string(),
        TargetAddr::Domain(name, _) => name.to_string(),
    };
    Box::new(FrontRequest {
        kind: RequestKind::Connect,
        target: target.clone(),
        user_id: None,
        credentials: None,
        method: None,
        text: Some(host),
    })
}

/// The 3proxy service name of a log record (`%N`): `PROXY` for the HTTP proxy, `TCPPM` for
/// the port mapper; for SOCKS the version the client spoke, `SOCKS` before it is known.
pub(crate) fn service_name(protocol: &FrontProtocol, version: Option<Version>) -> &'static str {
    match (protocol, version) {
        (FrontProtocol::Http, _) => "PROXY",
        (FrontProtocol::PortMap(_), _) => "TCPPM",
        (FrontProtocol::Pop3(_), _) => "POP3P",
        (FrontProtocol::Smtp(_), _) => "SMTPP",
        (FrontProtocol::Imap(_), _) => "IMAPP",
        (FrontProtocol::Tls(_), _) => "TLSPR",
        (FrontProtocol::Auto(_), _) => "AUTO",
        (FrontProtocol::Socks, Some(Version::V5)) => "SOCK5",
        (FrontProtocol::Socks, Some(Version::V4)) => "SOCK4",
        (FrontProtocol::Socks, Some(Version::V4a)) => "SOC45",
        (FrontProtocol::Socks, None) => "SOCKS",
    }
}

fn http_failure(e: &RequestError) -> FrontFailure {
    FrontFailure {
        code: e.log_code(),
        reason: Reason::Http(*e),
    }
}

/// The SOCKS5 REP for a refusal (the SOCKS machine answers a SOCKS4 client's refusal with
/// its one "rejected" code): the target's own failures keep their meaning, a parent's
/// SOCKS5 refusal passes through, deadlines are "TTL expired", policy refusals are "not
/// allowed", what is not implemented is "command not supported".
pub(crate) fn socks5_reply(reason: &Reason) -> ReplyCode {
    match reason {
        Reason::Resolve(_) => ReplyCode::HostUnreachable,
        Reason::Connect { error, .. } => match error {
            ConnectError::Refused => ReplyCode::ConnectionRefused,
            ConnectError::NetworkUnreachable => ReplyCode::NetworkUnreachable,
            ConnectError::HostUnreachable | ConnectError::TimedOut => ReplyCode::HostUnreachable,
            ConnectError::NoSocket | ConnectError::Other => ReplyCode::GeneralFailure,
        },
        Reason::Bind(BindError::Timeout) => ReplyCode::TtlExpired,
        Reason::Bind(_) => ReplyCode::GeneralFailure,
        Reason::Parent(p) => match &p.cause {
            ParentCause::Socks(ClientError::V5Refused { reply }) => match reply {
                ReplyCode::Succeeded | ReplyCode::Other(_) => ReplyCode::GeneralFailure,
                r => *r,
            },
            ParentCause::Socks(ClientError::Timeout { .. })
            | ParentCause::Http(triproxy_http::ConnectError::Timeout) => ReplyCode::TtlExpired,
            ParentCause::Socks(ClientError::TargetNotSupported { .. }) => {
                ReplyCode::AddressTypeNotSupported
            }
            ParentCause::NoClientCredentials => ReplyCode::NotAllowed,
            _ => ReplyCode::GeneralFailure,
        },
        Reason::Auth(_)
        | Reason::AclDenied
        | Reason::AclNoMatch
        | Reason::CredentialsTooLong
        | Reason::Quota(_)
        | Reason::ConnLimit(_)
        | Reason::BindPeerMismatch { .. } => ReplyCode::NotAllowed,
        Reason::Socks(_)
        | Reason::Http(_)
        | Reason::Relay(_)
        | Reason::Exchange(_)
        | Reason::UdpStranger { .. }
        | Reason::Dns(_)
        | Reason::Pop3(_)
        | Reason::Smtp(_)
        | Reason::Imap(_)
        | Reason::Tls(_)
        | Reason::NoFirstByte
        | Reason::ClientClosed => ReplyCode::GeneralFailure,
    }
}

/// The HTTP answer to a refusal with 3proxy log code `code`, as 3proxy's HTTP proxy maps
/// them: 1 (denied) is 403; 2-9 (authentication) is 407, which asks the client for
/// credentials; 10 (limits) is 503; 11-19 and 100 (the target cannot be reached) and
/// 30-79 (a parent failed) are 502; 999 (not implemented) is 501; anything else is 500.
pub(crate) fn http_refusal(code: LogCode) -> Refusal {
    match code.get() {
        1 => Refusal::Forbidden,
        2..=9 => Refusal::AuthRequired,
        10 => Refusal::Unavailable,
        11..=19 | 30..=79 | 100 => Refusal::BadGateway,
        999 => Refusal::NotImplemented,
        _ => Refusal::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_statuses_follow_3proxy() {
        for (code, status) in [
            (1, 403),
            (3, 407),
            (4, 407),
            (6, 407),
            (10, 503),
            (13, 502),
            (100, 502),
            (33, 502),
            (65, 502),
            (999, 501),
            (20, 500),
        ] {
            assert_eq!(http_refusal(LogCode(code)).status(), status, "code {code}");
        }
    }
}
