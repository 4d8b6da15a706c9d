//! The DNS proxy (3proxy `dnspr`): the decisions around each query that are not the DNS
//! protocol's (those are [`triproxy_dns::proxy`]'s): may this client ask (the auth chain
//! and the ACL, operation DNSRESOLVE, as 3proxy checks before it reads the question),
//! and the log line of each query, as 3proxy writes it (`%T` = `TYPE/name/address`).
//! The executor (`exec/dnspr.rs`) owns the sockets.

use crate::acl::{AclRequest, CivilTime, Logging, Operation};
use crate::auth::AuthDecision;
use crate::reason::Reason;
use crate::service::ServicePolicy;
use crate::session::LogRecord;
use std::net::SocketAddr;
use std::time::Instant;
use triproxy_wire::LogCode;

/// The service name 3proxy logs for `dnspr`.
pub const SERVICE: &str = "DNSPR";

/// Whether `client` may use the DNS proxy at `time`: `Err` with the refusal's code.
pub fn admit(policy: &ServicePolicy, client: SocketAddr, time: CivilTime) -> Result<(), LogCode> {
    let request = AclRequest {
        user: None,
        client: client.ip(),
        target_host: None,
        target_ip: None,
        port: None,
        operation: Operation::DnsResolve,
        time,
    };
    match policy
        .auth
        .decide(&policy.users, None, None, &policy.acl, &request)
    {
        AuthDecision::Granted { .. } => Ok(()),
        AuthDecision::Refused(code) => Err(code),
    }
}

/// One query's log line: `code` (0, 888, 81x or a refusal's), `text` (3proxy's
/// `TYPE/name/address`, or empty when the question could not be read), and the bytes of
/// the query and of the answer.
#[allow(clippy::too_many_arguments)]
pub fn record(
    policy: &ServicePolicy,
    client: SocketAddr,
    local: SocketAddr,
    server: Option<SocketAddr>,
    started: Instant,
    now: Instant,
    code: LogCode,
    text: String,
    bytes: (u64, u64),
) -> LogRecord {
    let reason = match code.0 {
        0 => None,
        1 => Some(Reason::AclDenied),
        3 => Some(Reason::AclNoMatch),
        2..=9 => Some(Reason::Auth(code)),
        _ => Some(Reason::Dns(code)),
    };
    LogRecord {
        service: SERVICE,
        listen_port: policy.listen_port,
        code,
        reason,
        user: None,
        client,
        internal: local,
        remote: server,
        external: None,
        requested: None,
        bytes_in: bytes.1,
        bytes_out: bytes.0,
        hops: 0,
        text,
        duration: now.saturating_duration_since(started),
        // `nolog` is refused for dnspr services by the configuration reader.
        logging: Logging::Logged,
    }
}
