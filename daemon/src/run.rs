//! Starting the configured services on a runtime.
//!
//! Every listening socket is opened before any service starts, so a configuration with one
//! unusable address refuses to start as a whole instead of running half of it.

use crate::config::{Config, ServiceConfig, ServiceKind};
use crate::logsink::LogSinks;
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use triproxy_policy::names::Names;
use triproxy_policy::parent::ParentRandom;
use triproxy_policy::service::{FrontProtocol, RelayMode, ServicePolicy};
use triproxy_runtime_std::net;

/// Which runtime drives the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RuntimeKind {
    /// Blocking sockets, one thread per connection (3proxy's model).
    #[default]
    Std,
    /// smol: many connections on a few threads.
    Smol,
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeKind::Std => "std",
            RuntimeKind::Smol => "smol",
        })
    }
}

/// A service that is accepting connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// `socks`, `proxy`, `tcppm`.
    pub service: &'static str,
    /// The bound address (with the real port when the configuration said 0).
    pub addr: SocketAddr,
    /// Whether it is a UDP service (`udppm`, `dnspr`).
    pub udp: bool,
}

/// Why the services could not start.
#[derive(Debug)]
pub enum StartError {
    /// A service could not listen, open its log or start.
    Service {
        /// Configuration file and line of the service.
        origin: (String, usize),
        /// The address it was to listen on.
        addr: SocketAddr,
        /// What the system said.
        error: io::Error,
    },
    /// The runtime's threads could not be started.
    Runtime(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Service {
                origin,
                addr,
                error,
            } => write!(
                f,
                "{}:{}: cannot start the service on {addr}: {error}",
                origin.0, origin.1
            ),
            StartError::Runtime(e) => write!(f, "cannot start the runtime: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// A service's socket: a TCP listener, or the one UDP socket of a datagram service.
enum Socket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// Listen backlog of a service: `backlog` if configured, else 3proxy's `1 + maxconn/8` but
/// at least 128 so that bursts of new clients are not dropped by the kernel.
fn backlog(service: &ServiceConfig) -> i32 {
    match service.backlog {
        Some(n) => i32::try_from(n).unwrap_or(i32::MAX),
        None => i32::try_from(1 + service.maxconn / 8)
            .unwrap_or(i32::MAX)
            .max(128),
    }
}

/// The policy snapshot a service's sessions run with.
pub fn policy_of(
    service: &ServiceConfig,
    config: &Config,
    port: u16,
    parent_random: &Arc<ParentRandom>,
    names: &Arc<Names>,
) -> ServicePolicy {
    ServicePolicy {
        parent_random: Arc::clone(parent_random),
        listen_port: port,
        protocol: match &service.kind {
            ServiceKind::Socks => FrontProtocol::Socks,
            ServiceKind::Proxy => FrontProtocol::Http,
            ServiceKind::TcpPm { target } => FrontProtocol::PortMap(target.clone()),
            // Datagram services have no stream front: their loop is chosen by
            // `ServiceKind::datagram`, and this field is not read.
            ServiceKind::UdpPm { .. } | ServiceKind::DnsPr(_) => FrontProtocol::Socks,
            ServiceKind::Pop3p(m) => FrontProtocol::Pop3(m.clone()),
            ServiceKind::Smtpp(m) => FrontProtocol::Smtp(m.clone()),
            ServiceKind::Imapp(m) => FrontProtocol::Imap(m.clone()),
            ServiceKind::Tlspr(t) => FrontProtocol::Tls(t.clone()),
            ServiceKind::Auto(t) => FrontProtocol::Auto(t.clone()),
        },
        auth: service.auth.clone(),
        acl: Arc::from(service.acl.clone()),
        users: Arc::clone(&config.users),
        bandlimits: Arc::clone(&config.bandlimits),
        quotas: Arc::clone(&config.quotas),
        connlimits: Arc::clone(&config.connlimits),
        needuser: service.needuser,
        timeouts: config.timeouts,
        external: service.external,
        anonymity: service.anonymity,
        names: Arc::clone(names),
        family: service.family,
        logdump: service.logdump,
        relay: if service.splice {
            RelayMode::ZeroCopy
        } else {
            RelayMode::Buffered
        },
    }
}

/// The process's name resolution: triproxy's own resolver if the configuration asks for
/// one (`nserver`, `nsrecord`, `fakeresolve`), else the system resolver.
pub fn names_of(config: &Config) -> Names {
    if !config.names.own() {
        return Names::system();
    }
    // Query IDs must not be predictable: seed them from the OS's randomness (std's
    // `RandomState` keys come from it), not from the clock.
    let seed = {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    Names::own(config.names.resolver(config.timeouts.dns), seed)
}

/// Opens every listener, then starts every service on `runtime`. Returns what listens where.
pub fn start(
    config: &Config,
    runtime: RuntimeKind,
    smol_threads: usize,
) -> Result<Vec<Listening>, StartError> {
    start_logged(config, runtime, smol_threads).map(|(listening, _)| listening)
}

/// [`start`], also returning the services' log destinations, so that a reload can
/// [`LogSinks::reopen`] them (after an external logrotate moved the files).
pub fn start_logged(
    config: &Config,
    runtime: RuntimeKind,
    smol_threads: usize,
) -> Result<(Vec<Listening>, Arc<LogSinks>), StartError> {
    let fail = |service: &ServiceConfig, error: io::Error| StartError::Service {
        origin: service.origin.clone(),
        addr: service.listen,
        error,
    };
    let mut listeners: Vec<(&ServiceConfig, Socket)> = Vec::new();
    for service in &config.services {
        let socket = if service.kind.datagram().is_some() {
            UdpSocket::bind(service.listen).map(Socket::Udp)
        } else {
            net::listen(service.listen, backlog(service)).map(Socket::Tcp)
        };
        listeners.push((service, socket.map_err(|e| fail(service, e))?));
    }
    let sinks = Arc::new(LogSinks::new(&config.log_retention));
    let smol = match runtime {
        RuntimeKind::Smol => {
            Some(triproxy_runtime_smol::Runtime::start(smol_threads).map_err(StartError::Runtime)?)
        }
        RuntimeKind::Std => None,
    };
    let mut started = Vec::new();
    // Parent weights draw from one generator per process, seeded from the clock (the
    // policy crate never reads one).
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let parent_random = Arc::new(ParentRandom::new(seed));
    let names = Arc::new(names_of(config));
    for (service, socket) in listeners {
        let addr = match &socket {
            Socket::Tcp(l) => l.local_addr(),
            Socket::Udp(u) => u.local_addr(),
        }
        .map_err(|e| fail(service, e))?;
        let hooks = sinks
            .hooks(&service.log, &service.logformat)
            .map_err(|e| fail(service, e))?;
        let policy = Arc::new(policy_of(
            service,
            config,
            addr.port(),
            &parent_random,
            &names,
        ));
        let maxconn = usize::try_from(service.maxconn).unwrap_or(usize::MAX);
        let datagram = service.kind.datagram();
        let udp = datagram.is_some();
        match (socket, &smol, datagram) {
            (Socket::Tcp(listener), Some(rt), _) => {
                triproxy_runtime_smol::spawn_service(rt, listener, policy, hooks, maxconn)
                    .map_err(|e| fail(service, e))?;
            }
            (Socket::Tcp(listener), None, _) => {
                triproxy_runtime_std::spawn_service(listener, policy, hooks, maxconn)
                    .map_err(|e| fail(service, e))?;
            }
            (Socket::Udp(socket), Some(rt), Some(kind)) => {
                triproxy_runtime_smol::spawn_datagram_service(
                    rt, socket, policy, kind, hooks, maxconn,
                )
                .map_err(|e| fail(service, e))?;
            }
            (Socket::Udp(socket), None, Some(kind)) => {
                triproxy_runtime_std::spawn_datagram_service(socket, policy, kind, hooks, maxconn)
                    .map_err(|e| fail(service, e))?;
            }
            (Socket::Udp(_), _, None) => {}
        }
        started.push(Listening {
            service: service.kind.command(),
            addr,
            udp,
        });
    }
    Ok((started, sinks))
}
