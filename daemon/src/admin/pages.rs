//! The web admin's pages: which page a path asks for ([`route`]), and the bytes of every
//! answer ([`Answer::bytes`]). Pure functions of a path and a snapshot of the daemon's
//! state; no socket, no clock. The HTML is triproxy's own, small and plain.

use crate::metrics::{CounterRow, ServiceKey, ServiceSnapshot};
use std::fmt::Write as _;
use triproxy_policy::quota::LocalStamp;

/// What a path asks for (3proxy's first letter after `/`, plus `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/C`: the counters page.
    Counters,
    /// `/CD<n>` (`disabled: true`) or `/CS<n>` (`false`): switch counter rule `n` (its
    /// position among the `count*`/`nocount*` rules, from 0, as 3proxy numbers them), then
    /// the counters page.
    SetCounter {
        /// The rule's position.
        rule: usize,
        /// Switch it off (`/CD`) or on (`/CS`).
        disabled: bool,
    },
    /// `/CD` or `/CS` followed by something that is not a rule position.
    BadCounter,
    /// `/S`: the running services.
    Status,
    /// `/R`: ask for a reload.
    Reload,
    /// `/metrics`: Prometheus text format.
    Metrics,
    /// `/F` and `/U`: 3proxy's config editor, which triproxy does not have (answered 501).
    ConfigEditor,
    /// Anything else: the banner with links.
    Banner,
}

/// Most digits taken as a counter rule position (more is [`Route::BadCounter`]).
const MAX_RULE_DIGITS: usize = 9;

/// The page `path` asks for.
///
/// ```
/// use triproxy::admin::pages::{route, Route};
/// assert_eq!(route("/CD3"), Route::SetCounter { rule: 3, disabled: true });
/// assert_eq!(route("/metrics"), Route::Metrics);
/// assert_eq!(route("/anything"), Route::Banner);
/// ```
pub fn route(path: &str) -> Route {
    match path {
        "/C" => Route::Counters,
        "/S" => Route::Status,
        "/R" => Route::Reload,
        "/metrics" => Route::Metrics,
        "/F" | "/U" => Route::ConfigEditor,
        _ => {
            let switch = path
                .strip_prefix("/CD")
                .map(|n| (n, true))
                .or_else(|| path.strip_prefix("/CS").map(|n| (n, false)));
            match switch {
                Some((n, disabled)) => {
                    let digits = !n.is_empty()
                        && n.len() <= MAX_RULE_DIGITS
                        && n.bytes().all(|b| b.is_ascii_digit());
                    match n.parse::<usize>() {
                        Ok(rule) if digits => Route::SetCounter { rule, disabled },
                        _ => Route::BadCounter,
                    }
                }
                None => Route::Banner,
            }
        }
    }
}

/// An HTTP status the admin answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200.
    Ok,
    /// 400: a malformed request.
    BadRequest,
    /// 401: credentials missing or wrong (with `WWW-Authenticate: Basic`).
    Unauthorized,
    /// 403: the ACL refuses, or a read-only admin was asked to change something.
    Forbidden,
    /// 404: no such counter rule.
    NotFound,
    /// 405: not `GET` or `POST`.
    MethodNotAllowed,
    /// 431: the request head is too large.
    HeadTooLarge,
    /// 501: the config editor.
    NotImplemented,
    /// 503: reload is not available in this process.
    Unavailable,
}

impl Status {
    /// Code and reason phrase.
    pub fn line(self) -> (u16, &'static str) {
        match self {
            Status::Ok => (200, "OK"),
            Status::BadRequest => (400, "Bad Request"),
            Status::Unauthorized => (401, "Unauthorized"),
            Status::Forbidden => (403, "Forbidden"),
            Status::NotFound => (404, "Not Found"),
            Status::MethodNotAllowed => (405, "Method Not Allowed"),
            Status::HeadTooLarge => (431, "Request Header Fields Too Large"),
            Status::NotImplemented => (501, "Not Implemented"),
            Status::Unavailable => (503, "Service Unavailable"),
        }
    }
}

/// The realm of the `WWW-Authenticate: Basic` challenge.
pub const REALM: &str = "triproxy";

const HTML: &str = "text/html; charset=utf-8";

/// One complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Its status.
    pub status: Status,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Answer {
    /// An HTML page titled `title` with `body` inside, under the links.
    pub fn page(status: Status, title: &str, body: &str) -> Answer {
        let mut html = String::with_capacity(body.len() + 512);
        html.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>triproxy: ");
        escape_html(title, &mut html);
        html.push_str("</title></head><body>\n<p><a href=\"/C\">Counters</a> | <a href=\"/S\">Services</a> | <a href=\"/R\">Reload</a> | <a href=\"/metrics\">Metrics</a></p>\n<h1>");
        escape_html(title, &mut html);
        html.push_str("</h1>\n");
        html.push_str(body);
        html.push_str("</body></html>\n");
        Answer {
            status,
            content_type: HTML,
            body: html,
        }
    }

    /// A short page saying `message` (escaped) with `status`'s phrase as its title.
    pub fn message(status: Status, message: &str) -> Answer {
        let mut body = String::from("<p>");
        escape_html(message, &mut body);
        body.push_str("</p>\n");
        Answer::page(status, status.line().1, &body)
    }

    /// The response bytes: HTTP/1.1, `Content-Length`, `Connection: close` (one request
    /// per connection), no caching, and the Basic challenge for a 401.
    pub fn bytes(&self) -> Vec<u8> {
        let (code, phrase) = self.status.line();
        let mut head = format!(
            "HTTP/1.1 {code} {phrase}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-cache\r\n",
            self.content_type,
            self.body.len()
        );
        if self.status == Status::Unauthorized {
            let _ = write!(head, "WWW-Authenticate: Basic realm=\"{REALM}\"\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and attribute values.
pub fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// The banner: what the admin offers.
pub fn banner() -> Answer {
    Answer::page(
        Status::Ok,
        "web admin",
        "<ul>\n<li><a href=\"/C\">Counters</a>: traffic counter rules, their use and limits; switch one off or on</li>\n<li><a href=\"/S\">Services</a>: what listens where, and active connections</li>\n<li><a href=\"/R\">Reload</a>: read the configuration again</li>\n<li><a href=\"/metrics\">Metrics</a>: Prometheus text format</li>\n</ul>\n",
    )
}

/// MiB with one decimal, as 3proxy's counters page shows use.
fn mib(bytes: u64) -> String {
    let tenths = bytes / (1 << 20) * 10 + (bytes % (1 << 20)) * 10 / (1 << 20);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// A local time as `YYYY-MM-DD HH:MM`, or `never`.
fn when(t: Option<LocalStamp>) -> String {
    match t {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            t.year, t.month, t.day, t.hour, t.minute
        ),
        None => "never".to_owned(),
    }
}

/// The counters page: one row per counting rule. `read_only` leaves out the links that
/// switch rules.
pub fn counters(rows: &[CounterRow], read_only: bool) -> Answer {
    let mut body = String::from(
        "<table border=\"1\">\n<tr><th>Rule</th><th>#/Comment</th><th>Type</th><th>Active</th><th>Limit (MiB)</th><th>Period</th><th>Used (MiB)</th><th>Used (bytes)</th><th>Reset</th><th>Updated</th></tr>\n",
    );
    for row in rows {
        let _ = write!(body, "<tr><td>{}</td><td>{}/", row.rule, row.number);
        escape_html(&row.comment, &mut body);
        let _ = write!(body, "</td><td>{}</td><td>", row.direction.command());
        let state = if row.disabled { "NO" } else { "YES" };
        if read_only {
            body.push_str(state);
        } else {
            let (letter, title) = if row.disabled {
                ('S', "switch on")
            } else {
                ('D', "switch off")
            };
            let _ = write!(
                body,
                "<a href=\"/C{letter}{}\" title=\"{title}\">{state}</a>",
                row.rule
            );
        }
        let _ = writeln!(
            body,
            "</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            row.limit_bytes >> 20,
            row.period.per(),
            mib(row.bytes),
            row.bytes,
            when(row.reset),
            when(row.updated)
        );
    }
    body.push_str("</table>\n");
    if rows.is_empty() {
        body.push_str("<p>No countin, countout or countall rule is configured.</p>\n");
    }
    Answer::page(Status::Ok, "Counters", &body)
}

/// The services page: one row per running service with its active connections (0 if it
/// has none yet).
pub fn status(services: &[(ServiceKey, ServiceSnapshot)]) -> Answer {
    let mut body = String::from(
        "<table border=\"1\">\n<tr><th>Service</th><th>Address</th><th>Port</th><th>Active connections</th><th>Connections</th></tr>\n",
    );
    for (key, s) in services {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            key.service,
            key.listen.ip(),
            key.listen.port(),
            s.active,
            s.connections
        );
    }
    body.push_str("</table>\n");
    Answer::page(Status::Ok, "Services", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use triproxy_policy::quota::{CountDirection, Period};

    #[test]
    fn routes() {
        assert_eq!(route("/C"), Route::Counters);
        assert_eq!(
            route("/CS0"),
            Route::SetCounter {
                rule: 0,
                disabled: false
            }
        );
        for bad in ["/CD", "/CDx", "/CD-1", "/CD+1", "/CD1234567890"] {
            assert_eq!(route(bad), Route::BadCounter, "{bad}");
        }
        assert_eq!(route("/S"), Route::Status);
        assert_eq!(route("/R"), Route::Reload);
        assert_eq!(route("/F"), Route::ConfigEditor);
        assert_eq!(route("/"), Route::Banner);
        assert_eq!(route("/SX"), Route::Banner);
    }

    fn row(disabled: bool) -> CounterRow {
        CounterRow {
            rule: 2,
            number: 7,
            comment: "<lab>".to_owned(),
            direction: CountDirection::All,
            period: Period::Monthly,
            limit_bytes: 5 << 20,
            bytes: 3 * (1 << 20) / 2,
            disabled,
            reset: Some(LocalStamp {
                unix: 0,
                year: 2026,
                month: 12,
                day: 2,
                hour: 9,
                minute: 5,
            }),
            updated: None,
        }
    }

    #[test]
    fn counters_rows_link_to_the_switch() {
        let page = counters(&[row(false)], false).body;
        assert!(page.contains(
            "<tr><td>2</td><td>7/&lt;lab&gt;</td><td>countall</td><td><a href=\"/CD2\" title=\"switch off\">YES</a></td><td>5</td><td>per month</td><td>1.5</td><td>1572864</td><td>2026-12-02 09:05</td><td>never</td></tr>"
        ), "{page}");
        let page = counters(&[row(true)], false).body;
        assert!(page.contains("<a href=\"/CS2\" title=\"switch on\">NO</a>"));
        let page = counters(&[row(true)], true).body;
        assert!(page.contains("<td>NO</td>") && !page.contains("/CS2"));
    }

    #[test]
    fn status_rows() {
        let key = ServiceKey {
            service: "socks",
            listen: "127.0.0.1:1080".parse().unwrap(),
        };
        let s = ServiceSnapshot {
            connections: 4,
            active: 2,
            ..ServiceSnapshot::default()
        };
        let page = status(&[(key, s)]).body;
        assert!(page.contains(
            "<tr><td>socks</td><td>127.0.0.1</td><td>1080</td><td>2</td><td>4</td></tr>"
        ));
    }

    #[test]
    fn answer_bytes() {
        let a = Answer {
            status: Status::Unauthorized,
            content_type: "text/plain",
            body: "no".to_owned(),
        };
        assert_eq!(
            String::from_utf8(a.bytes()).unwrap(),
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\nCache-Control: no-cache\r\nWWW-Authenticate: Basic realm=\"triproxy\"\r\n\r\nno"
        );
        let m = Answer::message(Status::NotFound, "a<b");
        assert!(m.body.contains("<p>a&lt;b</p>"));
        assert_eq!(mib(0), "0.0");
        assert_eq!(mib((1 << 20) - 1), "0.9");
    }
}
