//! One client of a UDP port mapper (3proxy `udppm [options] SRCPORT DSTHOST DSTPORT`):
//! whether it may use the mapping, what its datagrams cost, and its log line. Sans-IO: the
//! executor (`exec/udppm.rs`) owns the sockets and keeps one [`Mapping`] per client in a
//! [`crate::datagram::Associations`] table.
//!
//! A client's first datagram opens its mapping: the auth chain (no credentials: `iponly`
//! or `none`) and the ACL decide with operation UDPASSOC and the mapped destination, then
//! `connlim` and the traffic quotas, as for a SOCKS request. Its datagrams go to the
//! destination from a socket of its own; only the destination's answers come back (from
//! anyone else they are dropped). With `-s` (single packet, for request/reply services
//! such as DNS) the mapping ends with the first answer, code 0. Otherwise it ends when the
//! client has been quiet for the idle time (`timeouts` STRING_LONG), code 92, or when a
//! quota is spent, code 10. Bandwidth pipes police datagrams (one beyond the allowance
//! is dropped), as for UDP ASSOCIATE.

use crate::acl::{AclRequest, CivilTime, Logging, Operation};
use crate::auth::AuthDecision;
use crate::bandlim::{Direction, Pacer};
use crate::connlim::ConnPermit;
use crate::quota::Quota;
use crate::reason::Reason;
use crate::relay::RelayEnd;
use crate::service::ServicePolicy;
use crate::session::LogRecord;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use triproxy_wire::{LogCode, TargetAddr};

/// The service name 3proxy logs for `udppm`.
pub const SERVICE: &str = "UDPPM";

/// One client's mapping. See the module documentation.
#[derive(Debug)]
pub struct Mapping {
    policy: Arc<ServicePolicy>,
    client: SocketAddr,
    internal: SocketAddr,
    requested: TargetAddr,
    target: SocketAddr,
    started: Instant,
    single: bool,
    bytes_in: u64,
    bytes_out: u64,
    quota: Quota,
    /// The `connlim` slots held while the mapping lives.
    _permit: ConnPermit,
    to_client: Pacer,
    to_target: Pacer,
    end: Option<RelayEnd>,
    /// Whether the `allow` entry that granted the mapping was marked `nolog`.
    logging: Logging,
}

impl Mapping {
    /// Decides whether `client` (whose datagram reached the service on `internal`) may
    /// use the mapping to `requested`, resolved to `target`: the mapping, or the log line
    /// of the refusal.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        now: Instant,
        policy: &Arc<ServicePolicy>,
        client: SocketAddr,
        internal: SocketAddr,
        time: CivilTime,
        requested: &TargetAddr,
        target: SocketAddr,
        single: bool,
    ) -> Result<Mapping, Box<LogRecord>> {
        let mut mapping = Mapping {
            policy: Arc::clone(policy),
            client,
            internal,
            requested: requested.clone(),
            target,
            started: now,
            single,
            bytes_in: 0,
            bytes_out: 0,
            quota: Quota::default(),
            logging: Logging::Logged,
            _permit: ConnPermit::default(),
            to_client: Pacer::default(),
            to_target: Pacer::default(),
            end: None,
        };
        let request = AclRequest {
            user: None,
            client: client.ip(),
            target_host: requested.domain(),
            target_ip: Some(target.ip()),
            port: Some(target.port()),
            operation: Operation::UdpAssoc,
            time,
        };
        let decision = policy
            .auth
            .decide(&policy.users, None, None, &policy.acl, &request);
        match decision {
            AuthDecision::Refused(code) => {
                let reason = match code {
                    LogCode::ACL_DENIED => Reason::AclDenied,
                    LogCode::ACL_NO_MATCH => Reason::AclNoMatch,
                    other => Reason::Auth(other),
                };
                return Err(Box::new(mapping.record(now, code, Some(reason))));
            }
            AuthDecision::Granted { rule, .. } => {
                mapping.logging = rule
                    .and_then(|i| policy.acl.get(i))
                    .map_or(Logging::Logged, |ace| ace.logging());
            }
        }
        if !policy.connlimits.is_empty() || !policy.quotas.is_empty() {
            let permit = policy.connlimits.admit(now, &request);
            let quota = policy.quotas.select(&request);
            match (permit, quota) {
                (Ok(permit), Ok(quota)) => {
                    mapping._permit = permit;
                    mapping.quota = quota;
                }
                (Err(e), _) => {
                    let reason = Some(Reason::ConnLimit(e));
                    return Err(Box::new(mapping.record(
                        now,
                        LogCode::LIMIT_EXCEEDED,
                        reason,
                    )));
                }
                (_, Err(e)) => {
                    let reason = Some(Reason::Quota(e));
                    return Err(Box::new(mapping.record(
                        now,
                        LogCode::LIMIT_EXCEEDED,
                        reason,
                    )));
                }
            }
        }
        if !policy.bandlimits.is_empty() {
            mapping.to_client = policy.bandlimits.select(Direction::ToClient, &request);
            mapping.to_target = policy.bandlimits.select(Direction::ToTarget, &request);
        }
        Ok(mapping)
    }

    /// The log line of a client refused because the destination name did not resolve
    /// (code 100, as 3proxy).
    pub fn unresolved(
        now: Instant,
        policy: &Arc<ServicePolicy>,
        client: SocketAddr,
        internal: SocketAddr,
        requested: &TargetAddr,
        error: crate::session::ResolveError,
    ) -> LogRecord {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        let mapping = Mapping {
            policy: Arc::clone(policy),
            client,
            internal,
            requested: requested.clone(),
            target: unspecified,
            started: now,
            single: false,
            bytes_in: 0,
            bytes_out: 0,
            quota: Quota::default(),
            logging: Logging::Logged,
            _permit: ConnPermit::default(),
            to_client: Pacer::default(),
            to_target: Pacer::default(),
            end: None,
        };
        let mut record = mapping.record(now, LogCode::HOST_NOT_FOUND, Some(Reason::Resolve(error)));
        record.remote = None;
        record
    }

    /// Where the client's datagrams go.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// A datagram of `len` bytes from the client: whether to send it to the target.
    pub fn from_client(&mut self, now: Instant, len: usize) -> bool {
        if self.end.is_some() || !self.to_target.admit_datagram(now, len) {
            return false;
        }
        self.bytes_out = self.bytes_out.saturating_add(len as u64);
        if let Err(e) = self.quota.charge(Direction::ToTarget, len as u64) {
            self.end = Some(RelayEnd::Quota(e));
            return false;
        }
        true
    }

    /// A datagram of `len` bytes from `from` on the mapping's socket: whether to send it
    /// to the client (only the target's are).
    pub fn from_remote(&mut self, now: Instant, from: SocketAddr, len: usize) -> bool {
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        let target = SocketAddr::new(self.target.ip().to_canonical(), self.target.port());
        if self.end.is_some() || from != target || !self.to_client.admit_datagram(now, len) {
            return false;
        }
        self.bytes_in = self.bytes_in.saturating_add(len as u64);
        if let Err(e) = self.quota.charge(Direction::ToClient, len as u64) {
            self.end = Some(RelayEnd::Quota(e));
            return false;
        }
        if self.single {
            self.end = Some(RelayEnd::Clean);
        }
        true
    }

    /// Whether the mapping is over (`-s` answered, or a quota spent): the executor
    /// removes it and logs [`Mapping::finish`].
    pub fn is_done(&self) -> bool {
        self.end.is_some()
    }

    /// The log line of the mapping's end; `idle` when it ended by going quiet.
    pub fn finish(&self, now: Instant, idle: bool) -> LogRecord {
        let end = match self.end {
            Some(end) => end,
            None if idle => RelayEnd::IdleTimeout,
            None => RelayEnd::Clean,
        };
        let reason = (end != RelayEnd::Clean).then_some(Reason::Relay(end));
        self.record(now, end.log_code(), reason)
    }

    fn record(&self, now: Instant, code: LogCode, reason: Option<Reason>) -> LogRecord {
        LogRecord {
            service: SERVICE,
            listen_port: self.policy.listen_port,
            code,
            reason,
            user: None,
            client: self.client,
            internal: self.internal,
            remote: Some(self.target),
            external: None,
            requested: Some(self.requested.clone()),
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            hops: 0,
            text: format!("UDPMAP {}", self.requested),
            duration: now.saturating_duration_since(self.started),
            logging: self.logging,
        }
    }
}
