//! Deciding a request: the auth chain and the ACL for every candidate address, the
//! `connlim` and quota limits, the parent chain, and what the session asks for next
//! (resolve, connect, listen for a BIND, open a UDP association, relay).
//!
//! The rules themselves live in their modules (`auth`, `acl`, `connlim`, `quota`,
//! `bandlim`, `parent`); this is the order 3proxy applies them in for one request. How a
//! refused request ends is in `record`.

use super::record::refusal_reason;
use super::{BindError, Intent, Phase, Session, MAX_CONNECT_ADDRS};
use crate::acl::{AclRequest, Operation};
use crate::auth::{AuthDecision, AuthMethod, AuthOutcome};
use crate::bandlim::{Direction, Pacer};
use crate::chain::Chain;
use crate::front::{FrontEvent, FrontRequest, RequestKind};
use crate::parent::{ParentHop, ParentKind};
use crate::reason::Reason;
use crate::relay::RelayPlan;
use crate::service::RelayMode;
use crate::udp::{AssociationPlan, STRANGER_CODE};
use arrayvec::ArrayVec;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use triproxy_socks::server::AuthVerdict;
use triproxy_wire::{LogCode, TargetAddr};

impl Session {
    /// Out of line, as is [`Session::authorize_and_connect`]: `handle_input` calls the
    /// parser from its own frame, so every local of the decision code inlined there would
    /// push the parser's frames deeper, and the deepest stack page of a handshake is what
    /// an idle std tunnel keeps resident.
    #[inline(never)]
    pub(super) fn on_event(&mut self, now: Instant, event: FrontEvent) {
        match event {
            FrontEvent::Credentials(c) => {
                self.user = Some(String::from_utf8_lossy(&c.username).into_owned());
                let outcome = self.policy.auth.authenticate_cached(
                    &self.policy.users,
                    self.policy.authcache.as_ref().map(|a| a.at(now)),
                    self.client.ip(),
                    Some(&c.username),
                    Some(&c.password),
                );
                match outcome {
                    AuthOutcome::Authenticated { .. } => {
                        self.credentials = Some(c);
                        if let Some(f) = self.front.as_mut() {
                            f.handle_auth(AuthVerdict::Accepted);
                        }
                    }
                    AuthOutcome::Failed(code) => {
                        // RFC 1929: a failure status, then the server closes the connection
                        // (3proxy answers success here and fails the request later).
                        if let Some(f) = self.front.as_mut() {
                            f.handle_auth(AuthVerdict::Rejected);
                        }
                        self.finish(now, code, Some(refusal_reason(code)), 0, 0);
                    }
                }
            }
            FrontEvent::Request(request) => self.on_request(now, request),
            FrontEvent::CredentialsTooLong(request) => {
                self.note_request(request);
                self.refuse(now, LogCode::USER_NOT_FOUND, Reason::CredentialsTooLong);
            }
        }
    }

    /// Keeps what the client asked for (for the decision and the log).
    pub(super) fn note_request(&mut self, mut request: Box<FrontRequest>) {
        if let Some(id) = &request.user_id {
            self.user = Some(String::from_utf8_lossy(id).into_owned());
        }
        if let Some(c) = request.credentials.take() {
            self.user = Some(String::from_utf8_lossy(&c.username).into_owned());
            self.credentials = Some(c);
        }
        self.version = self.front.as_ref().and_then(|f| f.version());
        // (A forwarding connection's later requests come without the front: the name
        // stays the one its first request set.)
        if let Some(f) = self.front.as_ref() {
            self.service = Some(f.service_name(&self.policy.protocol));
        }
        self.request = Some(request);
    }

    /// Requests are boxed all the way from the front to `self.request`, and a name is
    /// resolved out of line: this frame sits under every ACL decision of a handshake.
    fn on_request(&mut self, now: Instant, request: Box<FrontRequest>) {
        let kind = request.kind;
        let ip = match request.target {
            TargetAddr::Ip(addr) => Some(addr),
            TargetAddr::Domain(..) => None,
        };
        self.note_request(request);
        if kind == RequestKind::Forward {
            self.start_forwarding(now);
            return;
        }
        if kind == RequestKind::UdpAssociate {
            self.authorize_association(now, ip);
            return;
        }
        match ip {
            Some(addr) => self.authorize_and_connect(now, &[addr]),
            None => self.resolve_target(),
        }
    }

    /// UDP ASSOCIATE: the auth chain and the ACL with what the request names (usually
    /// `0.0.0.0:0`, which no address field of an ACL entry refuses), then the relay socket.
    /// Each datagram is checked again with its real destination.
    #[inline(never)]
    fn authorize_association(&mut self, now: Instant, ip: Option<SocketAddr>) {
        let named = ip.unwrap_or(SocketAddr::new(IpAddr::from([0, 0, 0, 0]), 0));
        if self.authorize(now, &[named]).is_none() {
            return;
        }
        self.phase = Phase::Associating;
        self.intents.push_back(Intent::Associate {
            ip: self.internal.ip(),
        });
    }

    /// The answer to [`Intent::Associate`]: the relay socket listens on `addr`. The reply
    /// names it (RFC 1928 section 7: where the client sends its datagrams), and the relay
    /// starts.
    pub fn handle_associated(&mut self, now: Instant, addr: SocketAddr) {
        if self.phase != Phase::Associating {
            return;
        }
        if let Some(f) = self.front.as_mut() {
            f.handle_granted(addr);
        }
        self.external = Some(addr);
        self.phase = Phase::Relaying;
        let (to_client, to_target) = self.pacers(None);
        let plan = AssociationPlan {
            policy: Arc::clone(&self.policy),
            client_ip: self.client.ip(),
            client_port: self.request.as_ref().and_then(|r| match r.target {
                TargetAddr::Ip(a) if !a.ip().is_unspecified() || a.port() != 0 => Some(a.port()),
                _ => None,
            }),
            acl_user: self.acl_user.clone(),
            check_acl: !self.policy.auth.is_none(),
            time: self.time,
            quota: self.quota.clone(),
            to_client,
            to_target,
            notice: self.record(now, STRANGER_CODE, None, 0, 0),
        };
        self.intents
            .push_back(Intent::RelayDatagrams(Box::new(plan)));
    }

    /// The relay socket of a UDP association could not be opened (code 12).
    pub fn handle_associate_failed(&mut self, now: Instant) {
        if self.phase != Phase::Associating {
            return;
        }
        self.refuse(now, LogCode::BIND_FAILED, Reason::Bind(BindError::Listen));
    }

    /// Asks for the requested name to be resolved.
    #[inline(never)]
    pub(super) fn resolve_target(&mut self) {
        if let Some(TargetAddr::Domain(host, port)) = self.request.as_ref().map(|r| &r.target) {
            let intent = Intent::Resolve {
                host: host.clone(),
                port: *port,
            };
            self.phase = Phase::Resolving;
            self.intents.push_back(intent);
        }
    }

    /// Runs the auth chain and ACL for each candidate address and connects to the allowed
    /// ones. Checking every address (not just the first) means a name that resolves to both
    /// an allowed and a denied address cannot be used to reach the denied one.
    #[inline(never)]
    pub(super) fn authorize_and_connect(&mut self, now: Instant, candidates: &[SocketAddr]) {
        let Some(addrs) = self.authorize(now, candidates) else {
            return;
        };
        self.connect_allowed(addrs);
    }

    /// The auth chain, the ACL and the limits for each candidate address: the allowed
    /// ones (the parent chain of the first one's ACL entry drawn), or None once the
    /// request is refused.
    pub(super) fn authorize(
        &mut self,
        now: Instant,
        candidates: &[SocketAddr],
    ) -> Option<ArrayVec<SocketAddr, MAX_CONNECT_ADDRS>> {
        let (user, password) = match &self.credentials {
            Some(c) => (Some(&c.username[..]), Some(&c.password[..])),
            None => (self.user.as_deref().map(str::as_bytes), None),
        };
        let host = self.request.as_ref().and_then(|r| r.target.domain());
        let mut addrs = ArrayVec::<SocketAddr, MAX_CONNECT_ADDRS>::new();
        let mut first_refusal = None;
        let mut first_rule = None;
        let mut cached_user = None;
        for addr in candidates.iter().take(MAX_CONNECT_ADDRS) {
            let request = AclRequest {
                user: None,
                client: self.client.ip(),
                target_host: host,
                target_ip: Some(addr.ip()),
                port: Some(addr.port()),
                operation: self.operation(),
                time: self.time,
            };
            let decision = self.policy.auth.decide_cached(
                &self.policy.users,
                self.policy.authcache.as_ref().map(|a| a.at(now)),
                user,
                password,
                &self.policy.acl,
                &request,
            );
            match decision {
                AuthDecision::Granted {
                    acl_user,
                    rule,
                    method,
                } => {
                    if addrs.is_empty() {
                        if matches!(method, AuthMethod::Cache | AuthMethod::CacheAcl) {
                            // As 3proxy: a cache hit logs as the cached user (with an
                            // `ip` key, whatever name the client sent).
                            cached_user = Some(acl_user.clone());
                        }
                        self.acl_user = acl_user;
                        self.verified = match method {
                            AuthMethod::Strong => true,
                            // A hit that had to present the cached password: that password
                            // passed `strong` against this same table (each configuration
                            // starts with an empty cache).
                            AuthMethod::Cache | AuthMethod::CacheAcl => self
                                .policy
                                .authcache
                                .as_ref()
                                .is_some_and(|c| c.settings.keys.password),
                            _ => false,
                        };
                        first_rule = rule;
                    }
                    addrs.push(*addr);
                }
                AuthDecision::Refused(code) => {
                    first_refusal.get_or_insert(code);
                }
            }
        }
        self.rule = first_rule;
        if let Some(user) = cached_user {
            self.user = user;
        }
        if let Some(first) = addrs.first().copied() {
            self.note_allowed(first);
            self.plan_chain(first_rule, first);
        }
        // The decision is made: the password is not kept for the life of the tunnel (a
        // chain whose parent takes the client's credentials keeps them until it is built).
        self.credentials = None;
        if addrs.is_empty() {
            let code = first_refusal.unwrap_or(LogCode::ACL_NO_MATCH);
            self.refuse(now, code, refusal_reason(code));
            return None;
        }
        if let Some(first) = addrs.first().copied() {
            if let Err(reason) = self.admit_limits(now, first) {
                self.refuse(now, LogCode::LIMIT_EXCEEDED, reason);
                return None;
            }
        }
        Some(addrs)
    }

    /// Connects to the allowed addresses (or the chain's first hop), or listens for a
    /// BIND. Out of line: `authorize`'s frame (under every ACL decision) stays as small.
    #[inline(never)]
    pub(super) fn connect_allowed(&mut self, mut addrs: ArrayVec<SocketAddr, MAX_CONNECT_ADDRS>) {
        if self.request.as_ref().map(|r| r.kind) == Some(RequestKind::Bind) {
            let expected = addrs.first().copied().unwrap_or(self.internal);
            self.expected_peer = Some(expected.ip());
            self.phase = Phase::Binding;
            self.intents.push_back(Intent::Bind {
                ip: self.bind_ip(expected.ip()),
            });
            return;
        }
        if let Some(parent) = self.chain.as_ref().and_then(|c| c.first_addr()) {
            // Through a chain: the first hop is the only address to connect to.
            addrs.clear();
            addrs.push(parent);
        }
        self.phase = Phase::Connecting;
        self.intents.push_back(Intent::Connect {
            addrs,
            timeout: self.policy.timeouts.connect,
            source: self.policy.external,
        });
    }

    /// The granted request against `connlim` and the traffic quotas (3proxy checks both
    /// between the ACL and the connect): takes the connection's limit slots and its quota,
    /// or says which limit refuses it (code 10).
    #[inline(never)]
    fn admit_limits(&mut self, now: Instant, target: SocketAddr) -> Result<(), Reason> {
        let policy = Arc::clone(&self.policy);
        if policy.connlimits.is_empty() && policy.quotas.is_empty() {
            return Ok(());
        }
        let request = AclRequest {
            user: self.acl_user.as_deref(),
            client: self.client.ip(),
            target_host: self.request.as_ref().and_then(|r| r.target.domain()),
            target_ip: Some(target.ip()),
            port: Some(target.port()),
            operation: self.operation(),
            time: self.time,
        };
        let permit = policy
            .connlimits
            .admit(now, &request)
            .map_err(Reason::ConnLimit)?;
        let quota = policy.quotas.select(&request).map_err(Reason::Quota)?;
        self.permit = permit;
        self.quota = quota;
        Ok(())
    }

    /// Draws the parent chain of the ACL entry that granted the request, if it has one.
    /// Only the first allowed address is asked for through a chain (the parent connects).
    ///
    /// Only checks whether there is a chain to draw: building one (out of line, about
    /// 2.7 KiB of stack with the chain under construction) must not sit in the frames of
    /// every handshake without parents, whose deepest page is what an idle std tunnel
    /// keeps resident.
    fn plan_chain(&mut self, rule: Option<usize>, first: SocketAddr) {
        let has_parents = rule
            .and_then(|i| self.policy.acl.get(i))
            .is_some_and(|ace| !ace.parents().is_empty());
        if has_parents {
            self.draw_chain(rule, first);
        }
    }

    /// Draws the chain of [`Session::plan_chain`].
    #[inline(never)]
    fn draw_chain(&mut self, rule: Option<usize>, first: SocketAddr) {
        let policy = Arc::clone(&self.policy);
        let Some(ace) = rule.and_then(|i| policy.acl.get(i)) else {
            return;
        };
        let operation = self.operation();
        let tunnel = matches!(operation, Operation::Connect | Operation::HttpConnect);
        let forwarding = self.forward.is_some();
        if ace.parents().is_empty() || !(tunnel || forwarding) {
            return;
        }
        let as_connect: ParentHop;
        let mut hops = ace.parents().choose(self.policy.parent_random.next());
        let Some(last) = hops.last().copied() else {
            return;
        };
        // An `http` parent at the end takes requests in absolute form: a forwarded request
        // is written to it so; a CONNECT is asked of it as CONNECT (3proxy's `http` parent
        // understands both, and the raw tunnel bytes would make no sense to it).
        if last.kind == ParentKind::Http {
            if forwarding {
                self.forward_through_http_parent(last);
            } else if operation == Operation::HttpConnect {
                as_connect = ParentHop {
                    kind: ParentKind::Connect { names: true },
                    ..last.clone()
                };
                if let Some(slot) = hops.last_mut() {
                    *slot = &as_connect;
                }
            }
        }
        let chain = Chain::new(
            &hops,
            self.request.as_ref().map(|r| &r.target),
            first,
            self.credentials.take(),
            self.policy.timeouts.chain,
        );
        self.hops = u32::try_from(chain.len()).unwrap_or(u32::MAX);
        self.chain = Some(Box::new(chain));
    }

    /// The relay of an established tunnel.
    pub(super) fn relay_intent(&self) -> Intent {
        Intent::Relay(self.relay_plan())
    }

    /// How the bytes of an established tunnel (or of one forwarded request) move, with the
    /// bandwidth pipes that match it (chosen once, like 3proxy, with the user the ACL saw
    /// and the address actually reached) and the connection's quota.
    pub(super) fn relay_plan(&self) -> RelayPlan {
        let (to_client, to_target) = self.pacers(self.remote);
        let mode = if to_client.is_empty() && to_target.is_empty() {
            self.policy.relay
        } else {
            RelayMode::Buffered
        };
        RelayPlan {
            idle_timeout: self.policy.timeouts.idle,
            mode,
            to_client,
            to_target,
            quota: self.quota.clone(),
        }
    }

    /// The bandwidth pipes of this connection (chosen once, like 3proxy, with the user the
    /// ACL saw and the address actually reached, if any): toward the client, toward the
    /// target.
    fn pacers(&self, remote: Option<SocketAddr>) -> (Pacer, Pacer) {
        if self.policy.bandlimits.is_empty() {
            return (Pacer::default(), Pacer::default());
        }
        let request = AclRequest {
            user: self.acl_user.as_deref(),
            client: self.client.ip(),
            target_host: self.request.as_ref().and_then(|r| r.target.domain()),
            target_ip: remote.map(|a| a.ip()),
            port: remote.map(|a| a.port()),
            operation: self.operation(),
            time: self.time,
        };
        (
            self.policy.bandlimits.select(Direction::ToClient, &request),
            self.policy.bandlimits.select(Direction::ToTarget, &request),
        )
    }

    /// The ACL operation of the request: an HTTP proxy's CONNECT is `HTTPS`
    /// (`HTTP_CONNECT`), a SOCKS one is `CONNECT`.
    pub(super) fn operation(&self) -> Operation {
        match self.request.as_ref().map(|r| r.kind) {
            Some(RequestKind::Bind) => Operation::Bind,
            Some(RequestKind::UdpAssociate) => Operation::UdpAssoc,
            Some(RequestKind::Forward) => {
                match self.request.as_ref().and_then(|r| r.method.as_deref()) {
                    Some("GET") => Operation::HttpGet,
                    Some("POST") => Operation::HttpPost,
                    Some("PUT") => Operation::HttpPut,
                    Some("HEAD") => Operation::HttpHead,
                    _ => Operation::HttpOther,
                }
            }
            // An HTTP proxy's CONNECT, also when `auto` chose the HTTP front.
            _ if self.service == Some("PROXY") => Operation::HttpConnect,
            _ => Operation::Connect,
        }
    }

    /// Where a BIND listens: the configured external address of the expected peer's family,
    /// else the address the client reached us on, else any address of that family.
    fn bind_ip(&self, expected: IpAddr) -> IpAddr {
        let probe = SocketAddr::new(expected, 0);
        if let Some(ip) = self.policy.external.for_target(&probe) {
            return ip;
        }
        match (expected, self.internal.ip()) {
            (IpAddr::V4(_), ip @ IpAddr::V4(_)) | (IpAddr::V6(_), ip @ IpAddr::V6(_)) => ip,
            (IpAddr::V4(_), _) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            (IpAddr::V6(_), _) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        }
    }
}
