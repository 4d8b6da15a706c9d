//! 3proxy's `logformat`: parsing a format string once and rendering one log record per
//! connection with it.
//!
//! The syntax is the one of 3proxy's `logformat` command and `-f` service option (3proxy
//! `src/log.c`): an optional replacement prefix `-CHARS+R`, then one time-zone selector
//! character (`L` local time, `G` GMT) that is not printed, then text with `%` macros. The
//! default format, `G%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %T`, renders like
//! `261121102943.351 23228 00000 alice 127.0.0.1:33054 127.0.0.1:28081 148 286 0 GET http://127.0.0.1:28081/x HTTP/1.1`.
//!
//! This module only turns a [`LogFields`] record into text. It does not choose where the
//! text goes (stdout, a file, nothing: see `config::LogTarget`), it does not rotate files,
//! and it does not produce SQL for ODBC logging (3proxy's doubled-quote escaping is not
//! implemented). It reads no clock: the record carries its own wall-clock time.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use triproxy::logformat::{LogFields, LogFormat};
//!
//! let format = LogFormat::parse("G%Y-%m-%d %H:%M:%S %N %E %U %C %T").unwrap();
//! let rec = LogFields {
//!     time: SystemTime::UNIX_EPOCH + Duration::from_secs(86_400),
//!     text: "CONNECT example.org:443",
//!     ..LogFields::new("SOCK5", "127.0.0.1:4000".parse().unwrap())
//! };
//! let mut line = String::new();
//! format.render(&rec, &mut line);
//! assert_eq!(line, "1970-01-02 00:00:00 SOCK5 00000 - 127.0.0.1 CONNECT example.org:443");
//! ```

use chrono::{DateTime, Datelike, Local, NaiveDateTime, Timelike, Utc};
use core::fmt;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use triproxy_policy::reason::Reason;
use triproxy_wire::LogCode;

/// Longest format string accepted, in bytes (3proxy renders into an 8 KiB buffer, so a
/// longer format could never be printed whole).
pub const MAX_FORMAT_LEN: usize = 8192;

/// Most bytes one rendered record may add to the output; the rest is cut off at a
/// character boundary (3proxy stops at about 4 KiB; long `%T` texts are the usual cause).
pub const MAX_RECORD_LEN: usize = 8192;

/// Latest time rendered as is: 9999-12-31T23:59:59Z. Later times are printed as this one,
/// so that `%Y` always has four digits; earlier than 1970 is printed as the epoch.
const MAX_UNIX_SECS: u64 = 253_402_300_799;

/// The 3proxy default format (`DEFLOGFORMAT` in 3proxy `src/proxy.h`).
const DEFAULT_3PROXY: &str = "G%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %T";

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One of 3proxy's date and time macros, `%y %Y %m %o %d %H %M %S` (3proxy `src/log.c
/// dobuf2`): the one renderer of these fields for log records and for log file name
/// templates (`log /var/log/3proxy-%y%m%d.log D`, see [`crate::logrotate::LogName`]).
///
/// They are the same fields on purpose: 3proxy renders a file name template with its
/// record renderer (`src/conf.c dologname` calls `dobuf2` with the name as the format).
/// What differs lies around the fields, not in them: a template has no time-zone
/// character and is always in local time, and triproxy refuses its other macros (3proxy
/// would fill them from an empty connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum DateField {
    /// `%y`: year, 2 digits.
    Year2,
    /// `%Y`: year, 4 digits.
    Year4,
    /// `%m`: month, 01..12.
    Month,
    /// `%o`: month, `Jan`..`Dec`.
    MonthName,
    /// `%d`: day of the month, 2 digits.
    Day,
    /// `%H`: hour, 2 digits.
    Hour,
    /// `%M`: minute, 2 digits.
    Minute,
    /// `%S`: second, 2 digits.
    Second,
}

impl DateField {
    /// The field `%c` names, if `c` is one of `y Y m o d H M S`.
    pub(crate) fn from_char(c: char) -> Option<DateField> {
        Some(match c {
            'y' => DateField::Year2,
            'Y' => DateField::Year4,
            'm' => DateField::Month,
            'o' => DateField::MonthName,
            'd' => DateField::Day,
            'H' => DateField::Hour,
            'M' => DateField::Minute,
            'S' => DateField::Second,
            _ => return None,
        })
    }

    /// Writes this field of `t` as 3proxy prints it.
    pub(crate) fn write(self, t: &NaiveDateTime, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            DateField::Year2 => write!(out, "{:02}", t.year().rem_euclid(100)),
            DateField::Year4 => write!(out, "{:04}", t.year()),
            DateField::Month => write!(out, "{:02}", t.month()),
            DateField::MonthName => {
                let idx = usize::try_from(t.month0()).unwrap_or(0);
                out.write_str(MONTHS.get(idx).copied().unwrap_or("Jan"))
            }
            DateField::Day => write!(out, "{:02}", t.day()),
            DateField::Hour => write!(out, "{:02}", t.hour()),
            DateField::Minute => write!(out, "{:02}", t.minute()),
            DateField::Second => write!(out, "{:02}", t.second()),
        }
    }
}

/// Which clock the date and time macros show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeZone {
    /// The machine's local time zone (first format character `L`).
    Local,
    /// UTC (first format character `G`).
    Gmt,
}

/// Why a string is not a usable log format.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormatError {
    /// Nothing after the optional replacement prefix.
    Empty,
    /// Longer than [`MAX_FORMAT_LEN`] bytes.
    TooLong {
        /// Length of the format in bytes.
        len: usize,
    },
    /// The format starts with `-` (a replacement prefix) but has no `+R` after the
    /// characters to replace.
    BadReplacementPrefix,
}

impl fmt::Display for LogFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogFormatError::Empty => write!(f, "empty log format"),
            LogFormatError::TooLong { len } => {
                write!(f, "log format of {len} bytes (at most {MAX_FORMAT_LEN})")
            }
            LogFormatError::BadReplacementPrefix => write!(
                f,
                "log format starts with `-` but has no `+R` ending the replacement prefix `-CHARS+R`"
            ),
        }
    }
}

impl std::error::Error for LogFormatError {}

/// One connection's worth of data for a log record (3proxy's `struct clientparam` as seen by
/// `dobuf2`). Missing addresses print as `0.0.0.0` (port `0`), a missing user as `-`.
#[derive(Debug, Clone)]
pub struct LogFields<'a> {
    /// Wall-clock time of the record (the caller reads the clock). `%t`, `%.`, the date
    /// macros and `%z` come from it.
    pub time: SystemTime,
    /// How long the connection or request took (`%D`, and the rates `%b`/`%B`).
    pub duration: Duration,
    /// Service name as 3proxy's `%N` prints it: `SOCK5`, `SOCK4`, `SOC45`, `SOCKS`, ...
    pub service: &'a str,
    /// Port the service listens on (`%p`).
    pub listen_port: u16,
    /// 3proxy error code (`%E`).
    pub code: LogCode,
    /// Authenticated or claimed user name (`%U`).
    pub user: Option<&'a str>,
    /// Client address (`%C`, `%c`).
    pub client: SocketAddr,
    /// Address actually connected to: target or parent proxy (`%R`, `%r`).
    pub remote: Option<SocketAddr>,
    /// Local address the client connected to (`%i`).
    pub internal: Option<IpAddr>,
    /// Local address used for the outgoing connection (`%e`).
    pub external: Option<IpAddr>,
    /// Host name the client asked for, if it sent one (`%n`).
    pub requested_host: Option<&'a str>,
    /// Requested (or resolved) destination address (`%Q`, `%q`, and `%n` without a name).
    pub requested: Option<SocketAddr>,
    /// Requested destination port when it is known without an address (`%q`; takes
    /// precedence over the port of `requested`).
    pub requested_port: Option<u16>,
    /// Bytes received from the server side (`%I`).
    pub bytes_in: u64,
    /// Bytes sent to the server side (`%O`).
    pub bytes_out: u64,
    /// Number of parent proxies used (`%h`).
    pub hops: u32,
    /// Free text: `CONNECT host:port`, an HTTP request line, a status message (`%T`).
    pub text: &'a str,
    /// The typed cause of a failure (`%X`, and the JSON `reason`); `None` on success or
    /// when the code says it all.
    pub reason: Option<&'a Reason>,
}

impl<'a> LogFields<'a> {
    /// A record for `service` and `client` with every other field empty: time at the Unix
    /// epoch, zero duration, code 0, no user, no addresses, no bytes, no text.
    pub fn new(service: &'a str, client: SocketAddr) -> Self {
        LogFields {
            time: UNIX_EPOCH,
            duration: Duration::ZERO,
            service,
            listen_port: 0,
            code: LogCode::SUCCESS,
            user: None,
            client,
            remote: None,
            internal: None,
            external: None,
            requested_host: None,
            requested: None,
            requested_port: None,
            bytes_in: 0,
            bytes_out: 0,
            hops: 0,
            text: "",
            reason: None,
        }
    }

    /// A short readable reason for the record: the typed reason if there is one, else
    /// what the code's range means (3proxy.md section 10). Never empty.
    pub fn reason_text(&self) -> String {
        match self.reason {
            Some(r) => r.to_string(),
            None => code_meaning(self.code).to_owned(),
        }
    }
}

/// What a 3proxy code means, by range, for records without a typed reason.
pub fn code_meaning(code: LogCode) -> &'static str {
    match code.get() {
        0 => "ok",
        1 => "denied by ACL",
        2 => "redirected",
        3 => "no ACL entry allows this request",
        4..=9 => "authentication failed",
        10 => "traffic limit exceeded",
        11..=14 => "connection to the target failed",
        15..=29 => "connection failed",
        30..=79 => "parent proxy failed",
        90..=99 => "relay ended abnormally",
        100 => "host not found",
        200..=699 => "service protocol error",
        700..=899 => "service failed",
        999 => "not implemented",
        _ => "failed",
    }
}

/// A parsed 3proxy log format, ready to render records.
///
/// Macros (3proxy `src/log.c`):
///
/// | macro | value |
/// |---|---|
/// | `%%` | `%` |
/// | `%y` `%Y` `%m` `%o` `%d` | year (2 / 4 digits), month (2 digits / `Jan`..`Dec`), day |
/// | `%H` `%M` `%S` | hour, minute, second (2 digits) |
/// | `%t` `%.` `%z` | Unix seconds (10 digits), milliseconds (3 digits), UTC offset `+HHMM` |
/// | `%D` `%b` `%B` | duration in ms; bytes/s sent to the server (`%O`/duration), received from it (`%I`/duration) |
/// | `%U` `%n` `%N` | user or `-`; requested host name (or `[IP]`); service name |
/// | `%p` `%E` | listen port; error code, 5 digits |
/// | `%C` `%c` `%R` `%r` | client IP and port; remote IP and port |
/// | `%i` `%e` `%Q` `%q` | internal IP; external IP; requested IP and port |
/// | `%I` `%O` `%h` `%T` | bytes in, bytes out, parent hops, text |
/// | `%N1-N2T` | words N1 to N2 (1-based, whitespace-separated) of the text |
/// | `%L` | always `0` (undocumented in 3proxy) |
/// | `%X` | triproxy's own: a short readable reason next to `%E` (`ok`, `denied by ACL`, `connect failed: refused`, ...) |
///
/// Any other `%x` prints `x`; a `%` at the very end prints `%`. With a replacement prefix
/// `-CHARS+R`, every character of CHARS and every control character below 0x20 in `%U`,
/// `%n`, `%T` and `%N1-N2T` is printed as R (`"- +_L..."` turns spaces into `_`).
#[derive(Clone, PartialEq, Eq)]
pub struct LogFormat {
    source: Box<str>,
    zone: TimeZone,
    replace: Option<Replacement>,
    items: Vec<Item>,
    style: Style,
}

/// Whether records are 3proxy text or triproxy's JSON objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A 3proxy `logformat` string with `%` macros.
    Text,
    /// One JSON object per record, fixed field names (`logjson`; see [`crate::logjson`]).
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Replacement {
    chars: Vec<char>,
    with: char,
}

impl Replacement {
    fn apply(&self, c: char) -> char {
        if (c as u32) < 0x20 || self.chars.contains(&c) {
            self.with
        } else {
            c
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Macro {
    Date(DateField),
    UnixSeconds,
    Millis,
    Offset,
    DurationMs,
    RateOut,
    RateIn,
    User,
    RequestedHost,
    ServiceName,
    ListenPort,
    Code,
    ClientIp,
    ClientPort,
    RemoteIp,
    RemotePort,
    InternalIp,
    ExternalIp,
    RequestedIp,
    RequestedPort,
    BytesIn,
    BytesOut,
    Hops,
    Text,
    Cycles,
    Reason,
}

impl Macro {
    fn from_char(c: char) -> Option<Macro> {
        if let Some(field) = DateField::from_char(c) {
            return Some(Macro::Date(field));
        }
        Some(match c {
            't' => Macro::UnixSeconds,
            '.' => Macro::Millis,
            'z' => Macro::Offset,
            'D' => Macro::DurationMs,
            'b' => Macro::RateOut,
            'B' => Macro::RateIn,
            'U' => Macro::User,
            'n' => Macro::RequestedHost,
            'N' => Macro::ServiceName,
            'p' => Macro::ListenPort,
            'E' => Macro::Code,
            'C' => Macro::ClientIp,
            'c' => Macro::ClientPort,
            'R' => Macro::RemoteIp,
            'r' => Macro::RemotePort,
            'i' => Macro::InternalIp,
            'e' => Macro::ExternalIp,
            'Q' => Macro::RequestedIp,
            'q' => Macro::RequestedPort,
            'I' => Macro::BytesIn,
            'O' => Macro::BytesOut,
            'h' => Macro::Hops,
            'T' => Macro::Text,
            'L' => Macro::Cycles,
            // triproxy's own: 3proxy prints `X` for `%X`.
            'X' => Macro::Reason,
            _ => return None,
        })
    }

    fn needs_time(self) -> bool {
        matches!(
            self,
            Macro::Date(_) | Macro::UnixSeconds | Macro::Millis | Macro::Offset
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(String),
    Macro(Macro),
    /// `%N1-N2T`: words `from..=to` (1-based) of the text.
    Words {
        from: u32,
        to: u32,
    },
}

impl fmt::Debug for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogFormat({:?})", self.source)
    }
}

impl fmt::Display for LogFormat {
    /// The format string as it was written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Default for LogFormat {
    fn default() -> Self {
        LogFormat::default_3proxy()
    }
}

impl LogFormat {
    /// Parses a format as given to 3proxy's `logformat` command or `-f` option.
    ///
    /// Errors: longer than [`MAX_FORMAT_LEN`] bytes, empty, or a `-` prefix without `+R`. The
    /// first character (after the prefix) selects the zone and is not printed: `G` GMT,
    /// anything else local time (case-insensitive, as in 3proxy).
    ///
    /// ```
    /// use triproxy::logformat::{LogFormat, TimeZone};
    /// let f = LogFormat::parse("- +_L%t %T").unwrap();
    /// assert_eq!(f.time_zone(), TimeZone::Local);
    /// // 3proxy's rule: the first character is the zone whatever it is (here local time).
    /// assert_eq!(LogFormat::parse("%d-%m-%Y").unwrap().time_zone(), TimeZone::Local);
    /// ```
    pub fn parse(s: &str) -> Result<LogFormat, LogFormatError> {
        if s.len() > MAX_FORMAT_LEN {
            return Err(LogFormatError::TooLong { len: s.len() });
        }
        let (replace, rest) = match s.strip_prefix('-') {
            Some(after_dash) => {
                let (chars, after_plus) = after_dash
                    .split_once('+')
                    .ok_or(LogFormatError::BadReplacementPrefix)?;
                let mut it = after_plus.chars();
                let with = it.next().ok_or(LogFormatError::BadReplacementPrefix)?;
                (
                    Some(Replacement {
                        chars: chars.chars().collect(),
                        with,
                    }),
                    it.as_str(),
                )
            }
            None => (None, s),
        };
        let mut chars = rest.chars();
        let zone = match chars.next() {
            None => return Err(LogFormatError::Empty),
            Some('G' | 'g') => TimeZone::Gmt,
            // `L`, and as in 3proxy any other character: consumed, local time. The
            // configuration reader warns about the latter.
            Some(_) => TimeZone::Local,
        };
        Ok(LogFormat {
            source: s.into(),
            zone,
            replace,
            items: parse_items(chars.as_str()),
            style: Style::Text,
        })
    }

    /// 3proxy's default format: `G%y%m%d%H%M%S.%. %p %E %U %C:%c %R:%r %O %I %h %T`.
    pub fn default_3proxy() -> LogFormat {
        LogFormat {
            source: DEFAULT_3PROXY.into(),
            zone: TimeZone::Gmt,
            replace: None,
            items: parse_items(DEFAULT_3PROXY.get(1..).unwrap_or_default()),
            style: Style::Text,
        }
    }

    /// triproxy's JSON records (the `logjson` command): one object per line, every string
    /// escaped, so that odd user or host names cannot break a consumer (3proxy issue #641).
    pub fn json() -> LogFormat {
        LogFormat {
            source: "logjson".into(),
            zone: TimeZone::Gmt,
            replace: None,
            items: Vec::new(),
            style: Style::Json,
        }
    }

    /// Text or JSON.
    pub fn style(&self) -> Style {
        self.style
    }

    /// Which clock the date macros use.
    pub fn time_zone(&self) -> TimeZone {
        self.zone
    }

    /// The format string as written (including prefix and time-zone character).
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Appends one record rendered with this format to `out` (no line ending). At most
    /// [`MAX_RECORD_LEN`] bytes are appended.
    pub fn render(&self, rec: &LogFields<'_>, out: &mut String) {
        if self.style == Style::Json {
            crate::logjson::render(rec, out);
            return;
        }
        let mut w = Budget {
            limit: out.len().saturating_add(MAX_RECORD_LEN),
            out,
        };
        let mut civil: Option<Civil> = None;
        for item in &self.items {
            if w.is_full() {
                break;
            }
            match item {
                Item::Literal(s) => w.push_str(s),
                Item::Words { from, to } => {
                    write_words(&mut w, rec.text, *from, *to, self.replace.as_ref())
                }
                Item::Macro(m) => {
                    let civil = if m.needs_time() {
                        *civil.get_or_insert_with(|| Civil::new(rec.time, self.zone))
                    } else {
                        Civil::EPOCH
                    };
                    self.write_macro(&mut w, *m, rec, &civil);
                }
            }
        }
    }

    fn write_macro(&self, w: &mut Budget<'_>, m: Macro, rec: &LogFields<'_>, c: &Civil) {
        let repl = self.replace.as_ref();
        // `Budget` never fails to write; a full budget just drops the rest.
        let _ = match m {
            Macro::Date(field) => field.write(&c.local, w),
            Macro::UnixSeconds => write!(w, "{:010}", c.unix_secs),
            Macro::Millis => write!(w, "{:03}", c.millis),
            Macro::Offset => {
                let sign = if c.offset_secs < 0 { '-' } else { '+' };
                let abs = c.offset_secs.unsigned_abs() / 60;
                write!(w, "{sign}{:02}{:02}", abs / 60, abs % 60)
            }
            Macro::DurationMs => write!(w, "{}", rec.duration.as_millis()),
            Macro::RateOut => write!(w, "{}", rate(rec.bytes_out, rec.duration)),
            Macro::RateIn => write!(w, "{}", rate(rec.bytes_in, rec.duration)),
            Macro::User => {
                match rec.user.filter(|u| !u.is_empty()) {
                    Some(u) => write_replaced(w, u, repl),
                    None => w.push('-'),
                }
                Ok(())
            }
            Macro::RequestedHost => {
                match rec
                    .requested_host
                    .filter(|h| !h.is_empty() && !h.contains(':'))
                {
                    Some(h) => write_replaced(w, h, repl),
                    None => {
                        let ip = rec.requested.map(|sa| sa.ip()).unwrap_or(UNSPECIFIED);
                        let _ = write!(w, "[{ip}]");
                    }
                }
                Ok(())
            }
            Macro::ServiceName => w.write_str(rec.service),
            Macro::ListenPort => write!(w, "{}", rec.listen_port),
            Macro::Code => write!(w, "{}", rec.code),
            Macro::ClientIp => write!(w, "{}", rec.client.ip()),
            Macro::ClientPort => write!(w, "{}", rec.client.port()),
            Macro::RemoteIp => write!(w, "{}", rec.remote.map_or(UNSPECIFIED, |sa| sa.ip())),
            Macro::RemotePort => write!(w, "{}", rec.remote.map_or(0, |sa| sa.port())),
            Macro::InternalIp => write!(w, "{}", rec.internal.unwrap_or(UNSPECIFIED)),
            Macro::ExternalIp => write!(w, "{}", rec.external.unwrap_or(UNSPECIFIED)),
            Macro::RequestedIp => {
                write!(w, "{}", rec.requested.map_or(UNSPECIFIED, |sa| sa.ip()))
            }
            Macro::RequestedPort => write!(
                w,
                "{}",
                rec.requested_port
                    .or(rec.requested.map(|sa| sa.port()))
                    .unwrap_or(0)
            ),
            Macro::BytesIn => write!(w, "{}", rec.bytes_in),
            Macro::BytesOut => write!(w, "{}", rec.bytes_out),
            Macro::Hops => write!(w, "{}", rec.hops),
            Macro::Text => {
                write_replaced(w, rec.text, repl);
                Ok(())
            }
            Macro::Cycles => w.write_str("0"),
            Macro::Reason => {
                write_replaced(w, &rec.reason_text(), repl);
                Ok(())
            }
        };
    }
}

const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Splits the text after the time-zone character into literals and macros.
fn parse_items(s: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut lit = String::new();
    let mut rest = s;
    while let Some(pos) = rest.find('%') {
        lit.push_str(rest.get(..pos).unwrap_or_default());
        let after = rest.get(pos + 1..).unwrap_or_default();
        let mut chars = after.chars();
        let Some(c) = chars.next() else {
            // A trailing `%` prints itself.
            lit.push('%');
            rest = "";
            break;
        };
        rest = chars.as_str();
        if let Some(m) = Macro::from_char(c) {
            flush(&mut items, &mut lit);
            items.push(Item::Macro(m));
        } else if let Some((from, to, len)) = word_range(after) {
            flush(&mut items, &mut lit);
            items.push(Item::Words { from, to });
            rest = after.get(len..).unwrap_or_default();
        } else {
            // `%%` and every unknown `%x` print `x`.
            lit.push(c);
        }
    }
    lit.push_str(rest);
    flush(&mut items, &mut lit);
    items
}

fn flush(items: &mut Vec<Item>, lit: &mut String) {
    if !lit.is_empty() {
        items.push(Item::Literal(core::mem::take(lit)));
    }
}

/// Recognises `N1-N2T` (N1 starting with 1-9) at the start of `s`; returns the bounds and
/// the bytes used.
fn word_range(s: &str) -> Option<(u32, u32, usize)> {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b'1'..=b'9')) {
        return None;
    }
    let (from, n1) = leading_number(b)?;
    if b.get(n1) != Some(&b'-') {
        return None;
    }
    let (to, n2) = leading_number(b.get(n1 + 1..)?)?;
    let end = n1 + 1 + n2;
    if b.get(end) != Some(&b'T') {
        return None;
    }
    Some((from, to, end + 1))
}

/// Decimal digits at the start of `b` (at least one, value fits `u32`).
fn leading_number(b: &[u8]) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    let mut len = 0;
    for &d in b.iter().take_while(|d| d.is_ascii_digit()) {
        value = value.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
        len += 1;
    }
    (len > 0).then_some((value, len))
}

fn rate(bytes: u64, d: Duration) -> u128 {
    u128::from(bytes)
        .saturating_mul(1000)
        .checked_div(d.as_millis())
        .unwrap_or(0)
}

fn write_replaced(w: &mut Budget<'_>, s: &str, repl: Option<&Replacement>) {
    match repl {
        None => w.push_str(s),
        Some(r) => {
            for c in s.chars() {
                w.push(r.apply(c));
            }
        }
    }
}

/// 3proxy's `isspace` set: the separators of `%N1-N2T` words.
fn is_word_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// Writes words `from..=to` of `text`, each joined to the previous by the last whitespace
/// character that separated them in the text.
fn write_words(w: &mut Budget<'_>, text: &str, from: u32, to: u32, repl: Option<&Replacement>) {
    let out = |w: &mut Budget<'_>, c: char| w.push(repl.map_or(c, |r| r.apply(c)));
    let mut index: u32 = 0;
    let mut in_word = false;
    let mut sep: Option<char> = None;
    for c in text.chars() {
        if is_word_space(c) {
            in_word = false;
            sep = Some(c);
            continue;
        }
        if !in_word {
            in_word = true;
            index = index.saturating_add(1);
            if index > to {
                break;
            }
            if index > from {
                if let Some(s) = sep {
                    out(w, s);
                }
            }
        }
        sep = None;
        if index >= from {
            out(w, c);
        }
    }
}

/// Broken-down time of a record in the selected zone.
#[derive(Debug, Clone, Copy)]
struct Civil {
    /// Date and time of day in the selected zone.
    local: NaiveDateTime,
    millis: u32,
    unix_secs: i64,
    offset_secs: i32,
}

impl Civil {
    const EPOCH: Civil = Civil {
        local: DateTime::<Utc>::UNIX_EPOCH.naive_utc(),
        millis: 0,
        unix_secs: 0,
        offset_secs: 0,
    };

    fn new(time: SystemTime, zone: TimeZone) -> Civil {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let (secs, millis) = if since.as_secs() > MAX_UNIX_SECS {
            (MAX_UNIX_SECS, 999)
        } else {
            (since.as_secs(), since.subsec_millis())
        };
        let secs = i64::try_from(secs).unwrap_or(0);
        let Some(utc) = DateTime::<Utc>::from_timestamp(secs, 0) else {
            return Civil::EPOCH;
        };
        let (naive, offset_secs) = match zone {
            TimeZone::Gmt => (utc.naive_utc(), 0),
            TimeZone::Local => {
                let local = utc.with_timezone(&Local);
                (local.naive_local(), local.offset().local_minus_utc())
            }
        };
        Civil {
            local: naive,
            millis,
            unix_secs: secs,
            offset_secs,
        }
    }
}

/// A `String` writer that stops at a byte limit, cutting at a character boundary.
struct Budget<'a> {
    out: &'a mut String,
    limit: usize,
}

impl Budget<'_> {
    fn is_full(&self) -> bool {
        self.out.len() >= self.limit
    }

    fn push_str(&mut self, s: &str) {
        let room = self.limit.saturating_sub(self.out.len());
        if s.len() <= room {
            self.out.push_str(s);
        } else {
            let mut cut = room;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.out.push_str(s.get(..cut).unwrap_or_default());
            // Mark the budget as used up so later items are skipped even if a shorter
            // one would still fit.
            self.limit = self.out.len();
        }
    }

    fn push(&mut self, c: char) {
        if self.out.len().saturating_add(c.len_utf8()) <= self.limit {
            self.out.push(c);
        } else {
            self.limit = self.out.len();
        }
    }
}

impl fmt::Write for Budget<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

#[cfg(test)]
#[path = "logformat_tests.rs"]
mod tests;
