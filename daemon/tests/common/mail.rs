//! Small POP3, SMTP and IMAP servers on 127.0.0.1 for the mail proxies' end-to-end tests:
//! just enough of each protocol for curl to log in and fetch (or send) one message. Each
//! records the lines it received, so a test can check what the proxy sent upstream.

use super::{serve_each, IO_TIMEOUT};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

/// The one message every server holds.
pub const MESSAGE: &str =
    "From: a@example.test\r\nTo: b@example.test\r\nSubject: hi\r\n\r\nHello through the proxy.\r\n";

/// A running test server: where it listens and what it was sent.
pub struct MailServer {
    /// Its address.
    pub addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
}

impl MailServer {
    /// Every line received so far, over all connections (without line ends).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// Reads lines from `s` and answers each with `answer(line, &mut writer)` until it
/// returns false or the peer goes.
fn line_loop(
    s: TcpStream,
    greeting: &str,
    lines: &Arc<Mutex<Vec<String>>>,
    mut answer: impl FnMut(&str, &mut TcpStream, &mut BufReader<TcpStream>) -> bool,
) {
    let _ = s.set_read_timeout(Some(IO_TIMEOUT));
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    if w.write_all(greeting.as_bytes()).is_err() {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = line.trim_end_matches(['\r', '\n']).to_owned();
        lines.lock().unwrap().push(text.clone());
        if !answer(&text, &mut w, &mut r) {
            return;
        }
    }
}

/// A POP3 server (RFC 1939): USER/PASS with any password, STAT, LIST, RETR 1, QUIT.
pub fn pop3_server() -> MailServer {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&lines);
    let addr = serve_each("127.0.0.1:0", move |s| {
        line_loop(s, "+OK test POP3 server ready\r\n", &log, |line, w, _| {
            let upper = line.to_ascii_uppercase();
            let reply = if upper.starts_with("USER ") {
                "+OK send PASS\r\n".to_owned()
            } else if upper.starts_with("PASS ") {
                "+OK logged in\r\n".to_owned()
            } else if upper == "STAT" {
                format!("+OK 1 {}\r\n", MESSAGE.len())
            } else if upper == "LIST" {
                format!("+OK 1 messages\r\n1 {}\r\n.\r\n", MESSAGE.len())
            } else if upper.starts_with("LIST ") {
                format!("+OK 1 {}\r\n", MESSAGE.len())
            } else if upper.starts_with("RETR ") {
                format!("+OK message follows\r\n{MESSAGE}.\r\n")
            } else if upper == "CAPA" {
                "+OK\r\nUSER\r\n.\r\n".to_owned()
            } else if upper == "QUIT" {
                let _ = w.write_all(b"+OK bye\r\n");
                return false;
            } else {
                "-ERR unknown command\r\n".to_owned()
            };
            w.write_all(reply.as_bytes()).is_ok()
        });
    });
    MailServer { addr, lines }
}

/// An SMTP server (RFC 5321, RFC 4954): EHLO with AUTH PLAIN LOGIN, AUTH PLAIN (initial
/// response) and AUTH LOGIN, MAIL, RCPT, DATA (recorded line by line), QUIT.
pub fn smtp_server(mechanisms: &'static str) -> MailServer {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&lines);
    let addr = serve_each("127.0.0.1:0", move |s| {
        let log2 = Arc::clone(&log);
        line_loop(
            s,
            "220 test SMTP server ready\r\n",
            &log,
            move |line, w, r| {
                let upper = line.to_ascii_uppercase();
                let reply: String = if upper.starts_with("EHLO") {
                    format!("250-test.example\r\n250-8BITMIME\r\n250 AUTH {mechanisms}\r\n")
                } else if upper.starts_with("HELO") {
                    "250 test.example\r\n".into()
                } else if upper.starts_with("AUTH PLAIN ") {
                    "235 2.7.0 Authentication successful\r\n".into()
                } else if upper == "AUTH PLAIN" {
                    if w.write_all(b"334 \r\n").is_err() {
                        return false;
                    }
                    let mut more = String::new();
                    if r.read_line(&mut more).is_err() {
                        return false;
                    }
                    log2.lock().unwrap().push(more.trim_end().to_owned());
                    "235 2.7.0 Authentication successful\r\n".into()
                } else if upper == "AUTH LOGIN" {
                    for prompt in ["334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n"] {
                        if w.write_all(prompt.as_bytes()).is_err() {
                            return false;
                        }
                        let mut more = String::new();
                        if r.read_line(&mut more).is_err() {
                            return false;
                        }
                        log2.lock().unwrap().push(more.trim_end().to_owned());
                    }
                    "235 2.7.0 Authentication successful\r\n".into()
                } else if upper.starts_with("MAIL FROM") || upper.starts_with("RCPT TO") {
                    "250 OK\r\n".into()
                } else if upper == "DATA" {
                    if w.write_all(b"354 end with .\r\n").is_err() {
                        return false;
                    }
                    loop {
                        let mut more = String::new();
                        match r.read_line(&mut more) {
                            Ok(0) | Err(_) => return false,
                            Ok(_) => {}
                        }
                        let text = more.trim_end_matches(['\r', '\n']).to_owned();
                        log2.lock().unwrap().push(text.clone());
                        if text == "." {
                            break;
                        }
                    }
                    "250 OK queued\r\n".into()
                } else if upper == "QUIT" {
                    let _ = w.write_all(b"221 bye\r\n");
                    return false;
                } else if upper == "RSET" || upper == "NOOP" {
                    "250 OK\r\n".into()
                } else {
                    "502 unknown command\r\n".into()
                };
                w.write_all(reply.as_bytes()).is_ok()
            },
        );
    });
    MailServer { addr, lines }
}

/// An IMAP server (RFC 9051, the part curl uses): CAPABILITY, LOGIN, SELECT/EXAMINE,
/// FETCH of message 1, UID FETCH, LOGOUT.
pub fn imap_server() -> MailServer {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&lines);
    let addr = serve_each("127.0.0.1:0", move |s| {
        line_loop(
            s,
            "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] test IMAP server ready\r\n",
            &log,
            |line, w, _| {
                let mut words = line.splitn(3, ' ');
                let tag = words.next().unwrap_or("*");
                let cmd = words.next().unwrap_or("").to_ascii_uppercase();
                let rest = words.next().unwrap_or("").to_ascii_uppercase();
                let reply = match cmd.as_str() {
                    "CAPABILITY" => {
                        format!("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n")
                    }
                    "LOGIN" | "AUTHENTICATE" => format!("{tag} OK logged in\r\n"),
                    "SELECT" | "EXAMINE" => format!(
                        "* 1 EXISTS\r\n* 0 RECENT\r\n* OK [UIDVALIDITY 1] ok\r\n{tag} OK [READ-WRITE] done\r\n"
                    ),
                    "FETCH" | "UID" => {
                        let _ = rest;
                        format!(
                            "* 1 FETCH (UID 1 BODY[] {{{}}}\r\n{MESSAGE})\r\n{tag} OK done\r\n",
                            MESSAGE.len()
                        )
                    }
                    "NOOP" => format!("{tag} OK done\r\n"),
                    "LOGOUT" => {
                        let _ = w.write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes());
                        return false;
                    }
                    _ => format!("{tag} BAD unknown\r\n"),
                };
                w.write_all(reply.as_bytes()).is_ok()
            },
        );
    });
    MailServer { addr, lines }
}
