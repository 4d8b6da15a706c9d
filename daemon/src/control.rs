//! The daemon's life once its services run: reloads (SIGUSR1 as in 3proxy, SIGHUP as most
//! daemons, a change to a `monitor`ed file) and the orderly stop (SIGTERM, SIGINT).
//!
//! Every event goes through one channel to the main thread, which does the work, so a
//! reload never runs twice at once and a burst of signals is one reload.

use crate::config::{self, Config, ConfigError};
use crate::counters::{local_now, Accounting};
use crate::run::Services;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How often `monitor`ed files are looked at (3proxy: once a minute). A `stat` each is
/// cheap; two seconds keeps an edit-and-save reload prompt.
pub const MONITOR_INTERVAL: Duration = Duration::from_secs(2);

/// How long an orderly stop lets established connections finish by themselves before it
/// ends them (3proxy waits about 3 s).
pub const DRAIN_GRACE: Duration = Duration::from_secs(3);

/// How long an orderly stop then waits for the connections it ended to write their log
/// records (a tunnel whose client is gone may still wait up to the `timeouts` LINGER value
/// for its server). The process exits after at most `DRAIN_GRACE + DRAIN_FINAL`.
pub const DRAIN_FINAL: Duration = Duration::from_secs(6);

/// Where the configuration comes from, to read it again on a reload.
#[derive(Debug, Clone)]
pub enum Source {
    /// The embedded default (no arguments).
    Embedded,
    /// The standalone form (`triproxy socks -p1080 ...`).
    Standalone {
        /// The service.
        service: String,
        /// Its options.
        options: Vec<String>,
    },
    /// A configuration file.
    File(PathBuf),
}

impl Source {
    /// Reads the configuration, with every error.
    pub fn load(&self) -> Result<Config, Vec<ConfigError>> {
        match self {
            Source::Embedded => config::parse_str_all(
                crate::EMBEDDED_DEFAULT,
                "<embedded default>",
                std::path::Path::new("."),
            ),
            Source::Standalone { service, options } => {
                config::parse_standalone(service, options).map_err(|e| vec![e])
            }
            Source::File(path) => config::load_all(path),
        }
    }
}

/// Something the main thread must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Read the configuration again.
    Reload(Cause),
    /// Stop in order.
    Stop(&'static str),
}

/// Why a reload was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// A signal (its name).
    Signal(&'static str),
    /// A monitored file changed.
    Monitor(PathBuf),
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cause::Signal(name) => write!(f, "{name}"),
            Cause::Monitor(path) => write!(f, "{} changed", path.display()),
        }
    }
}

/// Catches SIGUSR1, SIGHUP, SIGTERM and SIGINT. Call before any thread starts, so that no
/// thread runs with the default actions (which would kill the process).
pub fn catch_signals() -> std::io::Result<async_signal::Signals> {
    use async_signal::{Signal, Signals};
    Signals::new([Signal::Usr1, Signal::Hup, Signal::Term, Signal::Int])
}

/// Forwards caught signals to `events` from a thread of its own.
pub fn forward_signals(
    signals: async_signal::Signals,
    events: Sender<Event>,
) -> std::io::Result<()> {
    use async_signal::Signal;
    use futures_lite::StreamExt as _;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals;
            while let Some(Ok(signal)) = futures_lite::future::block_on(signals.next()) {
                let event = match signal {
                    Signal::Usr1 => Event::Reload(Cause::Signal("SIGUSR1")),
                    Signal::Hup => Event::Reload(Cause::Signal("SIGHUP")),
                    Signal::Term => Event::Stop("SIGTERM"),
                    _ => Event::Stop("SIGINT"),
                };
                if events.send(event).is_err() {
                    return;
                }
            }
        })?;
    Ok(())
}

/// The files to watch, replaced at each reload.
pub type Watched = Arc<Mutex<Vec<PathBuf>>>;

/// What is known of a watched file: modification time and size (`None`: missing).
fn look(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(crate::config::in_root(path)).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watches the `monitor`ed files from a thread of its own: a change of one's modification
/// time or size (appearing and disappearing included) asks for a reload.
///
/// The files are first looked at before this returns, so a change right after start is
/// seen.
pub fn watch(files: Watched, events: Sender<Event>) -> std::io::Result<()> {
    let mut seen: Vec<(PathBuf, Option<(SystemTime, u64)>)> = files
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|p| (p.clone(), look(p)))
        .collect();
    std::thread::Builder::new()
        .name("monitor".into())
        .spawn(move || {
            loop {
                std::thread::sleep(MONITOR_INTERVAL);
                let now: Vec<PathBuf> = files.lock().unwrap_or_else(|p| p.into_inner()).clone();
                // Files added by a reload start from what they are now.
                let mut next = Vec::with_capacity(now.len());
                let mut changed = None;
                for path in now {
                    let state = look(&path);
                    match seen.iter().find(|(p, _)| *p == path) {
                        Some((_, before)) if *before != state => {
                            changed.get_or_insert(path.clone());
                        }
                        _ => {}
                    }
                    next.push((path, state));
                }
                seen = next;
                if let Some(path) = changed {
                    if events.send(Event::Reload(Cause::Monitor(path))).is_err() {
                        return;
                    }
                }
            }
        })?;
    Ok(())
}

/// Runs the daemon until it is told to stop: reloads on request, then stops in order.
pub fn run(
    source: &Source,
    services: &mut Services,
    accounting: &Arc<Mutex<Accounting>>,
    watched: &Watched,
    events: &Receiver<Event>,
) -> &'static str {
    loop {
        let Ok(event) = events.recv() else {
            return "no more events";
        };
        match event {
            Event::Stop(signal) => return signal,
            Event::Reload(cause) => {
                // Requests that came meanwhile are served by this one reload, but a stop
                // among them still stops.
                let mut stop = None;
                while let Ok(more) = events.try_recv() {
                    if let Event::Stop(signal) = more {
                        stop = Some(signal);
                    }
                }
                crate::notify::reloading();
                let outcome = reload(source, services, accounting, watched, &cause);
                crate::notify::reloaded(&outcome);
                if let Some(signal) = stop {
                    return signal;
                }
            }
        }
    }
}

/// One reload; failures are printed and the configuration in force stays. Returns the
/// outcome in a few words (the service manager's status line).
pub fn reload(
    source: &Source,
    services: &mut Services,
    accounting: &Arc<Mutex<Accounting>>,
    watched: &Watched,
    cause: &Cause,
) -> String {
    // `config FILE` names the file a reload reads (3proxy), e.g. inside a chroot.
    let source = match &services.config().process.config_file {
        Some(path) => Source::File(path.clone()),
        None => source.clone(),
    };
    let config = match source.load() {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("triproxy: reload ({cause}): {e}");
            }
            eprintln!(
                "triproxy: reload ({cause}) refused: {} error(s); the previous configuration stays in force",
                errors.len()
            );
            return format!(
                "reload refused ({} error(s)); previous configuration in force",
                errors.len()
            );
        }
    };
    for w in &config.warnings {
        eprintln!("triproxy: {w}");
    }
    crate::process::run_system(&config.process);
    let monitor = config.process.monitor.clone();
    match services.reload(config) {
        Ok(report) => {
            for l in &report.stopped {
                eprintln!("triproxy: {} on {} stopped", l.service, l.addr);
            }
            for l in &report.started {
                eprintln!("triproxy: {} listening on {}", l.service, l.addr);
            }
            eprintln!(
                "triproxy: reloaded ({cause}): {} service(s) kept their listener, {} started, {} stopped; {} established connection(s) closed (force)",
                report.kept,
                report.started.len(),
                report.stopped.len(),
                report.revoked
            );
        }
        Err(e) => {
            eprintln!("triproxy: reload ({cause}): {e}");
            return format!("reload failed: {e}");
        }
    }
    *watched.lock().unwrap_or_else(|p| p.into_inner()) = monitor;
    let mut acc = accounting.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = acc.reload(services.config(), &local_now()) {
        eprintln!("triproxy: {e}");
    }
    format!(
        "reloaded; {} service(s) listening",
        services.listening().len()
    )
}

/// The orderly stop: no new clients; established connections get [`DRAIN_GRACE`] to end,
/// then the rest are ended (each still writes its log record, within [`DRAIN_FINAL`]);
/// the counters are saved.
pub fn stop(services: &mut Services, accounting: &Arc<Mutex<Accounting>>) {
    crate::notify::stopping();
    services.stop_all();
    let wait_until_idle = |limit: Duration| {
        let start = Instant::now();
        while triproxy_runtime_std::live::count() > 0 && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_until_idle(DRAIN_GRACE);
    if triproxy_runtime_std::live::end_all() > 0 {
        wait_until_idle(DRAIN_FINAL);
    }
    let mut acc = accounting.lock().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = acc.minute(&local_now()) {
        eprintln!("triproxy: {e}");
    }
    crate::process::remove_pidfile(&services.config().process);
}

/// A new event channel.
pub fn channel() -> (Sender<Event>, Receiver<Event>) {
    mpsc::channel()
}
