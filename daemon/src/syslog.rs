//! `log @IDENT`: records sent to the local syslog daemon as RFC 3164 datagrams, the way
//! glibc's `syslog()` sends them for 3proxy (`openlog(ident, LOG_PID, LOG_DAEMON)`, then
//! `syslog(LOG_INFO, "%s", record)`).
//!
//! A datagram is `<30>Dec  2 18:05:42 IDENT[PID]: RECORD`: priority 30 (facility
//! `LOG_DAEMON` = 3, severity `LOG_INFO` = 6), the local time as glibc writes it (`%h %e
//! %T`), the ident with the process id, and the record, with no newline and no NUL. It goes
//! to the Unix datagram socket `/dev/log`, or to the path in the environment variable
//! [`SOCKET_ENV`] (for tests, or a chroot's socket).
//!
//! If the socket is missing or refuses, the record is dropped (a log must never stop the
//! proxy) and one notice is printed; the socket is tried again on later records, so syslog
//! started after the daemon is picked up. This is not a syslog client library: no TCP, no
//! RFC 5424, no remote hosts.

use chrono::NaiveDateTime;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::Mutex;

/// The socket the records go to when [`SOCKET_ENV`] is not set.
pub const DEFAULT_SOCKET: &str = "/dev/log";

/// Environment variable naming another syslog socket than [`DEFAULT_SOCKET`].
pub const SOCKET_ENV: &str = "TRIPROXY_SYSLOG_SOCKET";

/// Priority of every record: `LOG_DAEMON` (3 << 3) | `LOG_INFO` (6).
pub const PRIORITY: u8 = 30;

/// One datagram as glibc's `syslog()` formats it for a local socket.
///
/// ```
/// let t = chrono::NaiveDate::from_ymd_opt(2026, 12, 2).unwrap().and_hms_opt(8, 5, 42).unwrap();
/// let d = triproxy::syslog::datagram("3proxy", 77, t, "rec ord");
/// assert_eq!(d, b"<30>Dec  2 08:05:42 3proxy[77]: rec ord");
/// ```
pub fn datagram(ident: &str, pid: u32, local: NaiveDateTime, record: &str) -> Vec<u8> {
    let stamp = local.format("%b %e %H:%M:%S");
    format!("<{PRIORITY}>{stamp} {ident}[{pid}]: {record}").into_bytes()
}

/// What the sender knows about its socket.
#[derive(Debug)]
struct State {
    socket: Option<UnixDatagram>,
    /// Whether the "cannot reach syslog" notice was printed.
    warned: bool,
}

/// Sends records to the syslog socket; shared by every service that logs to `@IDENT`.
#[derive(Debug)]
pub struct Syslog {
    ident: String,
    path: PathBuf,
    pid: u32,
    state: Mutex<State>,
}

impl Syslog {
    /// A sender for `ident` to the socket named by [`SOCKET_ENV`], else [`DEFAULT_SOCKET`].
    /// Nothing is opened until the first record.
    pub fn new(ident: &str) -> Syslog {
        let path = std::env::var_os(SOCKET_ENV)
            .filter(|p| !p.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from);
        Syslog {
            ident: ident.to_owned(),
            path,
            pid: std::process::id(),
            state: Mutex::new(State {
                socket: None,
                warned: false,
            }),
        }
    }

    fn connect(&self) -> std::io::Result<UnixDatagram> {
        let s = UnixDatagram::unbound()?;
        s.connect(&self.path)?;
        Ok(s)
    }

    /// Sends one record stamped with local time `local`; `notice` gets the one message
    /// printed when syslog cannot be reached.
    pub fn send(&self, local: NaiveDateTime, record: &str, notice: &dyn Fn(&str)) {
        let bytes = datagram(&self.ident, self.pid, local, record);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        // A socket that stopped working (syslog restarted) is replaced once.
        for _ in 0..2 {
            if state.socket.is_none() {
                match self.connect() {
                    Ok(s) => state.socket = Some(s),
                    Err(e) => {
                        if !state.warned {
                            state.warned = true;
                            notice(&format!(
                                "cannot send log records to syslog at {}: {e}; they are dropped until it can be reached",
                                self.path.display()
                            ));
                        }
                        return;
                    }
                }
            }
            match state.socket.as_ref().map(|s| s.send(&bytes)) {
                Some(Ok(_)) => return,
                _ => state.socket = None,
            }
        }
    }

    /// Closes the socket, so the next record connects again (reload).
    pub fn reopen(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.socket = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn glibc_format() {
        let t = NaiveDate::from_ymd_opt(2026, 1, 12)
            .unwrap()
            .and_hms_opt(23, 0, 1)
            .unwrap();
        assert_eq!(
            datagram("proxy", 1, t, "a b"),
            b"<30>Jan 12 23:00:01 proxy[1]: a b".to_vec()
        );
    }

    #[test]
    fn sends_to_a_socket_and_warns_once_when_missing() {
        let dir = std::env::temp_dir().join(format!("triproxy-syslog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let sender = Syslog {
            ident: "t".to_owned(),
            path: path.clone(),
            pid: 9,
            state: Mutex::new(State {
                socket: None,
                warned: false,
            }),
        };
        let t = NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap();
        let notices = Mutex::new(Vec::new());
        let notice = |s: &str| notices.lock().unwrap().push(s.to_owned());
        sender.send(t, "lost 1", &notice);
        sender.send(t, "lost 2", &notice);
        assert_eq!(notices.lock().unwrap().len(), 1);
        let server = UnixDatagram::bind(&path).unwrap();
        sender.send(t, "hello", &notice);
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<30>Jan  2 03:04:05 t[9]: hello");
        // Syslog restarted: a new socket at the same path is found again.
        drop(server);
        std::fs::remove_file(&path).unwrap();
        let server = UnixDatagram::bind(&path).unwrap();
        sender.send(t, "again", &notice);
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<30>Jan  2 03:04:05 t[9]: again");
        assert_eq!(notices.lock().unwrap().len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
