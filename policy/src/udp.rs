//! One SOCKS5 UDP association (RFC 1928 section 7): which datagrams pass, where they go,
//! what they cost and when the association ends. Sans-IO: the executor (`exec/udp.rs`)
//! owns the sockets and asks this machine about every datagram.
//!
//! Two sockets serve an association: the relay socket the client sends to (bound on the
//! address the client reached, so the reply's BND is one it can reach) and an outgoing
//! socket per address family (bound to `external` if set). The machine decides:
//!
//! - **From the client's side.** Only the client's IP may use the relay socket, and only
//!   from one port: the one its request named, or else the first one it sends from. A
//!   datagram from anyone else is a stranger's: dropped, and reported at most once per
//!   [`STRANGER_NOTICE_EVERY`]. The SOCKS UDP header is parsed; `FRAG != 0` drops that
//!   datagram only (no reassembly; 3proxy ends the whole association instead). The ACL is
//!   checked for every datagram with operation UDPASSOC and the user the request was
//!   granted to; a name target is resolved first (by the executor) and checked with both
//!   the name and the address.
//! - **From the outgoing side.** Only addresses the client sent to (the last
//!   [`MAX_PEERS`]) may answer; the answer goes back to the client with a header naming
//!   its source. Anything else is a stranger's.
//! - **Costs.** Every datagram passed is counted (`%I`/`%O` of the log line) and charged
//!   to the association's traffic quota (code 10 ends it). A bandwidth pipe polices
//!   datagrams rather than delaying them: a datagram beyond its allowance is dropped.
//! - **End.** The client's control connection closing ends it cleanly (code 0); no
//!   datagram for the idle timeout (`timeouts` CONNECTION_LONG, as 3proxy) ends it with
//!   code 92.

use crate::acl::{check, AclRequest, AclVerdict, CivilTime, Operation};
use crate::bandlim::{Direction, Pacer};
use crate::quota::Quota;
use crate::relay::{RelayEnd, RelayReport};
use core::time::Duration;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use triproxy_socks::v5::{encode_udp, parse_udp, UdpHeader};
use triproxy_wire::{DomainName, LogCode, TargetAddr};

use crate::reason::Reason;
use crate::service::ServicePolicy;
use crate::session::LogRecord;

/// Destinations remembered per association: their answers are let through.
pub const MAX_PEERS: usize = 64;
/// Least time between two reports of a stranger's datagrams on one association.
pub const STRANGER_NOTICE_EVERY: Duration = Duration::from_secs(60);
/// Largest datagram relayed (the largest UDP payload over IPv4 is 65,507 bytes).
pub const MAX_DATAGRAM: usize = 65_535;
/// Room for the longest SOCKS UDP header (a 255-byte name).
pub const MAX_UDP_HEADER: usize = 4 + 1 + 255 + 2;

/// The log code of a stranger's-datagram notice: not a 3proxy code (3proxy drops such
/// datagrams silently); triproxy's own in 3proxy's UDP range, listed in the README.
pub const STRANGER_CODE: LogCode = LogCode(489);

/// Why a datagram was not relayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// Not from the client (or from another port of it), or from an address the client
    /// never sent to. `notice` is true at most once per [`STRANGER_NOTICE_EVERY`].
    Stranger {
        /// The sender.
        from: SocketAddr,
        /// Whether to log it now.
        notice: bool,
    },
    /// The SOCKS UDP header is malformed (3proxy code 483).
    Malformed(triproxy_socks::Error),
    /// `FRAG != 0`: fragments are not reassembled.
    Fragment,
    /// The ACL refuses this destination (code 1 or 3).
    Denied(LogCode),
    /// A bandwidth pipe has no allowance left for it.
    OverRate,
    /// The association has ended (quota reached, or it was ended).
    Ended,
}

/// What to do with a datagram from the client's side.
#[derive(Debug, PartialEq, Eq)]
pub enum Outbound<'a> {
    /// Send `payload` to `to` from the outgoing socket of its family.
    Send {
        /// The destination.
        to: SocketAddr,
        /// The bytes after the SOCKS header.
        payload: &'a [u8],
    },
    /// Resolve `host` and pass the addresses to [`Association::resolved`], then send
    /// `payload` where it says.
    Resolve {
        /// The name (boxed: a name is 256 bytes, most datagrams carry an address).
        host: Box<DomainName>,
        /// The port to attach.
        port: u16,
        /// The bytes after the SOCKS header.
        payload: &'a [u8],
    },
    /// Drop it.
    Drop(Dropped),
}

/// One association. See the module documentation.
#[derive(Debug)]
pub struct Association {
    policy: Arc<ServicePolicy>,
    client_ip: IpAddr,
    client_port: Option<u16>,
    acl_user: Option<String>,
    check_acl: bool,
    time: CivilTime,
    idle: Duration,
    last: Instant,
    peers: VecDeque<SocketAddr>,
    bytes_in: u64,
    bytes_out: u64,
    quota: Quota,
    to_client: Pacer,
    to_target: Pacer,
    last_notice: Option<Instant>,
    notice: LogRecord,
    started: Instant,
    end: Option<RelayEnd>,
}

/// What the session hands to the executor for an association.
#[derive(Debug, Clone)]
pub struct AssociationPlan {
    pub(crate) policy: Arc<ServicePolicy>,
    pub(crate) client_ip: IpAddr,
    pub(crate) client_port: Option<u16>,
    pub(crate) acl_user: Option<String>,
    pub(crate) check_acl: bool,
    pub(crate) time: CivilTime,
    pub(crate) quota: Quota,
    pub(crate) to_client: Pacer,
    pub(crate) to_target: Pacer,
    /// The log record a stranger's-datagram notice starts from (the session's record of
    /// the request, with [`STRANGER_CODE`]).
    pub(crate) notice: LogRecord,
}

impl PartialEq for AssociationPlan {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.policy, &other.policy)
            && self.client_ip == other.client_ip
            && self.client_port == other.client_port
            && self.acl_user == other.acl_user
            && self.check_acl == other.check_acl
            && self.time == other.time
            && self.quota == other.quota
            && self.to_client == other.to_client
            && self.to_target == other.to_target
            && self.notice == other.notice
    }
}

impl Eq for AssociationPlan {}

impl Association {
    /// Starts the association of `plan` at `now`.
    pub fn new(now: Instant, plan: AssociationPlan) -> Self {
        Association {
            idle: plan.policy.timeouts.idle,
            policy: plan.policy,
            client_ip: plan.client_ip.to_canonical(),
            client_port: plan.client_port.filter(|p| *p != 0),
            acl_user: plan.acl_user,
            check_acl: plan.check_acl,
            time: plan.time,
            last: now,
            peers: VecDeque::new(),
            bytes_in: 0,
            bytes_out: 0,
            quota: plan.quota,
            to_client: plan.to_client,
            to_target: plan.to_target,
            last_notice: None,
            notice: plan.notice,
            started: now,
            end: None,
        }
    }

    /// The log record to write for `dropped`, if it is a stranger's datagram whose notice
    /// is due (at most once per [`STRANGER_NOTICE_EVERY`]): the association's record with
    /// [`STRANGER_CODE`], the stranger as `%R:%r`, and the association's age so far.
    pub fn stranger_record(&self, now: Instant, dropped: &Dropped) -> Option<LogRecord> {
        let Dropped::Stranger { from, notice: true } = dropped else {
            return None;
        };
        let mut record = self.notice.clone();
        record.remote = Some(*from);
        record.reason = Some(Reason::UdpStranger { from: *from });
        record.duration += now.saturating_duration_since(self.started);
        Some(record)
    }

    /// The client's datagram address, once known.
    pub fn client(&self) -> Option<SocketAddr> {
        self.client_port.map(|p| SocketAddr::new(self.client_ip, p))
    }

    /// The policy of the service (resolver, family order, sources).
    pub fn policy(&self) -> &Arc<ServicePolicy> {
        &self.policy
    }

    /// A datagram arrived on the relay socket from `from`.
    pub fn from_client<'a>(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &'a [u8],
    ) -> Outbound<'a> {
        if self.end.is_some() {
            return Outbound::Drop(Dropped::Ended);
        }
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        if from.ip() != self.client_ip || self.client_port.is_some_and(|p| p != from.port()) {
            return Outbound::Drop(self.stranger(now, from));
        }
        self.client_port = Some(from.port());
        self.last = now;
        let (header, payload) = match parse_udp(datagram) {
            Ok(parsed) => parsed,
            Err(e) => return Outbound::Drop(Dropped::Malformed(e)),
        };
        if header.frag != 0 {
            return Outbound::Drop(Dropped::Fragment);
        }
        match header.target {
            TargetAddr::Ip(to) => match self.admit(now, None, to, payload.len()) {
                Ok(()) => Outbound::Send { to, payload },
                Err(d) => Outbound::Drop(d),
            },
            TargetAddr::Domain(host, port) => Outbound::Resolve {
                host: Box::new(host),
                port,
                payload,
            },
        }
    }

    /// The addresses `host` resolved to, for a datagram of `len` bytes: where to send it
    /// (the first address the ACL allows), or why not.
    pub fn resolved(
        &mut self,
        now: Instant,
        host: &DomainName,
        addrs: &[SocketAddr],
        len: usize,
    ) -> Result<SocketAddr, Dropped> {
        let mut refusal = Dropped::Denied(LogCode::HOST_NOT_FOUND);
        for to in addrs {
            match self.admit(now, Some(host), *to, len) {
                Ok(()) => return Ok(*to),
                Err(d) => refusal = d,
            }
        }
        Err(refusal)
    }

    /// A datagram arrived on an outgoing socket from `from`: the datagram to send to the
    /// client (header and payload, written into `out`, which is cleared first), or why
    /// not.
    pub fn from_remote(
        &mut self,
        now: Instant,
        from: SocketAddr,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<SocketAddr, Dropped> {
        if self.end.is_some() {
            return Err(Dropped::Ended);
        }
        let from = SocketAddr::new(from.ip().to_canonical(), from.port());
        let known = self
            .peers
            .iter()
            .any(|p| SocketAddr::new(p.ip().to_canonical(), p.port()) == from);
        let Some(client) = self.client().filter(|_| known) else {
            return Err(self.stranger(now, from));
        };
        self.last = now;
        if !self.to_client.admit_datagram(now, payload.len()) {
            return Err(Dropped::OverRate);
        }
        self.bytes_in = self.bytes_in.saturating_add(payload.len() as u64);
        if let Err(e) = self.quota.charge(Direction::ToClient, payload.len() as u64) {
            self.end = Some(RelayEnd::Quota(e));
            return Err(Dropped::Ended);
        }
        out.clear();
        let header = UdpHeader {
            frag: 0,
            target: TargetAddr::Ip(from),
        };
        encode_udp(&header, out);
        out.extend_from_slice(payload);
        Ok(client)
    }

    /// The control connection closed (or failed): the association is over.
    pub fn handle_control_closed(&mut self) {
        self.end.get_or_insert(RelayEnd::Clean);
    }

    /// When the association expires if nothing passes.
    pub fn poll_timeout(&self) -> Instant {
        self.last + self.idle
    }

    /// Lets time pass: quiet for the idle timeout, it ends (code 92).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.poll_timeout() {
            self.end.get_or_insert(RelayEnd::IdleTimeout);
        }
    }

    /// The totals and ending, once it has ended.
    pub fn report(&self) -> Option<RelayReport> {
        self.end.map(|end| RelayReport {
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            end,
        })
    }

    /// The ACL, the bandwidth pipes and the quota for one datagram to `to`; on success it
    /// is counted and `to` is remembered as a peer whose answers may come back.
    fn admit(
        &mut self,
        now: Instant,
        host: Option<&DomainName>,
        to: SocketAddr,
        len: usize,
    ) -> Result<(), Dropped> {
        if self.check_acl {
            let request = AclRequest {
                user: self.acl_user.as_deref(),
                client: self.client_ip,
                target_host: host,
                target_ip: Some(to.ip()),
                port: Some(to.port()),
                operation: Operation::UdpAssoc,
                time: self.time,
            };
            match check(&self.policy.acl, &request) {
                AclVerdict::Allow => {}
                AclVerdict::Deny => return Err(Dropped::Denied(LogCode::ACL_DENIED)),
                AclVerdict::NoMatch => return Err(Dropped::Denied(LogCode::ACL_NO_MATCH)),
            }
        }
        if !self.to_target.admit_datagram(now, len) {
            return Err(Dropped::OverRate);
        }
        self.bytes_out = self.bytes_out.saturating_add(len as u64);
        if let Err(e) = self.quota.charge(Direction::ToTarget, len as u64) {
            self.end = Some(RelayEnd::Quota(e));
            return Err(Dropped::Ended);
        }
        if !self.peers.contains(&to) {
            if self.peers.len() >= MAX_PEERS {
                self.peers.pop_front();
            }
            self.peers.push_back(to);
        }
        Ok(())
    }

    fn stranger(&mut self, now: Instant, from: SocketAddr) -> Dropped {
        let notice = self
            .last_notice
            .is_none_or(|at| now.saturating_duration_since(at) >= STRANGER_NOTICE_EVERY);
        if notice {
            self.last_notice = Some(now);
        }
        Dropped::Stranger { from, notice }
    }
}
