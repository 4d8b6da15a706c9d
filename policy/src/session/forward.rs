//! Plain HTTP forwarding in a session: the policy side of the inspected path.
//!
//! When an HTTP proxy client sends a request other than CONNECT, the session hands the
//! connection to the [`Exchange`] machine of `triproxy-http` and emits
//! [`Intent::Forward`]. From then on the executor moves bytes between the sockets and the
//! exchange's buffers through the `forward_*` methods here; every byte the client or an
//! origin sends passes through the machine, which passes it on, rewrites it (heads), holds
//! it (a partial head, a pipelined request) or asks for a connection (a new request). Each
//! request is decided as a CONNECT is (auth chain with its own credentials, ACL with the
//! request's operation, limits, parent chain, resolve, connect), and logged on its own line.
//!
//! Origin connections that may carry another request are kept in a small pool per client
//! connection ([`ORIGIN_POOL`] slots, [`ORIGIN_IDLE`] each): the session knows what each
//! slot holds and decides every move ([`OriginMove`]); the executor only holds the
//! sockets. A request for an origin with a pooled connection is checked by the ACL again
//! (against the address that connection reached) before the connection is reused.
//!
//! Bandwidth pipes and traffic quotas of the request apply to every byte read from either
//! side; a spent quota ends the connection with code 10.
//!
//! Under `force`, each granted request is what the connection stands on until the next
//! one ([`Session::forward_granted`] tells the executor when to keep a new
//! [`Session::standing`]); a reload that refuses it ends the connection
//! ([`Session::forward_revoked`]), logging the request in progress, if any, with the
//! refusal's code.

use super::{
    ConnPermit, Intent, LogCode, OriginMove, Phase, Quota, Reason, RelayPlan, Session, ORIGIN_POOL,
};
use crate::bandlim::Allowance;
use crate::front::{with_credentials, FrontEvent, FrontRequest, RequestKind};
use crate::parent::{ParentCredentials, ParentHop};
use crate::relay::Way;
use crate::service::Anonymity;
use core::time::Duration;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;
use triproxy_http::exchange::{
    Exchange, ExchangeConfig, ExchangeEvent, ExchangeFailure, ExchangeRequest, Exchanged,
    RequestForm,
};
use triproxy_http::{Credentials as HttpCredentials, Refusal};
use triproxy_wire::TargetAddr;

/// How long an idle origin connection is kept for another request of the same client.
/// Origins close idle keep-alive connections after 5 s (Apache) to 75 s (nginx); a pooled
/// connection the origin closed meanwhile is noticed before it is reused.
pub const ORIGIN_IDLE: Duration = Duration::from_secs(30);

/// This hop's name in `Via`.
pub const VIA: &str = "triproxy";

/// Where a forwarded request goes: straight to the origin, or in absolute form to an HTTP
/// parent proxy (with its `Proxy-Authorization`, if it takes one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Route {
    absolute: bool,
    parent_authorization: Option<Vec<u8>>,
}

/// An outgoing connection of a forwarding session: what it reached and for whom.
#[derive(Debug, Clone)]
struct Origin {
    /// The origin as requested (what a later request must ask for to reuse it).
    target: TargetAddr,
    /// The address the ACL allowed for it (checked again on reuse).
    allowed: SocketAddr,
    remote: Option<SocketAddr>,
    external: Option<SocketAddr>,
    /// The ACL entry that granted it (a connection through its parents is reused only
    /// for requests that entry grants).
    rule: Option<usize>,
    hops: u32,
    route: Route,
    /// Parked at (for [`ORIGIN_IDLE`]).
    since: Instant,
}

/// The forwarding state of a session.
#[derive(Debug)]
pub(super) struct Forwarding {
    exchange: Exchange,
    /// Idle origin connections, by the driver's slot number.
    pool: [Option<Origin>; ORIGIN_POOL],
    /// The connection the current request uses, once it has one.
    current: Option<Origin>,
    /// The current request's route, once decided.
    route: Route,
    /// The first address the ACL allowed for the current request.
    allowed: Option<SocketAddr>,
    /// Pacing and quota of the current request.
    plan: Option<RelayPlan>,
    /// How many requests were granted and routed so far (wrapping).
    granted: u32,
}

impl Forwarding {
    /// Answers the current request with `refusal` (and closes the connection).
    pub(super) fn refuse(&mut self, now: Instant, refusal: Refusal) {
        self.exchange.handle_refused(now, refusal);
    }
}

impl Session {
    /// Takes the connection into forwarding with the head the HTTP front read.
    ///
    /// Out of line, as is everything forwarding calls from the handshake's functions: its
    /// locals must not deepen the frames every SOCKS handshake goes through (the deepest
    /// stack page of a handshake is what an idle std tunnel keeps resident).
    #[inline(never)]
    pub(super) fn start_forwarding(&mut self, now: Instant) {
        let head = self
            .front
            .as_mut()
            .map(|f| f.take_head())
            .unwrap_or_default();
        self.front = None;
        let config = ExchangeConfig {
            via: VIA.to_owned(),
            head_timeout: self.policy.timeouts.handshake,
            idle_timeout: self.policy.timeouts.idle,
        };
        self.forward = Some(Box::new(Forwarding {
            exchange: Exchange::new(now, config, head),
            pool: Default::default(),
            current: None,
            route: Route::default(),
            allowed: None,
            plan: None,
            granted: 0,
        }));
        self.phase = Phase::Forwarding;
        self.intents.push_back(Intent::Forward);
        self.pump(now);
    }

    /// Acts on what the exchange reported, and ends the session once it is closed.
    fn pump(&mut self, now: Instant) {
        while let Some(event) = self.forward.as_mut().and_then(|f| f.exchange.poll_event()) {
            match event {
                ExchangeEvent::Request(r) => self.on_forward_request(now, r),
                ExchangeEvent::Done(done) => self.on_exchanged(now, done),
                ExchangeEvent::Failed(failure) => self.on_exchange_failed(now, failure),
            }
        }
        let closed = self
            .forward
            .as_ref()
            .is_some_and(|f| f.exchange.is_closed());
        if closed && self.phase != Phase::Done {
            self.phase = Phase::Done;
            self.permit = ConnPermit::default();
            self.intents.push_back(Intent::Close);
        }
    }

    /// A new request: decided afresh, on a pooled connection if one reaches its origin.
    fn on_forward_request(&mut self, now: Instant, r: Box<ExchangeRequest>) {
        self.started = now;
        let ExchangeRequest {
            method,
            target,
            text,
            credentials,
            ..
        } = *r;
        let request = Box::new(FrontRequest {
            kind: RequestKind::Forward,
            target,
            user_id: None,
            credentials: None,
            method: Some(method),
            text: Some(text),
        });
        match with_credentials(request, credentials) {
            FrontEvent::CredentialsTooLong(request) => {
                self.note_request(request);
                self.refuse(now, LogCode::USER_NOT_FOUND, Reason::CredentialsTooLong);
                return;
            }
            FrontEvent::Request(request) => self.note_request(request),
            FrontEvent::Credentials(_) => return,
        }
        if !self.try_reuse(now) {
            self.decide_fresh();
        }
    }

    /// Resolves or connects for the current request, as for a CONNECT.
    fn decide_fresh(&mut self) {
        let ip = match self.request.as_ref().map(|r| &r.target) {
            Some(TargetAddr::Ip(addr)) => Some(*addr),
            _ => None,
        };
        match ip {
            Some(addr) => {
                let now = self.started;
                self.authorize_and_connect(now, &[addr]);
            }
            None => self.resolve_target(),
        }
    }

    /// Reuses a pooled connection to the requested origin if the ACL (checked against the
    /// address that connection reached) still grants the request the same way: true if
    /// the request is taken care of (reused, refused, or connected afresh).
    fn try_reuse(&mut self, now: Instant) -> bool {
        self.expire_pool(now);
        let Some(target) = self.request.as_ref().map(|r| r.target.clone()) else {
            return false;
        };
        let Some(forward) = self.forward.as_mut() else {
            return false;
        };
        let found = forward
            .pool
            .iter()
            .position(|p| p.as_ref().is_some_and(|p| p.target == target));
        let Some(slot) = found else {
            return false;
        };
        let Some(pooled) = forward.pool.get_mut(slot).and_then(Option::take) else {
            return false;
        };
        let slot = slot as u8;
        let Some(addrs) = self.authorize(now, &[pooled.allowed]) else {
            // Refused: the pooled connection is not for this client any more.
            self.intents
                .push_back(Intent::Origin(OriginMove::Drop(slot)));
            return true;
        };
        let same_route = match (&self.chain, pooled.hops) {
            (None, 0) => true,
            (Some(_), hops) if hops > 0 => self.rule == pooled.rule,
            _ => false,
        };
        if !same_route {
            self.intents
                .push_back(Intent::Origin(OriginMove::Drop(slot)));
            self.connect_allowed(addrs);
            return true;
        }
        self.chain = None;
        self.hops = pooled.hops;
        self.remote = pooled.remote;
        self.external = pooled.external;
        if let Some(forward) = self.forward.as_mut() {
            forward.route = pooled.route.clone();
            forward.current = Some(pooled);
        }
        self.phase = Phase::Reusing;
        self.intents
            .push_back(Intent::Origin(OriginMove::Reuse(slot)));
        true
    }

    /// The answer to [`OriginMove::Reuse`]: whether the pooled connection is still open.
    /// A closed one is dropped and the request connects afresh.
    pub fn handle_origin_reused(&mut self, now: Instant, alive: bool) {
        if self.phase != Phase::Reusing {
            return;
        }
        if alive {
            self.route_request(now);
            return;
        }
        self.intents
            .push_back(Intent::Origin(OriginMove::DropCurrent));
        if let Some(forward) = self.forward.as_mut() {
            forward.current = None;
            forward.route = Route::default();
        }
        self.remote = None;
        self.external = None;
        self.hops = 0;
        self.phase = Phase::Forwarding;
        self.decide_fresh();
    }

    /// Closes pooled connections idle for [`ORIGIN_IDLE`].
    fn expire_pool(&mut self, now: Instant) {
        let Some(forward) = self.forward.as_mut() else {
            return;
        };
        for (slot, entry) in forward.pool.iter_mut().enumerate() {
            if entry.as_ref().is_some_and(|o| o.since + ORIGIN_IDLE <= now) {
                *entry = None;
                self.intents
                    .push_back(Intent::Origin(OriginMove::Drop(slot as u8)));
            }
        }
    }

    /// Notes the first address the ACL allowed for a forwarded request.
    pub(super) fn note_allowed(&mut self, first: SocketAddr) {
        if let Some(forward) = self.forward.as_mut() {
            forward.allowed = Some(first);
        }
    }

    /// The chain of the request ends at an HTTP parent: the request goes to it in absolute
    /// form, with the parent's credentials (the client's own for USER `*`).
    #[inline(never)]
    pub(super) fn forward_through_http_parent(&mut self, hop: &ParentHop) {
        let authorization = match &hop.credentials {
            ParentCredentials::None => None,
            ParentCredentials::Fixed { user, password } => {
                HttpCredentials::new(user.as_bytes(), password.as_bytes()).proxy_authorization()
            }
            ParentCredentials::Client => self.credentials.as_ref().and_then(|c| {
                HttpCredentials::new(&c.username[..], &c.password[..]).proxy_authorization()
            }),
        };
        if let Some(forward) = self.forward.as_mut() {
            forward.route = Route {
                absolute: true,
                parent_authorization: authorization,
            };
        }
    }

    /// The request's connection is ready (connected, through its chain, or reused): the
    /// exchange writes the request on it.
    #[inline(never)]
    pub(super) fn route_request(&mut self, now: Instant) {
        let plan = self.relay_plan();
        let fields = self.forward_fields();
        let target = self.request.as_ref().map(|r| r.target.clone());
        let (remote, external, rule, hops) = (self.remote, self.external, self.rule, self.hops);
        let Some(forward) = self.forward.as_mut() else {
            return;
        };
        if forward.current.is_none() {
            if let (Some(target), Some(allowed)) = (target, forward.allowed.or(remote)) {
                forward.current = Some(Origin {
                    target,
                    allowed,
                    remote,
                    external,
                    rule,
                    hops,
                    route: forward.route.clone(),
                    since: now,
                });
            }
        }
        let form = if forward.route.absolute {
            RequestForm::Absolute
        } else {
            RequestForm::Origin
        };
        forward.plan = Some(plan);
        forward.granted = forward.granted.wrapping_add(1);
        self.phase = Phase::Forwarding;
        forward.exchange.handle_route(now, form, &fields);
        self.pump(now);
    }

    /// The fields added to a forwarded request: what [`Anonymity`] says about the client,
    /// and an HTTP parent's `Proxy-Authorization`.
    fn forward_fields(&self) -> Vec<u8> {
        let mut out = String::new();
        match self.policy.anonymity {
            // RFC 7239: a node with a port is a quoted string.
            Anonymity::Forwarded => {
                let _ = write!(
                    out,
                    "Forwarded: for=\"{}\";by=\"{}\"\r\n",
                    self.client, self.internal
                );
            }
            Anonymity::Hidden => {}
            Anonymity::RandomForwardedFor => {
                let random = Ipv4Addr::from(self.policy.parent_random.next() as u32);
                let _ = write!(out, "X-Forwarded-For: {random}\r\n");
            }
            Anonymity::ForwardedFor => {
                let _ = write!(out, "X-Forwarded-For: {}\r\n", self.client.ip());
            }
        }
        let mut out = out.into_bytes();
        if let Some(auth) = self
            .forward
            .as_ref()
            .and_then(|f| f.route.parent_authorization.as_deref())
        {
            out.extend_from_slice(auth);
        }
        out
    }

    /// A request answered in full: its log line, and its origin connection kept or closed.
    fn on_exchanged(&mut self, now: Instant, done: Exchanged) {
        let Some(forward) = self.forward.as_mut() else {
            return;
        };
        let current = forward.current.take();
        match current {
            Some(mut origin) if done.origin_reusable => {
                origin.since = now;
                // A free slot, else the one idle longest.
                let slot = forward
                    .pool
                    .iter()
                    .position(Option::is_none)
                    .or_else(|| {
                        (0..ORIGIN_POOL).min_by_key(|&i| {
                            forward
                                .pool
                                .get(i)
                                .and_then(|p| p.as_ref().map(|o| o.since))
                        })
                    })
                    .unwrap_or(0);
                if let Some(entry) = forward.pool.get_mut(slot) {
                    *entry = Some(origin);
                }
                self.intents
                    .push_back(Intent::Origin(OriginMove::Park(slot as u8)));
            }
            _ => self
                .intents
                .push_back(Intent::Origin(OriginMove::DropCurrent)),
        }
        self.finish(now, LogCode::SUCCESS, None, done.to_client, done.to_origin);
    }

    /// The exchange failed: its log line (unless 3proxy does not log it), and the origin
    /// connection closed.
    fn on_exchange_failed(&mut self, now: Instant, failure: ExchangeFailure) {
        if failure.routed {
            if let Some(forward) = self.forward.as_mut() {
                forward.current = None;
            }
            self.intents
                .push_back(Intent::Origin(OriginMove::DropCurrent));
        }
        if failure.error.is_logged() {
            self.finish(
                now,
                failure.error.log_code(),
                Some(Reason::Exchange(failure.error)),
                failure.to_client,
                failure.to_origin,
            );
        } else {
            self.end_request(now);
        }
    }

    /// The current request is over (logged): the connection waits for the next one.
    pub(super) fn end_request(&mut self, _now: Instant) {
        self.phase = Phase::Forwarding;
        self.request = None;
        self.remote = None;
        self.external = None;
        self.hops = 0;
        self.chain = None;
        self.acl_user = None;
        self.rule = None;
        self.user = None;
        self.credentials = None;
        self.permit = ConnPermit::default();
        self.quota = Quota::default();
        if let Some(forward) = self.forward.as_mut() {
            forward.route = Route::default();
            forward.allowed = None;
            forward.plan = None;
        }
    }

    /// The deadline of the forwarding phase: the exchange's, or a pooled connection's
    /// expiry.
    pub(super) fn forward_timeout(&self) -> Option<Instant> {
        let forward = self.forward.as_ref()?;
        let pooled = forward
            .pool
            .iter()
            .flatten()
            .map(|o| o.since + ORIGIN_IDLE)
            .min();
        match (forward.exchange.poll_timeout(), pooled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Time passed in the forwarding phase.
    pub(super) fn forward_time(&mut self, now: Instant) {
        if let Some(forward) = self.forward.as_mut() {
            forward.exchange.handle_timeout(now);
        }
        self.expire_pool(now);
        self.pump(now);
    }

    /// Charges `n` bytes read by `way` to the request's pipes and quota; a spent quota
    /// ends the connection (code 10).
    fn charge(&mut self, way: Way, now: Instant, n: usize) {
        let Some(plan) = self.forward.as_ref().and_then(|f| f.plan.as_ref()) else {
            return;
        };
        let pacer = match way {
            Way::Up => &plan.to_target,
            Way::Down => &plan.to_client,
        };
        if !pacer.is_empty() {
            pacer.charge(now, n);
        }
        if plan.quota.is_empty() {
            return;
        }
        if let Err(exceeded) = plan.quota.charge(way.direction(), n as u64) {
            if let Some(forward) = self.forward.as_mut() {
                forward.exchange.abort();
                forward.current = None;
            }
            self.intents
                .push_back(Intent::Origin(OriginMove::DropCurrent));
            self.finish(
                now,
                LogCode::LIMIT_EXCEEDED,
                Some(Reason::Quota(exceeded)),
                0,
                0,
            );
        }
    }

    /// How many bytes `way` may read now (its bandwidth pipes), or until when it waits.
    pub fn forward_allowance(&self, way: Way, now: Instant) -> Allowance {
        let plan = self.forward.as_ref().and_then(|f| f.plan.as_ref());
        let pacer = plan.map(|p| match way {
            Way::Up => &p.to_target,
            Way::Down => &p.to_client,
        });
        match pacer {
            Some(p) if !p.is_empty() => p.allowance(now, usize::MAX),
            _ => Allowance::Bytes(usize::MAX),
        }
    }

    /// Client bytes that came with the first head (see `Session::handle_input`).
    #[inline(never)]
    pub(super) fn forward_push_input(&mut self, now: Instant, bytes: &[u8]) {
        self.charge(Way::Up, now, bytes.len());
        if let Some(forward) = self.forward.as_mut() {
            forward.exchange.push_client_input(now, bytes);
        }
        self.pump(now);
    }

    /// Room to read client bytes into (None: read nothing from the client now).
    pub fn forward_client_space(&mut self) -> Option<&mut [u8]> {
        self.forward.as_mut()?.exchange.client_space()
    }

    /// `n` bytes were read from the client into [`Session::forward_client_space`] (0: its
    /// end of stream).
    pub fn forward_client_read(&mut self, now: Instant, n: usize) {
        self.charge(Way::Up, now, n);
        if let Some(forward) = self.forward.as_mut() {
            forward.exchange.handle_client_read(now, n);
        }
        self.pump(now);
    }

    /// How many requests of this forwarding connection were granted and sent on their
    /// way (wrapping): when it changes, [`Session::standing`] describes the new request.
    pub fn forward_granted(&self) -> u32 {
        self.forward.as_ref().map_or(0, |f| f.granted)
    }

    /// A reload under `force` refused what the connection stands on (its last granted
    /// request), with `code`: the connection ends, and a request in progress is logged
    /// with that code. Between requests nothing is logged.
    pub fn forward_revoked(&mut self, now: Instant, code: LogCode) {
        if let Some(forward) = self.forward.as_mut() {
            forward.exchange.abort();
            forward.current = None;
        }
        self.intents
            .push_back(Intent::Origin(OriginMove::DropCurrent));
        if self.request.is_some() {
            let end = crate::relay::RelayEnd::Revoked(code);
            self.finish(now, code, Some(Reason::Relay(end)), 0, 0);
        }
        self.pump(now);
    }

    /// Reading from or writing to the client failed.
    pub fn forward_client_failed(&mut self, now: Instant) {
        if let Some(forward) = self.forward.as_mut() {
            forward.exchange.handle_client_failed(now);
        }
        self.pump(now);
    }

    /// Room to read bytes of the current origin connection into.
    pub fn forward_origin_space(&mut self) -> Option<&mut [u8]> {
        self.forward.as_mut()?.exchange.origin_space()
    }

    /// `n` bytes were read from the origin connection (0: its end of stream).
    pub fn forward_origin_read(&mut self, now: Instant, n: usize) {
        self.charge(Way::Down, now, n);
        if let Some(forward) = self.forward.as_mut() {
            forward.exchange.handle_origin_read(now, n);
        }
        self.pump(now);
    }

    /// Reading from or writing to the origin connection failed.
    pub fn forward_origin_failed(&mut self, now: Instant) {
        if let Some(forward) = self.forward.as_mut() {
            forward.exchange.handle_origin_eof(now);
        }
        self.pump(now);
    }

    /// Bytes to write to the client now.
    pub fn forward_to_client(&self) -> &[u8] {
        self.forward
            .as_ref()
            .map_or(&[][..], |f| f.exchange.to_client())
    }

    /// `n` bytes of [`Session::forward_to_client`] were written.
    pub fn forward_client_written(&mut self, now: Instant, n: usize) {
        if let Some(forward) = self.forward.as_mut() {
            forward.exchange.handle_client_written(now, n);
        }
        self.pump(now);
    }

    /// Bytes to write to the origin connection now.
    pub fn forward_to_origin(&self) -> &[u8] {
        self.forward
            .as_ref()
            .map_or(&[][..], |f| f.exchange.to_origin())
    }

    /// `n` bytes of [`Session::forward_to_origin`] were written.
    pub fn forward_origin_written(&mut self, now: Instant, n: usize) {
        if let Some(forward) = self.forward.as_mut() {
            forward.exchange.handle_origin_written(now, n);
        }
        self.pump(now);
    }

    /// True once when the client connection must be shut down for writing (the
    /// connection is closing and everything for the client is written).
    pub fn forward_take_client_shutdown(&mut self) -> bool {
        self.forward
            .as_mut()
            .is_some_and(|f| f.exchange.take_client_shutdown())
    }

    /// Whether the current request has its origin connection in use (the executor reads
    /// and writes it).
    pub fn forward_origin_active(&self) -> bool {
        self.phase == Phase::Forwarding
            && self
                .forward
                .as_ref()
                .is_some_and(|f| f.exchange.is_exchanging())
    }
}
