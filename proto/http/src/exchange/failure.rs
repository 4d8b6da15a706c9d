//! Why an [`Exchange`](super::Exchange) stopped: [`ExchangeError`], its 3proxy log code
//! and text, and [`ExchangeFailure`], the error with how far the exchange had got.
//!
//! Only the failure values live here; deciding when to fail is the machine's.

use crate::body::BodyError;
use crate::forward::{ForwardError, ResponseError};
use core::fmt;
use triproxy_wire::LogCode;

/// Why forwarding stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeError {
    /// The request head (400).
    Request(ForwardError),
    /// The client's chunked request body (the connection closes).
    RequestBody(BodyError),
    /// The origin's response head (502).
    Response(ResponseError),
    /// A `101 Switching Protocols`, which the proxy never asked for (it drops `Upgrade`)
    /// (502).
    UnexpectedUpgrade,
    /// The origin's response body (the client connection closes).
    ResponseBody(BodyError),
    /// The origin closed or failed before its response was complete (502 if the response
    /// had not started).
    OriginClosed,
    /// The client closed or failed in the middle of an exchange.
    ClientClosed,
    /// The client closed with a request head incomplete.
    ClientClosedInHead,
    /// No complete request head in time (nothing is sent).
    HeadTimeout,
    /// No new request in time after the previous one (not logged by 3proxy).
    KeepAliveEnded,
    /// No byte moved in an exchange for the idle timeout (504 if the response had not
    /// started).
    Idle,
}

impl ExchangeError {
    /// The 3proxy log code: the request-head codes of [`RequestError::log_code`] (a
    /// framing error is a malformed request, 512), 536 for a bad request body (3proxy's
    /// upload chunk errors), 522 for an unusable response or an origin that closed
    /// without one (3proxy's "invalid server response"), 533 for a bad response body (its
    /// chunk relay errors), 96 for an origin gone mid-body, 95 for a client gone
    /// mid-exchange, 507/508 for a head that never completed, 555 for the end of the
    /// keep-alive wait (which 3proxy does not log) and 92 for an idle exchange.
    ///
    /// [`RequestError::log_code`]: crate::RequestError::log_code
    pub fn log_code(&self) -> LogCode {
        match self {
            ExchangeError::Request(ForwardError::Request(e)) => e.log_code(),
            ExchangeError::Request(ForwardError::Framing(_)) => LogCode(512),
            ExchangeError::RequestBody(_) => LogCode(536),
            ExchangeError::Response(_)
            | ExchangeError::UnexpectedUpgrade
            | ExchangeError::OriginClosed => LogCode(522),
            ExchangeError::ResponseBody(BodyError::Truncated) => LogCode(96),
            ExchangeError::ResponseBody(_) => LogCode(533),
            ExchangeError::ClientClosed => LogCode(95),
            ExchangeError::ClientClosedInHead => LogCode(508),
            ExchangeError::HeadTimeout => LogCode(507),
            ExchangeError::KeepAliveEnded => LogCode(555),
            ExchangeError::Idle => LogCode(92),
        }
    }

    /// Whether 3proxy would log it: everything but the end of the keep-alive wait.
    pub fn is_logged(&self) -> bool {
        *self != ExchangeError::KeepAliveEnded
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Request(e) => e.fmt(f),
            ExchangeError::RequestBody(e) => write!(f, "request body: {e}"),
            ExchangeError::Response(e) => write!(f, "origin response: {e}"),
            ExchangeError::UnexpectedUpgrade => f.write_str("origin switched protocols unasked"),
            ExchangeError::ResponseBody(e) => write!(f, "origin response body: {e}"),
            ExchangeError::OriginClosed => f.write_str("origin closed before its response"),
            ExchangeError::ClientClosed => f.write_str("client closed during the exchange"),
            ExchangeError::ClientClosedInHead => {
                f.write_str("client closed in the middle of a request head")
            }
            ExchangeError::HeadTimeout => f.write_str("request head not complete in time"),
            ExchangeError::KeepAliveEnded => f.write_str("no further request in time"),
            ExchangeError::Idle => f.write_str("idle timeout: no traffic either way"),
        }
    }
}

/// A failure and how far the exchange got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeFailure {
    /// What went wrong.
    pub error: ExchangeError,
    /// Whether a request was routed (an origin connection was in use): the driver drops
    /// it.
    pub routed: bool,
    /// The response status, if the response had started.
    pub status: Option<u16>,
    /// Bytes passed to the origin in this exchange.
    pub to_origin: u64,
    /// Bytes passed to the client in this exchange.
    pub to_client: u64,
}
