//! The 3proxy command vocabulary: which words are 3proxy commands, which of them triproxy
//! runs, and how many arguments each takes (3proxy `src/conf.c commandhandlers[]`, plus the
//! TLS, PCRE and plugin commands of 3proxy 1.0).
//!
//! This is a lookup table only; what a command does is in `parse`.

/// How many arguments (not counting the command word) a command accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Arity {
    /// Fewest arguments.
    pub(crate) min: usize,
    /// Most arguments; `None` = no limit.
    pub(crate) max: Option<usize>,
}

impl Arity {
    const fn exactly(n: usize) -> Arity {
        Arity {
            min: n,
            max: Some(n),
        }
    }

    const fn between(min: usize, max: usize) -> Arity {
        Arity {
            min,
            max: Some(max),
        }
    }

    const fn at_least(n: usize) -> Arity {
        Arity { min: n, max: None }
    }

    /// Whether `n` arguments are acceptable.
    pub(crate) fn accepts(self, n: usize) -> bool {
        n >= self.min && self.max.is_none_or(|max| n <= max)
    }
}

/// A command triproxy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Supported {
    Users,
    Auth,
    Allow,
    Deny,
    Flush,
    Internal,
    Log,
    LogFormat,
    Rotate,
    Archiver,
    LogJson,
    NoLog,
    LogDump,
    MaxConn,
    BandLimIn,
    BandLimOut,
    NoBandLimIn,
    NoBandLimOut,
    Parent,
    External,
    Backlog,
    Timeouts,
    ConnLim,
    NoConnLim,
    Counter,
    CountIn,
    CountOut,
    CountAll,
    NoCountIn,
    NoCountOut,
    NoCountAll,
    Socks,
    Proxy,
    TcpPm,
    UdpPm,
    DnsPr,
    Pop3p,
    Smtpp,
    Imapp,
    Tlspr,
    Auto,
    Admin,
    Service,
    Include,
    End,
    NServer,
    NsCache,
    NsCache6,
    NsRecord,
    FakeResolve,
    Daemon,
    PidFile,
    Config,
    Monitor,
    System,
    Chroot,
    SetUid,
    SetGid,
    Writable,
    StackSize,
    Force,
    NoForce,
    AuthCache,
    DelimChar,
    Radius,
    AuthNServer,
}

/// The commands triproxy runs, with 3proxy's argument counts.
const SUPPORTED: &[(&str, Supported, Arity)] = &[
    ("users", Supported::Users, Arity::at_least(0)),
    ("auth", Supported::Auth, Arity::at_least(1)),
    ("allow", Supported::Allow, Arity::at_least(0)),
    ("deny", Supported::Deny, Arity::at_least(0)),
    ("flush", Supported::Flush, Arity::exactly(0)),
    ("internal", Supported::Internal, Arity::exactly(1)),
    ("log", Supported::Log, Arity::at_least(0)),
    ("logformat", Supported::LogFormat, Arity::exactly(1)),
    ("rotate", Supported::Rotate, Arity::exactly(1)),
    ("archiver", Supported::Archiver, Arity::at_least(2)),
    // triproxy's own: services started after it log one JSON object per line.
    ("logjson", Supported::LogJson, Arity::exactly(0)),
    ("nolog", Supported::NoLog, Arity::exactly(0)),
    ("logdump", Supported::LogDump, Arity::between(1, 2)),
    ("maxconn", Supported::MaxConn, Arity::exactly(1)),
    ("bandlimin", Supported::BandLimIn, Arity::at_least(1)),
    ("bandlimout", Supported::BandLimOut, Arity::at_least(1)),
    ("nobandlimin", Supported::NoBandLimIn, Arity::at_least(0)),
    ("nobandlimout", Supported::NoBandLimOut, Arity::at_least(0)),
    ("parent", Supported::Parent, Arity::at_least(4)),
    ("external", Supported::External, Arity::exactly(1)),
    ("backlog", Supported::Backlog, Arity::exactly(1)),
    ("timeouts", Supported::Timeouts, Arity::at_least(1)),
    ("connlim", Supported::ConnLim, Arity::at_least(2)),
    ("noconnlim", Supported::NoConnLim, Arity::at_least(0)),
    ("counter", Supported::Counter, Arity::between(1, 3)),
    ("countin", Supported::CountIn, Arity::at_least(3)),
    ("countout", Supported::CountOut, Arity::at_least(3)),
    ("countall", Supported::CountAll, Arity::at_least(3)),
    ("nocountin", Supported::NoCountIn, Arity::at_least(0)),
    ("nocountout", Supported::NoCountOut, Arity::at_least(0)),
    ("nocountall", Supported::NoCountAll, Arity::at_least(0)),
    ("socks", Supported::Socks, Arity::at_least(0)),
    ("proxy", Supported::Proxy, Arity::at_least(0)),
    // Options, then SRCPORT DSTHOST DSTPORT (3proxy counts the command: [4, inf)).
    ("tcppm", Supported::TcpPm, Arity::at_least(3)),
    ("udppm", Supported::UdpPm, Arity::at_least(3)),
    ("dnspr", Supported::DnsPr, Arity::at_least(0)),
    ("pop3p", Supported::Pop3p, Arity::at_least(0)),
    ("smtpp", Supported::Smtpp, Arity::at_least(0)),
    ("imapp", Supported::Imapp, Arity::at_least(0)),
    ("tlspr", Supported::Tlspr, Arity::at_least(0)),
    ("auto", Supported::Auto, Arity::at_least(0)),
    ("admin", Supported::Admin, Arity::at_least(0)),
    ("service", Supported::Service, Arity::exactly(0)),
    ("include", Supported::Include, Arity::exactly(1)),
    ("end", Supported::End, Arity::exactly(0)),
    ("nserver", Supported::NServer, Arity::exactly(1)),
    ("nscache", Supported::NsCache, Arity::exactly(1)),
    ("nscache6", Supported::NsCache6, Arity::exactly(1)),
    ("nsrecord", Supported::NsRecord, Arity::exactly(2)),
    ("fakeresolve", Supported::FakeResolve, Arity::exactly(0)),
    ("daemon", Supported::Daemon, Arity::exactly(0)),
    ("pidfile", Supported::PidFile, Arity::exactly(1)),
    ("config", Supported::Config, Arity::exactly(1)),
    ("monitor", Supported::Monitor, Arity::exactly(1)),
    ("system", Supported::System, Arity::exactly(1)),
    ("chroot", Supported::Chroot, Arity::between(1, 3)),
    ("setuid", Supported::SetUid, Arity::exactly(1)),
    ("setgid", Supported::SetGid, Arity::exactly(1)),
    ("writable", Supported::Writable, Arity::exactly(0)),
    ("stacksize", Supported::StackSize, Arity::exactly(1)),
    ("force", Supported::Force, Arity::exactly(0)),
    ("noforce", Supported::NoForce, Arity::exactly(0)),
    ("authcache", Supported::AuthCache, Arity::between(1, 3)),
    ("delimchar", Supported::DelimChar, Arity::exactly(1)),
    // Refused with the reason, whatever the arguments.
    ("radius", Supported::Radius, Arity::at_least(0)),
    ("authnserver", Supported::AuthNServer, Arity::at_least(0)),
];

/// Every other 3proxy 1.0 command (3proxy.md section 5), which triproxy does not run yet.
const NOT_YET: &[&str] = &[
    // services
    "ftppr",
    // addresses, sockets, capacity
    "maxseg",
    // logging
    // DNS
    "dialer",
    // access control and routing
    "redirect",
    "parentretries",
    "weight",
    // limits and accounting
    // process control
    // plugins, filters, TLS, PCRE
    "plugin",
    "filtermaxsize",
    "transparent",
    "notransparent",
    "file_cachedir",
    "file_preview",
    "pcre",
    "pcre_rewrite",
    "pcre_extend",
    "pcre_options",
    "ssl_mitm",
    "ssl_nomitm",
    "ssl_serv",
    "ssl_server",
    "ssl_noserv",
    "ssl_noserver",
    "ssl_cli",
    "ssl_client",
    "ssl_nocli",
    "ssl_noclient",
    "ssl_server_cert",
    "ssl_server_key",
    "ssl_server_ca_file",
    "ssl_server_ca_key",
    "ssl_server_ca_dir",
    "ssl_server_ca_store",
    "ssl_client_cert",
    "ssl_client_key",
    "ssl_client_ca_file",
    "ssl_client_ca_dir",
    "ssl_client_ca_store",
    "ssl_client_ciphersuites",
    "ssl_server_ciphersuites",
    "ssl_client_cipher_list",
    "ssl_server_cipher_list",
    "ssl_client_min_proto_version",
    "ssl_server_min_proto_version",
    "ssl_client_max_proto_version",
    "ssl_server_max_proto_version",
    "ssl_client_verify",
    "ssl_client_no_verify",
    "ssl_server_verify",
    "ssl_server_no_verify",
    "ssl_client_sni",
    "ssl_client_alpn",
    "ssl_client_mode",
    "ssl_certcache",
];

/// What a command word is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// A command triproxy runs.
    Supported(Supported, Arity),
    /// A 3proxy command triproxy does not run yet.
    NotYet,
    /// Not a 3proxy command.
    Unknown,
}

/// Classifies a command word (case-sensitive, as in 3proxy).
pub(crate) fn lookup(word: &str) -> Lookup {
    if let Some(&(_, cmd, arity)) = SUPPORTED.iter().find(|(name, _, _)| *name == word) {
        Lookup::Supported(cmd, arity)
    } else if NOT_YET.contains(&word) {
        Lookup::NotYet
    } else {
        Lookup::Unknown
    }
}

/// 3proxy service commands other than `socks` (for the standalone form's messages).
pub(crate) fn is_3proxy_service(word: &str) -> bool {
    matches!(
        word,
        "proxy"
            | "pop3p"
            | "imapp"
            | "smtpp"
            | "ftppr"
            | "admin"
            | "dnspr"
            | "auto"
            | "tlspr"
            | "tcppm"
            | "udppm"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(matches!(
            lookup("socks"),
            Lookup::Supported(Supported::Socks, _)
        ));
        assert!(matches!(
            lookup("proxy"),
            Lookup::Supported(Supported::Proxy, _)
        ));
        assert!(matches!(
            lookup("tcppm"),
            Lookup::Supported(Supported::TcpPm, _)
        ));
        assert_eq!(lookup("ftppr"), Lookup::NotYet);
        assert_eq!(lookup("ssl_certcache"), Lookup::NotYet);
        assert_eq!(lookup("Socks"), Lookup::Unknown);
        assert_eq!(lookup("frobnicate"), Lookup::Unknown);
        assert_eq!(lookup(""), Lookup::Unknown);
        // No command is in both lists.
        for (name, _, _) in SUPPORTED {
            assert!(!NOT_YET.contains(name), "{name}");
        }
    }

    #[test]
    fn arity() {
        assert!(Arity::exactly(1).accepts(1));
        assert!(!Arity::exactly(1).accepts(0));
        assert!(!Arity::exactly(1).accepts(2));
        assert!(Arity::at_least(1).accepts(4000));
        assert!(!Arity::at_least(1).accepts(0));
    }
}
