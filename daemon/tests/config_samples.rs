//! 3proxy's own sample configurations (verbatim copies in the shared reference folder):
//! each one must be refused with a clear error naming its first blocking line, never a
//! panic. When triproxy learns more commands, the expected blockers below move down.
//!
//! The folder is `shared/reference/3proxy-configs` beside the repository unless `TRIPROXY_3PROXY_CONFIGS`
//! names another one. Loading stops at the first error, so no file the samples mention
//! (`include /conf/...`, `$/conf/passwd`) is ever opened.
//!
//! The samples are not part of this repository: on a fresh clone without the folder these
//! tests print `skipped` and pass, unless `CI` is set, where a missing folder fails them.
//! `.ci/run` names the folder in `TRIPROXY_3PROXY_CONFIGS`; `scripts/fresh-clone.sh` checks
//! the skip on a copy of the repository.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/samples.rs"]
mod samples;

use samples::sample_dir;
use triproxy::config::{self, ConfigErrorKind};

#[derive(Debug)]
enum Blocker {
    Unknown(&'static str),
    NotYet(&'static str),
    /// Another refusal, told by this part of its message.
    Message(&'static str),
}

/// (file, line of the first blocking command, what blocks it)
const SAMPLES: &[(&str, usize, Blocker)] = &[
    (
        "cfg_sql_3proxy.cfg.sample",
        16,
        Blocker::NotYet("ODBC logging"),
    ),
    // `chroot /usr/local/3proxy` maps the absolute names after it into the new root.
    (
        "scripts_3proxy.cfg.chroot",
        4,
        Blocker::Message("cannot read `/usr/local/3proxy/conf/3proxy.cfg`"),
    ),
    (
        "scripts_3proxy.cfg.inchroot",
        14,
        Blocker::Message("cannot read `/conf/passwd`"),
    ),
    // Not configurations at all: prose, SQL and Markdown.
    ("cfg_0.scenario.txt", 1, Blocker::Unknown("Please")),
    ("cfg_sql_create.sql", 9, Blocker::Unknown("CREATE")),
    ("doc_ru_example1.txt", 1, Blocker::Unknown("KOI8-R")),
    ("README.md", 3, Blocker::Unknown("Copied")),
];

#[test]
fn every_sample_is_refused_at_its_first_blocking_line() {
    let Some(dir) = sample_dir() else { return };
    for (name, line, blocker) in SAMPLES {
        let path = dir.join(name);
        let e = match config::load(&path) {
            Ok(cfg) => panic!("{name}: accepted with {} services", cfg.services.len()),
            Err(e) => e,
        };
        assert_eq!(
            (e.file.as_str(), e.line),
            (path.display().to_string().as_str(), *line),
            "{name}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{}:{line}: ", path.display())),
            "{msg}"
        );
        match blocker {
            Blocker::Unknown(cmd) => assert_eq!(
                e.kind,
                ConfigErrorKind::UnknownCommand {
                    command: (*cmd).to_owned()
                },
                "{msg}"
            ),
            Blocker::NotYet(feature) => {
                assert!(
                    matches!(e.kind, ConfigErrorKind::NotSupportedYet { .. }),
                    "{msg}"
                );
                assert!(msg.contains(feature), "{msg}");
            }
            Blocker::Message(part) => assert!(msg.contains(part), "{msg}"),
        }
    }
}

/// Every line of every sample, fed one at a time, gives a result or an error on line 1,
/// never a panic. Lines that would open a file (`include`, `$FILE`) are skipped, so nothing
/// outside the sample folder is read.
#[test]
fn every_sample_line_alone_is_handled() {
    let Some(dir) = sample_dir() else { return };
    let mut lines = 0;
    let accepted = ["cfg_3proxy.cfg.sample", "scripts_3proxy.cfg.in"];
    for name in SAMPLES.iter().map(|s| s.0).chain(accepted) {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for l in text.lines() {
            if l.starts_with("include") || l.contains('$') {
                continue;
            }
            lines += 1;
            if let Err(e) = config::parse_str(l, name, &dir) {
                assert_eq!(e.line, 1, "{e}");
            }
        }
    }
    assert!(lines > 300, "{lines}");
}

/// `cfg_counters.sample` is accepted whole since `admin` is supported: the DNS proxy, the
/// counter file with daily reports, the rules, the HTTP proxy with `auth strong`, and the
/// web admin on 127.0.0.1:80 for `user1` only.
#[test]
fn counters_sample_is_accepted_whole() {
    let Some(dir) = sample_dir() else { return };
    let cfg = config::load(&dir.join("cfg_counters.sample")).unwrap();
    let kinds: Vec<&str> = cfg.services.iter().map(|s| s.kind.command()).collect();
    assert_eq!(kinds, ["dnspr", "proxy", "admin"]);
    let admin = &cfg.services[2];
    assert_eq!(admin.kind, config::ServiceKind::Admin { read_only: false });
    assert_eq!(admin.listen, "127.0.0.1:80".parse().unwrap());
    assert_eq!(admin.origin.1, 51);
    assert_eq!(
        admin.auth,
        triproxy_policy::auth::AuthChain::parse(&["strong"]).unwrap()
    );
    assert_eq!(
        admin.acl,
        [
            triproxy_policy::acl::Ace::parse(triproxy_policy::acl::Action::Allow, &["user1"])
                .unwrap()
        ]
    );
    assert_eq!(cfg.quotas.len(), 6);
}

/// `cfg_counters.sample`'s accounting lines on their own (with the service they feed) are
/// understood: the counter file with daily reports, the `nocountin` exception and every
/// `countin` rule.
#[test]
fn counters_sample_accounting_lines_parse() {
    let Some(dir) = sample_dir() else { return };
    let bytes = std::fs::read(dir.join("cfg_counters.sample")).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let wanted = ["counter", "nocountin", "countin", "users", "auth", "proxy"];
    let kept: String = text
        .lines()
        .filter(|l| wanted.contains(&l.split(' ').next().unwrap_or_default()))
        .map(|l| format!("{l}\n"))
        .collect();
    let cfg = config::parse_str(&kept, "cfg_counters.sample", &dir).unwrap();
    let counter = cfg.counter.unwrap();
    assert_eq!(
        counter.report.map(|r| r.period),
        Some(triproxy_policy::period::Period::Daily)
    );
    let numbers: Vec<u32> = cfg.quotas.counters().map(|c| c.number()).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 202]);
    assert_eq!(cfg.quotas.len(), 6, "and the nocountin exception");
    assert_eq!(cfg.services.len(), 1);
}

/// 3proxy's annotated sample (CR user, rotated log, archiver, rotate, admin, every service)
/// and the packaged template (syslog, pid file) are accepted whole.
#[test]
fn the_classic_sample_and_the_packaged_template_are_accepted() {
    let Some(dir) = sample_dir() else { return };
    let cfg = config::load(&dir.join("cfg_3proxy.cfg.sample")).unwrap();
    let kinds: Vec<&str> = cfg.services.iter().map(|s| s.kind.command()).collect();
    assert_eq!(
        kinds,
        ["dnspr", "pop3p", "tcppm", "admin", "proxy", "socks"]
    );
    let cfg = config::load(&dir.join("scripts_3proxy.cfg.in")).unwrap();
    assert!(cfg.services.is_empty());
    assert!(cfg.process.pidfile.is_some());
}

/// The Russian how-to (`doc_ru_example1.txt`, KOI8-R prose) carries a whole configuration
/// between two marker lines: cut out, it loads as it is. Its name server, CL users, daily
/// rotated log with its own `logformat`, `external`/`internal`, `auth strong` with a port
/// rule, `proxy -n`, two per-user `bandlimin` lines and `setgid`/`setuid 65534`. Nothing is
/// opened or bound by loading, so the addresses and the log folder need not exist.
#[test]
fn the_russian_howto_configuration_loads() {
    let Some(dir) = sample_dir() else { return };
    let bytes = std::fs::read(dir.join("doc_ru_example1.txt")).unwrap();
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with(b"-------------3proxy.cfg-------------"))
        .expect("opening marker");
    let len = lines[start + 1..]
        .iter()
        .position(|l| l.starts_with(b"------------------------------------"))
        .expect("closing marker");
    let block = lines[start + 1..start + 1 + len].join(&b'\n');
    assert!(len > 40, "{len} lines");
    let scratch = std::env::temp_dir().join(format!("triproxy-ru-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let path = scratch.join("3proxy.cfg");
    std::fs::write(&path, &block).unwrap();
    let loaded = config::load(&path);
    std::fs::remove_dir_all(&scratch).ok();
    let cfg = loaded.unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = cfg.services.iter().map(|s| s.kind.command()).collect();
    assert_eq!(kinds, ["proxy"]);
    let proxy = &cfg.services[0];
    assert_eq!(proxy.listen, "192.168.1.1:3128".parse().unwrap());
    assert_eq!(
        proxy.auth,
        triproxy_policy::auth::AuthChain::parse(&["strong"]).unwrap()
    );
    assert_eq!(
        proxy.acl,
        [triproxy_policy::acl::Ace::parse(
            triproxy_policy::acl::Action::Allow,
            &["*", "*", "*", "80,8080-8088"]
        )
        .unwrap()]
    );
    assert!(
        matches!(&proxy.log, config::LogTarget::Rotating(r)
            if format!("{:?}", r.name).contains("/usr/local/3proxy/logs/3proxy.log")),
        "{:?}",
        proxy.log
    );
    let mut users: Vec<&str> = cfg.users.names().collect();
    users.sort_unstable();
    assert_eq!(users, ["petia", "vasia", "vova"]);
    assert_eq!(cfg.bandlimits.len(), 2);
    assert_eq!(cfg.process.user, Some(config::Account::Id(65534)));
    assert_eq!(cfg.process.group, Some(config::Account::Id(65534)));
    // The sample's `logformat "%d-%m-%Y ..."` loses its first `%` to the time-zone
    // selector in 3proxy (records start `d-`): the one warning, naming the line.
    let warnings: Vec<(usize, &config::ConfigWarningKind)> =
        cfg.warnings.iter().map(|w| (w.line, &w.kind)).collect();
    assert_eq!(
        warnings,
        [(
            17,
            &config::ConfigWarningKind::LogFormatZone { consumed: '%' }
        )]
    );
}

/// The two chroot samples together, accepted once the files they name exist: the
/// packaged `scripts/3proxy.cfg.chroot` with its root moved to a scratch folder (the only
/// change), whose `include /conf/3proxy.cfg` is `scripts/3proxy.cfg.inchroot` as it is,
/// with the password, counter and bandwidth files it includes. Every absolute name is
/// read inside the root.
#[test]
fn the_chroot_samples_load_once_their_files_exist() {
    let Some(dir) = sample_dir() else { return };
    let root = std::env::temp_dir().join(format!("triproxy-chroot-{}", std::process::id()));
    let conf = root.join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let outer = std::fs::read_to_string(dir.join("scripts_3proxy.cfg.chroot")).unwrap();
    let outer = outer.replace("/usr/local/3proxy", &root.display().to_string());
    std::fs::copy(
        dir.join("scripts_3proxy.cfg.inchroot"),
        conf.join("3proxy.cfg"),
    )
    .unwrap();
    std::fs::write(conf.join("passwd"), "admin:CL:secret\nalice:CL:wonder\n").unwrap();
    std::fs::write(conf.join("counters"), "countin \"1/month\" M 1000 alice\n").unwrap();
    std::fs::write(conf.join("bandlimiters"), "bandlimin 1000000 alice\n").unwrap();
    let top = root.join("outer.cfg");
    std::fs::write(&top, outer).unwrap();
    let loaded = config::load(&top);
    std::fs::remove_dir_all(&root).ok();
    let cfg = loaded.unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<&str> = cfg.services.iter().map(|s| s.kind.command()).collect();
    assert_eq!(kinds, ["proxy", "socks", "admin"]);
    assert_eq!(cfg.process.chroot, Some(root.clone()));
    assert_eq!(
        (cfg.process.user.clone(), cfg.process.group.clone()),
        (
            Some(config::Account::Name("proxy".to_owned())),
            Some(config::Account::Name("proxy".to_owned()))
        )
    );
    // `config /conf/3proxy.cfg` and `counter /count/3proxy.3cf` name files in the root.
    assert_eq!(cfg.process.config_file, Some(root.join("conf/3proxy.cfg")));
    assert_eq!(
        cfg.counter.as_ref().map(|c| c.file.clone()),
        Some(root.join("count/3proxy.3cf"))
    );
    let mut users: Vec<&str> = cfg.users.names().collect();
    users.sort_unstable();
    assert_eq!(users, ["admin", "alice"]);
    assert_eq!(cfg.quotas.len(), 1);
    assert_eq!(cfg.bandlimits.len(), 1);
}
