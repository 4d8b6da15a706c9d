//! Starting the configured services on a runtime, and moving them to a new configuration
//! on a reload.

use crate::admin::{self, AdminHandle, AdminState, Reload};
use crate::config::{Config, ServiceConfig, ServiceKind};
use crate::logsink::LogSinks;
use crate::metrics::{Metrics, ServiceKey};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use triproxy_policy::authcache::ServiceAuthCache;
use triproxy_policy::names::Names;
use triproxy_policy::parent::ParentRandom;
use triproxy_policy::service::{FrontProtocol, RelayMode, ServicePolicy};
use triproxy_runtime_std::{net, ServiceSlot, Settings};

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
    /// A service's log file could not be opened.
    Log {
        /// Configuration file and line of the service.
        origin: (String, usize),
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
            StartError::Log { origin, error } => write!(
                f,
                "{}:{}: cannot open the service's log: {error}",
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
            // The web admin runs on its own threads, not on a stream front
            // ([`crate::admin`]); this field is not read.
            ServiceKind::Admin { .. } => FrontProtocol::Socks,
        },
        auth: service.auth.clone(),
        acl: Arc::from(service.acl.clone()),
        users: Arc::clone(&config.users),
        authcache: service.authcache.map(|settings| ServiceAuthCache {
            settings,
            table: Arc::clone(&config.authcache),
        }),
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
        force: service.force,
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

/// Opens every listener of `config`, without starting anything: what the daemon does
/// before it drops privileges (a port below 1024 needs them, serving does not).
///
/// Every listening socket is opened before any service starts, so a configuration with one
/// unusable address refuses to start as a whole instead of running half of it.
pub fn bind(config: &Config) -> Result<Vec<Bound>, StartError> {
    config
        .services
        .iter()
        .map(|service| open(service).map(|socket| Bound { socket }))
        .collect()
}

/// A service's socket, bound and listening, not yet served.
#[derive(Debug)]
pub struct Bound {
    socket: Socket,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Socket::Tcp(l) => f.debug_tuple("Tcp").field(l).finish(),
            Socket::Udp(u) => f.debug_tuple("Udp").field(u).finish(),
        }
    }
}

/// What identifies a listener across reloads: its transport and the address the
/// configuration gave. A service whose key is in both the old and the new configuration
/// keeps its listening socket; only its settings change.
///
/// A TCP service asked to listen on port 0 ("any free port") never matches: each reload
/// gives it a new port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    udp: bool,
    /// The web admin serves its own listener (a listener moving between the admin and a
    /// proxy service is closed and opened again).
    admin: bool,
    addr: SocketAddr,
}

impl Key {
    fn of(service: &ServiceConfig) -> Key {
        Key {
            udp: service.kind.datagram().is_some(),
            admin: matches!(service.kind, ServiceKind::Admin { .. }),
            addr: service.listen,
        }
    }

    fn reusable(&self) -> bool {
        self.addr.port() != 0
    }
}

fn open(service: &ServiceConfig) -> Result<Socket, StartError> {
    let socket = if service.kind.datagram().is_some() {
        UdpSocket::bind(service.listen).map(Socket::Udp)
    } else {
        net::listen(service.listen, backlog(service)).map(Socket::Tcp)
    };
    socket.map_err(|error| StartError::Service {
        origin: service.origin.clone(),
        addr: service.listen,
        error,
    })
}

/// A running service's handle, whichever the runtime.
#[derive(Debug)]
enum Handle {
    Std(triproxy_runtime_std::ServiceHandle),
    Smol(triproxy_runtime_smol::ServiceHandle),
    Admin(AdminHandle),
}

impl Handle {
    /// Stops the service; for a datagram service also waits until its socket is closed,
    /// so that its address can be bound again.
    fn stop(self) {
        match self {
            Handle::Std(h) => {
                h.stop();
                if h.is_datagram() {
                    h.wait();
                }
            }
            Handle::Smol(h) => h.stop(),
            Handle::Admin(h) => h.stop(),
        }
    }
}

/// One running service.
#[derive(Debug)]
struct Running {
    key: Key,
    /// Its position in the configuration in force.
    index: usize,
    slot: Arc<ServiceSlot>,
    handle: Handle,
    listening: Listening,
}

/// The running services and what they share; [`Services::reload`] moves them to a new
/// configuration.
pub struct Services {
    smol: Option<triproxy_runtime_smol::Runtime>,
    sinks: LogSinks,
    parent_random: Arc<ParentRandom>,
    names: (crate::config::NamesConfig, std::time::Duration, Arc<Names>),
    running: Vec<Running>,
    /// The configuration in force (its limits and counters are the live ones).
    config: Config,
    /// Every service counts into it; kept across reloads.
    metrics: Arc<Metrics>,
    /// What the web admin's `/R` calls.
    reload: Option<Reload>,
}

/// Services ready to start: see [`Services::prepare`].
#[derive(Debug)]
pub struct Prepared {
    services: Services,
    bound: Vec<Bound>,
    settings: Vec<Settings>,
}

impl Prepared {
    /// Starts the runtime's threads and a service on each bound socket.
    pub fn start(self, runtime: RuntimeKind, smol_threads: usize) -> Result<Services, StartError> {
        let Prepared {
            mut services,
            bound,
            settings,
        } = self;
        if runtime == RuntimeKind::Smol {
            services.smol = Some(
                triproxy_runtime_smol::Runtime::start(smol_threads).map_err(StartError::Runtime)?,
            );
        }
        let configs = services.config.services.clone();
        for (index, ((service, bound), settings)) in
            configs.iter().zip(bound).zip(settings).enumerate()
        {
            let running = services.spawn(index, service, bound.socket, settings)?;
            services.running.push(running);
        }
        services.refresh_admins();
        Ok(services)
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

/// What a reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// Services whose listener was kept (only their settings changed).
    pub kept: usize,
    /// Services started on a new listener.
    pub started: Vec<Listening>,
    /// Services stopped.
    pub stopped: Vec<Listening>,
    /// Established tunnels ended because the new configuration refuses them (`force`).
    pub revoked: usize,
}

impl Services {
    /// Prepares the services of `config` on its bound sockets (from [`bind`]): opens
    /// their log files and builds their policies, without starting any thread (the daemon
    /// drops its privileges between the two steps).
    ///
    /// Every service counts into `metrics`; the web admin's `/R` calls `reload` (`None`: it
    /// answers that this process cannot reload).
    pub fn prepare(
        config: Config,
        bound: Vec<Bound>,
        metrics: Arc<Metrics>,
        reload: Option<Reload>,
    ) -> Result<Prepared, StartError> {
        // Parent weights draw from one generator per process, seeded from the clock (the
        // policy crate never reads one).
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let names = Arc::new(names_of(&config));
        let services = Services {
            smol: None,
            sinks: LogSinks::new(&config.log_retention),
            parent_random: Arc::new(ParentRandom::new(seed)),
            names: (config.names.clone(), config.timeouts.dns, names),
            running: Vec::new(),
            config,
            metrics,
            reload,
        };
        let settings = services.settings_for(&services.config)?;
        Ok(Prepared {
            services,
            bound,
            settings,
        })
    }

    /// What listens where.
    pub fn listening(&self) -> Vec<Listening> {
        self.running.iter().map(|r| r.listening.clone()).collect()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Moves to `config`: listeners that are in both configurations are kept with the new
    /// settings (new connections get them; established ones go on), listeners only in the
    /// old one are closed, listeners only in the new one are opened. Bandwidth buckets and
    /// traffic counters of unchanged rules carry over; log files are reopened.
    ///
    /// Everything that can fail (opening new listeners and log files) is done before
    /// anything changes: on an error the old configuration stays in force, whole.
    ///
    /// A datagram service (`udppm`, `dnspr`) is kept too, with its socket, its open
    /// mappings and its queries in flight: its loop takes the new policy for each new
    /// client or query, and writes to the new log. It is restarted on its address only
    /// when what its loop fixed at its start changed: its command and arguments
    /// (`udppm` target, `-s`; `dnspr` `-s`/`-F`), its `maxconn`, or the name servers
    /// (`nserver`, `nscache`, `nsrecord`, `fakeresolve`, the DNS timeout). If its address
    /// cannot be bound again then, that service alone is lost, and the error says so.
    pub fn reload(&mut self, mut config: Config) -> Result<ReloadReport, StartError> {
        if let Some(b) = Arc::get_mut(&mut config.bandlimits) {
            b.adopt(&self.config.bandlimits);
        }
        if let Some(q) = Arc::get_mut(&mut config.quotas) {
            q.adopt(&self.config.quotas);
        }
        // A datagram loop keeps the name servers of its start (see below).
        let same_names = self.names.0 == config.names && self.names.1 == config.timeouts.dns;
        if !same_names {
            self.names = (
                config.names.clone(),
                config.timeouts.dns,
                Arc::new(names_of(&config)),
            );
        }
        for (path, e) in self.sinks.reopen() {
            eprintln!(
                "triproxy: cannot reopen the log {}: {e}; still writing to the old one",
                path.display()
            );
        }
        let settings = self.settings_for(&config)?;
        // Which new service keeps which running TCP listener.
        let mut kept_index: Vec<Option<usize>> = Vec::with_capacity(config.services.len());
        let mut claimed = vec![false; self.running.len()];
        for service in &config.services {
            let key = Key::of(service);
            let found = key
                .reusable()
                .then(|| {
                    self.running
                        .iter()
                        .enumerate()
                        .find(|(i, r)| {
                            !claimed[*i]
                                && r.key == key
                                && (!key.udp || self.datagram_kept(r, service, same_names))
                        })
                        .map(|(i, _)| i)
                })
                .flatten();
            if let Some(i) = found {
                claimed[i] = true;
            }
            kept_index.push(found);
        }
        // New TCP listeners, bound before anything changes.
        let mut fresh: Vec<Option<Socket>> = Vec::with_capacity(config.services.len());
        for (service, kept) in config.services.iter().zip(&kept_index) {
            let key = Key::of(service);
            let reused_udp = key.udp && self.running.iter().any(|r| r.key == key);
            if kept.is_some() || reused_udp {
                fresh.push(None);
            } else {
                fresh.push(Some(open(service)?));
            }
        }
        // Nothing can fail from here on, except rebinding a restarted datagram service.
        let mut report = ReloadReport::default();
        let old = std::mem::take(&mut self.running);
        let mut keep: Vec<Option<Running>> = Vec::with_capacity(old.len());
        for (i, running) in old.into_iter().enumerate() {
            if claimed[i] {
                keep.push(Some(running));
            } else {
                report.stopped.push(running.listening.clone());
                running.handle.stop();
                keep.push(None);
            }
        }
        let mut first_error = None;
        for (index, (((service, kept), socket), settings)) in config
            .services
            .iter()
            .zip(kept_index)
            .zip(fresh)
            .zip(settings)
            .enumerate()
        {
            if let Some(mut running) = kept.and_then(|i| keep.get_mut(i)).and_then(Option::take) {
                running.index = index;
                let policy = Arc::clone(&settings.policy);
                let key = ServiceKey {
                    service: service.kind.command(),
                    listen: running.listening.addr,
                };
                let hooks = self.metrics.instrument(settings.hooks, key);
                if let Handle::Admin(admin) = &running.handle {
                    // Its state is set once every service runs (`refresh_admins`).
                    let state = Arc::new(self.admin_state(service, &config));
                    admin.replace(state, hooks.clone(), settings.maxconn);
                }
                running
                    .slot
                    .replace(settings.policy, hooks, settings.maxconn);
                report.kept += 1;
                if service.force {
                    // `force`: established tunnels that the new auth chain and ACL refuse
                    // are ended, each logged with the refusal's code.
                    let now = crate::logsink::civil_now();
                    report.revoked += triproxy_runtime_std::live::recheck(&running.slot, |s| {
                        policy.recheck(s, now)
                    });
                }
                self.running.push(running);
                continue;
            }
            let socket = match socket {
                Some(s) => Ok(s),
                None => open(service),
            };
            match socket.and_then(|s| self.spawn(index, service, s, settings)) {
                Ok(running) => {
                    report.started.push(running.listening.clone());
                    self.running.push(running);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        self.config = config;
        self.refresh_admins();
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Whether the running datagram service `running` can go on serving `service` of the
    /// new configuration (see [`Services::reload`]).
    fn datagram_kept(&self, running: &Running, service: &ServiceConfig, same_names: bool) -> bool {
        let Some(old) = self.config.services.get(running.index) else {
            return false;
        };
        same_names && old.kind == service.kind && old.maxconn == service.maxconn
    }

    /// What a web admin at `service` answers with: every running service, the counters and
    /// password table of `config`, the auth chain and ACL in force at its line.
    fn admin_state(&self, service: &ServiceConfig, config: &Config) -> AdminState {
        AdminState {
            services: self
                .running
                .iter()
                .map(|r| ServiceKey {
                    service: r.listening.service,
                    listen: r.listening.addr,
                })
                .collect(),
            quotas: Arc::clone(&config.quotas),
            users: Arc::clone(&config.users),
            auth: service.auth.clone(),
            acl: Arc::from(service.acl.clone()),
            read_only: matches!(service.kind, ServiceKind::Admin { read_only: true }),
            metrics: Arc::clone(&self.metrics),
            reload: self.reload.clone(),
        }
    }

    /// Gives every web admin the current list of services and configuration.
    fn refresh_admins(&self) {
        for running in &self.running {
            if let (Handle::Admin(admin), Some(service)) =
                (&running.handle, self.config.services.get(running.index))
            {
                admin.set_state(Arc::new(self.admin_state(service, &self.config)));
            }
        }
    }

    /// Stops every service (no more clients are accepted; established connections go on).
    pub fn stop_all(&mut self) {
        for running in self.running.drain(..) {
            running.handle.stop();
        }
    }

    /// The policy, hooks and `maxconn` of each service of `config`, in order; fails when
    /// a log file cannot be opened.
    fn settings_for(&self, config: &Config) -> Result<Vec<Settings>, StartError> {
        config
            .services
            .iter()
            .map(|service| {
                let hooks =
                    self.sinks
                        .hooks(&service.log, &service.logformat)
                        .map_err(|error| StartError::Log {
                            origin: service.origin.clone(),
                            error,
                        })?;
                let policy = Arc::new(policy_of(
                    service,
                    config,
                    service.listen.port(),
                    &self.parent_random,
                    &self.names.2,
                ));
                Ok(Settings {
                    policy,
                    hooks,
                    maxconn: usize::try_from(service.maxconn).unwrap_or(usize::MAX),
                })
            })
            .collect()
    }

    fn spawn(
        &self,
        index: usize,
        service: &ServiceConfig,
        socket: Socket,
        settings: Settings,
    ) -> Result<Running, StartError> {
        let fail = |error: io::Error| StartError::Service {
            origin: service.origin.clone(),
            addr: service.listen,
            error,
        };
        let addr = match &socket {
            Socket::Tcp(l) => l.local_addr(),
            Socket::Udp(u) => u.local_addr(),
        }
        .map_err(fail)?;
        // The listen port as bound (it differs from the configured one for port 0).
        let mut policy = (*settings.policy).clone();
        policy.listen_port = addr.port();
        let key = ServiceKey {
            service: service.kind.command(),
            listen: addr,
        };
        let hooks = self.metrics.instrument(settings.hooks, key);
        let slot = ServiceSlot::new(Arc::new(policy), hooks.clone(), settings.maxconn);
        let datagram = service.kind.datagram();
        let udp = datagram.is_some();
        let handle = match (socket, &self.smol, datagram) {
            (Socket::Tcp(listener), _, _) if matches!(service.kind, ServiceKind::Admin { .. }) => {
                // Its state is set once every service runs (`refresh_admins`).
                let state = Arc::new(self.admin_state(service, &self.config));
                Handle::Admin(admin::spawn(listener, state, hooks, settings.maxconn).map_err(fail)?)
            }
            (Socket::Tcp(listener), Some(rt), _) => Handle::Smol(
                triproxy_runtime_smol::spawn_service(rt, listener, Arc::clone(&slot))
                    .map_err(fail)?,
            ),
            (Socket::Tcp(listener), None, _) => Handle::Std(
                triproxy_runtime_std::spawn_service(listener, Arc::clone(&slot)).map_err(fail)?,
            ),
            (Socket::Udp(socket), Some(rt), Some(kind)) => Handle::Smol(
                triproxy_runtime_smol::spawn_datagram_service(rt, socket, Arc::clone(&slot), kind)
                    .map_err(fail)?,
            ),
            (Socket::Udp(socket), None, Some(kind)) => Handle::Std(
                triproxy_runtime_std::spawn_datagram_service(socket, Arc::clone(&slot), kind)
                    .map_err(fail)?,
            ),
            (Socket::Udp(_), _, None) => {
                return Err(fail(io::Error::other("a UDP socket for a TCP service")))
            }
        };
        Ok(Running {
            key: Key::of(service),
            index,
            slot,
            handle,
            listening: Listening {
                service: service.kind.command(),
                addr,
                udp,
            },
        })
    }
}
