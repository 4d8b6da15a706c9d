//! The web admin service (3proxy `admin`): counters (`/C`, `/CD<n>`, `/CS<n>`), running
//! services (`/S`), reload (`/R`), Prometheus metrics (`/metrics`) and a banner for any
//! other path, over HTTP/1.1 with one request per connection.
//!
//! Every request goes through the service's `auth` chain and ACL with operation `ADMIN`
//! ([`AuthChain::decide`]), credentials coming from `Authorization: Basic`: a credential
//! failure is answered 401 with a Basic challenge, an ACL refusal 403. `admin -s` is
//! read-only: counters and metrics only, and of the counters only the rules that match the
//! requester (user and address), as 3proxy's limited admin shows each user their own.
//!
//! Each request is logged as one record of service `ADMIN` with a 3proxy-like code: 0
//! served, 1-6 auth and ACL (as every service; 1 also for what a read-only admin refuses),
//! 10 beyond `maxconn`, 701 not `GET`/`POST` or nothing read, 702 malformed or no such
//! counter rule, 999 a 3proxy feature triproxy does not have (the config editor `/F` `/U`,
//! or reload when the process cannot reload).
//!
//! Where it runs: on dedicated std threads (one accepting, one per client, at most
//! [`MAX_CLIENTS`]), whatever `--runtime` says. Admin traffic is a few requests a minute;
//! keeping it off the runtimes means no front, no session engine and no second
//! implementation per runtime for it, and a busy or stuck proxy runtime does not hide its
//! own metrics. A client that sends nothing is dropped after [`READ_TIMEOUT`].
//!
//! Request parsing ([`request`]), routing and rendering ([`pages`], [`crate::metrics`])
//! and the decision ([`respond`]) are pure functions; only [`spawn`] touches sockets.

pub mod pages;
pub mod request;

use crate::metrics::{self, Metrics, ServiceKey};
use pages::{Answer, Route, Status};
use request::{Parsed, Request, RequestError, MAX_REQUEST_HEAD};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use triproxy_policy::acl::{Ace, AclRequest, CivilTime, Operation};
use triproxy_policy::auth::{AuthChain, AuthDecision};
use triproxy_policy::quota::{Quotas, RuleKind};
use triproxy_policy::reason::Reason;
use triproxy_policy::session::LogRecord;
use triproxy_policy::users::Users;
use triproxy_runtime_std::Hooks;
use triproxy_wire::LogCode;

/// How long a client may take to send its whole request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long writing the answer may block.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most clients served at once by one admin service (less if its `maxconn` is lower);
/// more are closed at once and logged with code 10. Admin pages are small; this only
/// bounds threads.
pub const MAX_CLIENTS: usize = 16;
/// The 3proxy service name in admin log records (`%N`).
pub const SERVICE_NAME: &str = "ADMIN";
/// Most bytes of a request body read and dropped after the answer, and for how long:
/// closing a socket with unread bytes makes the kernel send a reset, which can destroy
/// the answer before the client has read it (a `POST` with a body the admin ignores).
pub const DRAIN_LIMIT: (usize, Duration) = (64 * 1024, Duration::from_secs(1));
/// Code of a request a read-only admin (`-s`) does not serve: 1, "denied by the
/// configuration", as an ACL `deny`.
pub const READ_ONLY_CODE: LogCode = LogCode::ACL_DENIED;
/// Code of a request for what triproxy does not have (3proxy's "not implemented").
pub const NOT_AVAILABLE_CODE: LogCode = LogCode::NOT_IMPLEMENTED;
/// Code of a bad counter number in `/CD<n>` or `/CS<n>` (3proxy's "bad request").
pub const BAD_COUNTER_CODE: LogCode = LogCode(702);

/// Asks the daemon to read its configuration again; called by `/R`.
pub type Reload = Arc<dyn Fn() + Send + Sync>;

/// A [`Reload`] that sends SIGUSR1 to this process, the signal the daemon reloads on
/// (as 3proxy). rustix's `kill` wrapper needs no `unsafe`. The daemon must catch SIGUSR1
/// before this is used: the signal's default action ends the process.
pub fn reload_by_signal() -> Reload {
    Arc::new(|| {
        let own = rustix::process::getpid();
        if let Err(e) = rustix::process::kill_process(own, rustix::process::Signal::USR1) {
            eprintln!("triproxy: admin reload: cannot signal the own process: {e}");
        }
    })
}

/// What an admin service needs to answer.
pub struct AdminState {
    /// The services of the running configuration, for `/S`.
    pub services: Vec<ServiceKey>,
    /// The traffic counters, for `/C` and `/metrics`.
    pub quotas: Arc<Quotas>,
    /// The password table, for `auth strong`.
    pub users: Arc<Users>,
    /// The `auth` chain in force at the admin line.
    pub auth: AuthChain,
    /// The ACL in force at the admin line.
    pub acl: Arc<[Ace]>,
    /// `-s`: counters and metrics only.
    pub read_only: bool,
    /// The daemon's metrics.
    pub metrics: Arc<Metrics>,
    /// What `/R` calls; `None`: reload is not available (answered 503).
    pub reload: Option<Reload>,
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("services", &self.services)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// The answer to one request and what its log record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handled {
    /// The answer; `None` when nothing is sent (nothing complete was read).
    pub answer: Option<Answer>,
    /// The 3proxy code.
    pub code: LogCode,
    /// The typed cause of an auth or ACL refusal.
    pub reason: Option<Reason>,
    /// The user name the client presented, for the log.
    pub user: Option<String>,
}

impl Handled {
    fn served(answer: Answer, user: Option<String>) -> Handled {
        Handled {
            answer: Some(answer),
            code: LogCode::SUCCESS,
            reason: None,
            user,
        }
    }

    fn refused(answer: Answer, code: LogCode, user: Option<String>) -> Handled {
        Handled {
            answer: Some(answer),
            code,
            reason: None,
            user,
        }
    }
}

/// The answer to a request head that could not be read.
pub fn refuse(error: RequestError) -> Handled {
    let answer = match error {
        RequestError::Method => Some(Answer::message(
            Status::MethodNotAllowed,
            "only GET and POST are served",
        )),
        RequestError::Malformed => Some(Answer::message(Status::BadRequest, "malformed request")),
        RequestError::TooLarge => Some(Answer::message(
            Status::HeadTooLarge,
            "request head too large",
        )),
        RequestError::Incomplete => None,
    };
    Handled {
        answer,
        code: error.log_code(),
        reason: None,
        user: None,
    }
}

/// Answers `request` from `client` at local time `time`: auth and ACL, then the page.
/// Switching a counter and asking for a reload happen here, through `state`.
pub fn respond(state: &AdminState, request: &Request, client: IpAddr, time: CivilTime) -> Handled {
    let (user, password) = match &request.credentials {
        Some(c) => (Some(c.user.as_slice()), Some(c.password.as_slice())),
        None => (None, None),
    };
    let presented = user.map(|u| String::from_utf8_lossy(u).into_owned());
    let acl_request = AclRequest {
        user: None,
        client,
        target_host: None,
        target_ip: None,
        port: None,
        operation: Operation::Admin,
        time,
    };
    let decision = state
        .auth
        .decide(&state.users, user, password, &state.acl, &acl_request);
    let acl_user = match decision {
        AuthDecision::Granted { acl_user, .. } => acl_user,
        AuthDecision::Refused(code) => return auth_refusal(code, presented),
    };
    // What a read-only admin shows: the counter rules that match the requester, as 3proxy
    // shows a limited admin's users only their own counters.
    let rows = || {
        let mut rows = metrics::counter_rows(&state.quotas);
        if state.read_only {
            let mine = AclRequest {
                user: acl_user.as_deref(),
                ..acl_request
            };
            let rules = state.quotas.rules();
            rows.retain(|row| {
                rules
                    .get(row.rule)
                    .is_some_and(|r| r.matches.matches(&mine))
            });
        }
        rows
    };
    let route = pages::route(&request.path);
    let read_only_refuses = matches!(
        route,
        Route::SetCounter { .. } | Route::BadCounter | Route::Status | Route::Reload
    );
    if state.read_only && read_only_refuses {
        return Handled::refused(
            Answer::message(
                Status::Forbidden,
                "this admin service is read-only (-s): counters and metrics only",
            ),
            READ_ONLY_CODE,
            presented,
        );
    }
    match route {
        Route::Counters => Handled::served(pages::counters(&rows(), state.read_only), presented),
        Route::SetCounter { rule, disabled } => match state.quotas.rules().get(rule) {
            Some(r) => match &r.kind {
                RuleKind::Count(c) => {
                    c.set_disabled(disabled);
                    Handled::served(
                        pages::counters(&metrics::counter_rows(&state.quotas), false),
                        presented,
                    )
                }
                RuleKind::Exempt => Handled::refused(
                    Answer::message(
                        Status::NotFound,
                        &format!("rule {rule} is a nocount exception, not a counter"),
                    ),
                    BAD_COUNTER_CODE,
                    presented,
                ),
            },
            None => Handled::refused(
                Answer::message(
                    Status::NotFound,
                    &format!("there is no counter rule {rule}"),
                ),
                BAD_COUNTER_CODE,
                presented,
            ),
        },
        Route::BadCounter => Handled::refused(
            Answer::message(
                Status::NotFound,
                "a counter rule is named by its position: /CD<n> or /CS<n>",
            ),
            BAD_COUNTER_CODE,
            presented,
        ),
        Route::Status => {
            // In configuration order, with the counts kept across reloads.
            let running: Vec<_> = state
                .services
                .iter()
                .map(|k| (*k, state.metrics.service(*k).snapshot()))
                .collect();
            Handled::served(pages::status(&running), presented)
        }
        Route::Reload => match &state.reload {
            Some(reload) => {
                reload();
                Handled::served(Answer::message(Status::Ok, "reload requested"), presented)
            }
            None => Handled::refused(
                Answer::message(Status::Unavailable, "this process cannot reload"),
                NOT_AVAILABLE_CODE,
                presented,
            ),
        },
        Route::Metrics => {
            let snapshot = metrics::Snapshot {
                services: state.metrics.snapshot(),
                counters: rows(),
            };
            Handled::served(
                Answer {
                    status: Status::Ok,
                    content_type: metrics::CONTENT_TYPE,
                    body: metrics::render(&snapshot),
                },
                presented,
            )
        }
        Route::ConfigEditor => Handled::refused(
            Answer::message(
                Status::NotImplemented,
                "editing the configuration over the web is not supported by triproxy",
            ),
            NOT_AVAILABLE_CODE,
            presented,
        ),
        Route::Banner => Handled::served(pages::banner(), presented),
    }
}

/// The answer to a request the auth chain or the ACL refused with `code`: 403 for the ACL
/// (1, 3), 401 with a Basic challenge for credentials (4-6).
fn auth_refusal(code: LogCode, presented: Option<String>) -> Handled {
    let (status, reason, text) = if code == LogCode::ACL_DENIED {
        (Status::Forbidden, Reason::AclDenied, "denied by the ACL")
    } else if code == LogCode::ACL_NO_MATCH {
        (
            Status::Forbidden,
            Reason::AclNoMatch,
            "no ACL entry allows it",
        )
    } else {
        (
            Status::Unauthorized,
            Reason::Auth(code),
            "valid credentials are needed",
        )
    };
    Handled {
        answer: Some(Answer::message(status, text)),
        code,
        reason: Some(reason),
        user: presented,
    }
}

/// What an admin service answers with now; replaced whole by a reload.
struct Current {
    state: Arc<AdminState>,
    hooks: Hooks,
    max_clients: usize,
}

/// A running admin service: a reload replaces what it answers with, keeping its listener
/// (as every other service); a reload that removes it stops it.
pub struct AdminHandle {
    current: Arc<RwLock<Arc<Current>>>,
    stopped: Arc<AtomicBool>,
    /// A duplicate of the listener, to wake the accepting thread.
    waker: TcpListener,
}

impl std::fmt::Debug for AdminHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminHandle")
            .field("stopped", &self.stopped.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl AdminHandle {
    /// Answers new requests with `state`, logging through `hooks`, at most `maxconn`
    /// clients at once (requests being served finish with what they started with).
    pub fn replace(&self, state: Arc<AdminState>, hooks: Hooks, maxconn: usize) {
        let next = Arc::new(Current {
            state,
            hooks,
            max_clients: maxconn.clamp(1, MAX_CLIENTS),
        });
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    /// Answers new requests with `state`, keeping the hooks and client limit.
    pub fn set_state(&self, state: Arc<AdminState>) {
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        *current = Arc::new(Current {
            state,
            hooks: current.hooks.clone(),
            max_clients: current.max_clients,
        });
    }

    /// Stops accepting: the listener leaves the LISTEN state at once, and the accepting
    /// thread ends (closing it). Requests being served finish.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        // shutdown(2) wakes the thread blocked in accept(2).
        let _ = socket2::SockRef::from(&self.waker).shutdown(std::net::Shutdown::Read);
    }
}

/// Starts an admin service on `listener`: an accepting thread, and a thread per client,
/// at most `maxconn` (and [`MAX_CLIENTS`]) clients at once; beyond that a client is closed
/// at once and logged with code 10.
pub fn spawn(
    listener: TcpListener,
    state: Arc<AdminState>,
    hooks: Hooks,
    maxconn: usize,
) -> io::Result<AdminHandle> {
    let listen = listener.local_addr()?;
    let waker = listener.try_clone()?;
    let current = Arc::new(RwLock::new(Arc::new(Current {
        state,
        hooks,
        max_clients: maxconn.clamp(1, MAX_CLIENTS),
    })));
    let stopped = Arc::new(AtomicBool::new(false));
    let clients = Arc::new(AtomicUsize::new(0));
    let (loop_current, loop_stopped) = (Arc::clone(&current), Arc::clone(&stopped));
    std::thread::Builder::new()
        .name(format!("admin {listen}"))
        .spawn(move || loop {
            let accepted = listener.accept();
            if loop_stopped.load(Ordering::Acquire) {
                return;
            }
            let Ok((stream, peer)) = accepted else {
                // EMFILE and friends: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let started = Instant::now();
            let now = Arc::clone(&loop_current.read().unwrap_or_else(|p| p.into_inner()));
            if clients.fetch_add(1, Ordering::AcqRel) >= now.max_clients {
                clients.fetch_sub(1, Ordering::AcqRel);
                let refused = Handled {
                    answer: None,
                    code: LogCode::LIMIT_EXCEEDED,
                    reason: None,
                    user: None,
                };
                log(&now.hooks, &refused, peer, listen, (0, 0), "", started);
                continue;
            }
            let client_count = Arc::clone(&clients);
            let spawned = std::thread::Builder::new()
                .name(format!("admin client {peer}"))
                .spawn(move || {
                    serve(stream, peer, listen, &now.state, &now.hooks, started);
                    client_count.fetch_sub(1, Ordering::AcqRel);
                });
            if spawned.is_err() {
                // No thread: the client is closed unanswered.
                clients.fetch_sub(1, Ordering::AcqRel);
            }
        })?;
    Ok(AdminHandle {
        current,
        stopped,
        waker,
    })
}

/// Reads one request head (until complete, [`MAX_REQUEST_HEAD`], end of stream or
/// [`READ_TIMEOUT`]), answers it and logs it.
fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    state: &AdminState,
    hooks: &Hooks,
    started: Instant,
) {
    let _active = hooks.track_connection();
    let internal = stream.local_addr().unwrap_or(listen);
    let (read, head) = read_head(&mut stream, started + READ_TIMEOUT);
    let (handled, text) = match head {
        Ok(request) => {
            let text = format!("{} {}", request.method.name(), request.path);
            let time = (hooks.civil_time)();
            (respond(state, &request, peer.ip(), time), text)
        }
        Err(e) => (refuse(e), String::new()),
    };
    let mut written = 0;
    if let Some(answer) = &handled.answer {
        let bytes = answer.bytes();
        if stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_ok() && stream.write_all(&bytes).is_ok()
        {
            written = bytes.len();
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
    drain(&mut stream);
    log(
        hooks,
        &handled,
        peer,
        internal,
        (read, written),
        &text,
        started,
    );
}

/// Reads until a complete head, a refusal, end of stream or `deadline`; returns the
/// bytes read and the outcome.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> (usize, Result<Request, RequestError>) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return (buf.len(), Err(RequestError::Incomplete));
        }
        let room = MAX_REQUEST_HEAD.saturating_sub(buf.len()).min(chunk.len());
        let n = match stream.read(&mut chunk[..room.max(1)]) {
            Ok(0) | Err(_) => return (buf.len(), Err(RequestError::Incomplete)),
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        match request::parse(&buf) {
            Ok(Parsed::Complete(r)) => return (buf.len(), Ok(r)),
            Ok(Parsed::Partial) => {}
            Err(e) => return (buf.len(), Err(e)),
        }
    }
}

/// Reads and drops what the client still sends, up to [`DRAIN_LIMIT`].
fn drain(stream: &mut TcpStream) {
    let (limit, wait) = DRAIN_LIMIT;
    let deadline = Instant::now() + wait;
    let mut dropped = 0;
    let mut chunk = [0u8; 2048];
    while dropped < limit {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => dropped += n,
        }
    }
}

/// Writes the request's record.
fn log(
    hooks: &Hooks,
    handled: &Handled,
    peer: SocketAddr,
    internal: SocketAddr,
    (read, written): (usize, usize),
    text: &str,
    started: Instant,
) {
    let record = LogRecord {
        logging: triproxy_policy::acl::Logging::Logged,
        service: SERVICE_NAME,
        listen_port: internal.port(),
        code: handled.code,
        reason: handled.reason.clone(),
        user: handled.user.clone(),
        client: peer,
        internal,
        remote: None,
        external: None,
        requested: None,
        bytes_in: u64::try_from(written).unwrap_or(u64::MAX),
        bytes_out: u64::try_from(read).unwrap_or(u64::MAX),
        hops: 0,
        text: text.to_owned(),
        duration: started.elapsed(),
    };
    (hooks.log)(&record);
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
