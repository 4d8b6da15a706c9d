//! Process-control commands (`daemon`, `pidfile`, `config`, `monitor`, `system`, `chroot`,
//! `setuid`, `setgid`, `writable`, `stacksize`, `force`, `noforce`) and reading a whole file
//! with every error reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_util;

use config_util::{err_at, ok, parse_in, TempDir};
use std::path::PathBuf;
use triproxy::config::{self, Account, ConfigErrorKind, ConfigWarningKind};

#[test]
fn process_commands_are_recorded_not_applied() {
    let dir = TempDir::new("process");
    let cfg = parse_in(
        &dir,
        "daemon\npidfile run/3proxy.pid\nconfig /etc/3proxy/3proxy.cfg\nmonitor 3proxy.cfg\n\
         system \"echo hi > /dev/null\"\nsetuid 65534\nsetgid nogroup\nsocks -p1080\n",
    )
    .unwrap();
    let p = &cfg.process;
    assert!(p.daemon);
    assert_eq!(p.pidfile, Some(dir.path().join("run/3proxy.pid")));
    assert_eq!(p.config_file, Some(PathBuf::from("/etc/3proxy/3proxy.cfg")));
    assert_eq!(p.monitor, vec![dir.path().join("3proxy.cfg")]);
    assert_eq!(p.system, vec!["echo hi > /dev/null".to_owned()]);
    assert_eq!(p.user, Some(Account::Id(65534)));
    assert_eq!(p.group, Some(Account::Name("nogroup".into())));
    // Reading wrote nothing.
    assert!(!dir.path().join("run").exists());
    // A monitored file that does not exist is a warning, not an error (3proxy watches it).
    assert!(cfg.warnings.iter().any(|w| matches!(
        &w.kind,
        ConfigWarningKind::MonitorMissing { path } if *path == dir.path().join("3proxy.cfg")
    )));
}

#[test]
fn root_is_refused_by_setuid_setgid_and_chroot() {
    let kind = err_at("setuid 0\n", 1);
    assert_eq!(kind, ConfigErrorKind::RootAccount { what: "setuid" });
    assert_eq!(
        config_util::parse("setgid root\n").unwrap_err().to_string(),
        "test.cfg:1: `setgid` must not name root: the point of dropping privileges is to run as another user"
    );
    assert_eq!(
        err_at("chroot /jail 0\n", 1),
        ConfigErrorKind::RootAccount {
            what: "chroot user"
        }
    );
    assert_eq!(
        config_util::parse("setuid \"a b\"\n")
            .unwrap_err()
            .to_string(),
        "test.cfg:1: `a b` is not a setuid (a number other than 0, or a user or group name)"
    );
    assert_eq!(
        config_util::parse("pidfile \"\"\n")
            .unwrap_err()
            .to_string(),
        "test.cfg:1: `pidfile` needs a file name"
    );
    assert_eq!(
        config_util::parse("daemon now\n").unwrap_err().to_string(),
        "test.cfg:1: `daemon` takes no arguments, 1 given"
    );
    assert_eq!(
        config_util::parse("chroot\n").unwrap_err().to_string(),
        "test.cfg:1: `chroot` takes 1 to 3 arguments, 0 given"
    );
}

#[test]
fn chroot_maps_later_absolute_names_into_the_root() {
    let dir = TempDir::new("chroot");
    let root = dir.path().join("jail");
    dir.write("jail/conf/more.cfg", "socks -p1081 -i127.0.0.1\n");
    let text = format!(
        "pidfile /before.pid\nchroot {} proxy proxy\ninclude /conf/more.cfg\nlog /logs/x.log\npidfile /run/p.pid\n",
        root.display()
    );
    let cfg = parse_in(&dir, &text).unwrap();
    assert_eq!(cfg.process.chroot, Some(root.clone()));
    assert_eq!(cfg.process.user, Some(Account::Name("proxy".into())));
    assert_eq!(cfg.process.group, Some(Account::Name("proxy".into())));
    assert_eq!(cfg.process.pidfile, Some(root.join("run/p.pid")));
    assert_eq!(
        cfg.services.len(),
        1,
        "the include was read inside the root"
    );
    // A missing file inside the root is named with its real path.
    let text = format!("chroot {}\ninclude /conf/none.cfg\n", root.display());
    let e = parse_in(&dir, &text).unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "cannot read `{}`",
            root.join("conf/none.cfg").display()
        )),
        "{e}"
    );
    // The mapping ends with the file that set it.
    let cfg = parse_in(&dir, "pidfile /run/p.pid\n").unwrap();
    assert_eq!(cfg.process.pidfile, Some(PathBuf::from("/run/p.pid")));
}

#[test]
fn writable_and_stacksize_are_accepted_with_a_warning() {
    let cfg = ok("writable\nstacksize 65536\nsocks -p1080\n");
    let kinds: Vec<_> = cfg.warnings.iter().map(|w| &w.kind).collect();
    assert!(kinds.contains(&&ConfigWarningKind::Writable));
    assert!(kinds.contains(&&ConfigWarningKind::StackSize));
    let text = cfg.warnings[1].to_string();
    assert!(
        text.starts_with("test.cfg:2: warning: `stacksize` is accepted and not needed"),
        "{text}"
    );
    assert_eq!(
        err_at("stacksize lots\n", 1),
        ConfigErrorKind::InvalidNumber {
            what: "stacksize",
            value: "lots".into(),
            min: 0,
            max: u64::from(u32::MAX)
        }
    );
}

#[test]
fn force_and_noforce_are_snapshotted_by_each_service() {
    let cfg = ok("socks -p1080\nnoforce\nproxy -p3128\nforce\nsocks -p1081\n");
    let force: Vec<bool> = cfg.services.iter().map(|s| s.force).collect();
    assert_eq!(force, vec![true, false, true]);
}

#[test]
fn every_error_of_a_file_is_reported_in_order() {
    let dir = TempDir::new("all-errors");
    let inc = dir.write("inc.cfg", "bogus\nsocks -p99999\n");
    let main = dir.write(
        "main.cfg",
        format!(
            "maxconn x\nsocks -p1080\ninclude {}\ninclude missing.cfg\nfrobnicate\n",
            inc.display()
        ),
    );
    let errors = config::load_all(&main).unwrap_err();
    let at: Vec<(String, usize)> = errors
        .iter()
        .map(|e| {
            (
                PathBuf::from(&e.file)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
                e.line,
            )
        })
        .collect();
    assert_eq!(
        at,
        vec![
            ("main.cfg".into(), 1),
            ("inc.cfg".into(), 1),
            ("inc.cfg".into(), 2),
            ("main.cfg".into(), 4),
            ("main.cfg".into(), 5),
        ]
    );
    // `load` gives the first one.
    assert_eq!(config::load(&main).unwrap_err(), errors[0]);
    // Errors stop being collected at the limit.
    let many = "bogus\n".repeat(config::MAX_REPORTED_ERRORS + 50);
    let errors = config::parse_str_all(&many, "many.cfg", dir.path()).unwrap_err();
    assert_eq!(errors.len(), config::MAX_REPORTED_ERRORS);
}
