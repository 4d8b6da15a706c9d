//! How a request ends: the refusal answered in the front's terms, the end of the session
//! (or of one forwarded request), and the [`LogRecord`] that tells it.
//!
//! The record holds facts only (codes, addresses, counts, the typed reason); the daemon's
//! `logformat` renders it. Whether it is written is the writer's choice ([`Logging`]).

use super::{Intent, Phase, Session};
use crate::acl::Logging;
use crate::connlim::ConnPermit;
use crate::front::service_name;
use crate::reason::Reason;
use core::time::Duration;
use std::net::SocketAddr;
use std::time::Instant;
use triproxy_wire::{LogCode, TargetAddr};

/// One log record: the facts of a finished connection, rendered by the daemon's
/// `logformat`. Every failure carries a 3proxy [`LogCode`] and a readable `reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// 3proxy service name: `SOCK5`, `SOCK4`, `SOC45`, or `SOCKS` before the version is
    /// known; `PROXY` for the HTTP proxy; `TCPPM` for the port mapper.
    pub service: &'static str,
    /// Listening port of the service (`%p`).
    pub listen_port: u16,
    /// 3proxy error code (`%E`).
    pub code: LogCode,
    /// The typed cause of a failure; `None` on success.
    pub reason: Option<Reason>,
    /// The user name, when the client gave one (`%U`).
    pub user: Option<String>,
    /// The client's address (`%C:%c`).
    pub client: SocketAddr,
    /// The proxy address the client connected to (`%i`).
    pub internal: SocketAddr,
    /// The address actually connected to (`%R:%r`), if any.
    pub remote: Option<SocketAddr>,
    /// The proxy's own address of the outgoing connection (`%e`), if any.
    pub external: Option<SocketAddr>,
    /// The destination as requested (`%n`, `%Q:%q`), if a request was read.
    pub requested: Option<TargetAddr>,
    /// Bytes from the target to the client (`%I`).
    pub bytes_in: u64,
    /// Bytes from the client to the target (`%O`).
    pub bytes_out: u64,
    /// Parent proxy hops used (`%h`).
    pub hops: u32,
    /// Service text (`%T`): `CONNECT host:port`, `BIND host:port`, `UDPMAP host:port`
    /// (3proxy's words); for an HTTP method the proxy does not serve, `METHOD host:port`;
    /// for the port mapper, its target host as configured (3proxy's tcppm logs the host
    /// name only).
    pub text: String,
    /// From accept to this record (`%D`).
    pub duration: Duration,
    /// [`Logging::Unlogged`] when the ACL entry that allowed the request was marked
    /// `nolog`: the daemon does not write the record. The engine still produces it, so
    /// that every connection ends the same way and only the writer decides what is kept.
    pub logging: Logging,
}

impl Session {
    /// Refuses the request: the front (or the forwarding exchange) answers in its
    /// protocol's terms. Out of line, as are `finish` and `record`: a refusal's log record
    /// must not sit in the frames of every granted handshake (the deepest stack page of a
    /// handshake is what an idle std tunnel keeps resident).
    #[inline(never)]
    pub(super) fn refuse(&mut self, now: Instant, code: LogCode, reason: Reason) {
        if let Some(f) = self.front.as_mut() {
            f.handle_refused(code, &reason);
        }
        if let Some(forward) = self.forward.as_mut() {
            forward.refuse(now, crate::front::http_refusal(code));
        }
        self.finish(now, code, Some(reason), 0, 0);
    }

    #[inline(never)]
    pub(super) fn finish(
        &mut self,
        now: Instant,
        code: LogCode,
        reason: Option<Reason>,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        if self.phase == Phase::Done {
            return;
        }
        // The request is over: its parallel-connection slots are free now, even if the
        // runtime keeps the session a little longer.
        self.permit = ConnPermit::default();
        let record = self.record(now, code, reason, bytes_in, bytes_out);
        self.intents.push_back(Intent::Log(record));
        if self.forward.is_some() {
            // One request of a forwarding connection: the connection ends when the
            // exchange machine says so.
            self.end_request(now);
            return;
        }
        self.phase = Phase::Done;
        self.intents.push_back(Intent::Close);
    }

    /// The log record of the current request.
    #[inline(never)]
    pub(super) fn record(
        &self,
        now: Instant,
        code: LogCode,
        reason: Option<Reason>,
        bytes_in: u64,
        bytes_out: u64,
    ) -> LogRecord {
        let (requested, text) = match &self.request {
            Some(r) => (
                Some(r.target.clone()),
                match &r.text {
                    Some(text) => text.clone(),
                    None => format!("{} {}", r.kind.log_text(), r.target),
                },
            ),
            None => (None, String::new()),
        };
        let version = self
            .version
            .or_else(|| self.front.as_ref().and_then(|f| f.version()));
        let service = self.service.unwrap_or_else(|| match self.front.as_ref() {
            Some(f) => f.service_name(&self.policy.protocol),
            None => service_name(&self.policy.protocol, version),
        });
        LogRecord {
            service,
            listen_port: self.policy.listen_port,
            code,
            reason,
            user: self.user.clone(),
            client: self.client,
            internal: self.internal,
            remote: self.remote,
            external: self.external,
            requested,
            bytes_in,
            bytes_out,
            hops: self.hops,
            text,
            duration: now.saturating_duration_since(self.started),
            logging: self
                .rule
                .and_then(|i| self.policy.acl.get(i))
                .map_or(Logging::Logged, |ace| ace.logging()),
        }
    }
}

/// The reason of a refusal by the auth chain or the ACL, from its log code.
pub(super) fn refusal_reason(code: LogCode) -> Reason {
    match code {
        LogCode::ACL_DENIED => Reason::AclDenied,
        LogCode::ACL_NO_MATCH => Reason::AclNoMatch,
        other => Reason::Auth(other),
    }
}
