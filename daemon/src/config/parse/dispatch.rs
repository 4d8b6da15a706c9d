//! What each command does: the one `match` from a supported command (see the `commands`
//! module) to its effect on the reader's state, its error or warning.
//!
//! The parsing of each command's arguments lives with its idea (`auth`, `limits`,
//! `logging`, `names`, `process`, and `service_line` for service lines); this module only
//! routes a line to it and keeps the result. It reads no file itself (`include` and
//! `monitor` are the reader's).

use super::{
    parse_backlog, parse_decimal, parse_listen_ip, parse_maxconn, Flow, Here, Parser, ROOT,
};
use crate::config::auth;
use crate::config::commands::{self, Arity, Lookup, Supported};
use crate::config::limits;
use crate::config::logging;
use crate::config::process;
use crate::config::{
    ConfigError, ConfigErrorKind, ConfigWarning, ConfigWarningKind, MAX_ACL_ENTRIES,
    MAX_BANDLIM_RULES, MAX_CONNLIM_RULES, MAX_QUOTA_RULES,
};
use crate::logformat::LogFormat;
use triproxy_policy::acl::{Ace, Action};
use triproxy_policy::auth::AuthChain;
use triproxy_policy::parent::{ParentError, ParentHop};

impl Parser {
    pub(super) fn run_command(
        &mut self,
        here: Here<'_>,
        words: &[String],
    ) -> Result<Flow, ConfigError> {
        let Some((command, args)) = words.split_first() else {
            // A line of only separators after its first character cannot happen (that
            // character would make it a comment), but a `$FILE` that is empty can leave
            // nothing: 3proxy reports a parse error.
            return Err(self.error(
                here,
                ConfigErrorKind::UnknownCommand {
                    command: String::new(),
                },
            ));
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (cmd, arity) = match commands::lookup(command) {
            Lookup::Supported(cmd, arity) => (cmd, arity),
            Lookup::NotYet => {
                return Err(self.error(
                    here,
                    ConfigErrorKind::UnsupportedCommand {
                        command: command.clone(),
                    },
                ))
            }
            Lookup::Unknown => {
                return Err(self.error(
                    here,
                    ConfigErrorKind::UnknownCommand {
                        command: command.clone(),
                    },
                ))
            }
        };
        if !arity.accepts(args.len()) {
            return Err(self.error(here, arg_count(command, arity, args.len())));
        }
        match cmd {
            Supported::Users => {
                for spec in &args {
                    self.users
                        .add_spec(spec)
                        .map_err(|e| self.error(here, ConfigErrorKind::Users(Box::new(e))))?;
                }
            }
            Supported::AuthCache => {
                let line = auth::authcache(&args).map_err(|k| self.error(here, k))?;
                self.authcache = Some(line.settings);
                self.authcache_size = line.size;
            }
            Supported::DelimChar => {
                self.delimiter = auth::delimchar(&args).map_err(|k| self.error(here, k))?;
            }
            Supported::Radius => return Err(self.error(here, auth::radius())),
            Supported::AuthNServer => return Err(self.error(here, auth::authnserver())),
            Supported::Auth => {
                self.auth = AuthChain::parse(&args)
                    .map_err(|e| self.error(here, ConfigErrorKind::Auth(Box::new(e))))?;
            }
            Supported::Allow | Supported::Deny => {
                let action = if cmd == Supported::Allow {
                    Action::Allow
                } else {
                    Action::Deny
                };
                let ace = Ace::parse(action, &args)
                    .map_err(|e| self.error(here, ConfigErrorKind::Acl(Box::new(e))))?;
                if self.acl.len() >= MAX_ACL_ENTRIES {
                    return Err(self.error(
                        here,
                        ConfigErrorKind::TooManyAclEntries {
                            limit: MAX_ACL_ENTRIES,
                        },
                    ));
                }
                self.acl.push(ace);
            }
            Supported::BandLimIn
            | Supported::BandLimOut
            | Supported::NoBandLimIn
            | Supported::NoBandLimOut => {
                let rule =
                    limits::parse_bandlim(cmd, command, &args).map_err(|k| self.error(here, k))?;
                if self.bandlimits.len() >= MAX_BANDLIM_RULES {
                    return Err(self.error(
                        here,
                        ConfigErrorKind::TooManyBandLimits {
                            limit: MAX_BANDLIM_RULES,
                        },
                    ));
                }
                self.bandlimits.push(rule);
            }
            Supported::Timeouts => {
                let ignored = limits::apply_timeouts(&mut self.timeouts, &args)
                    .map_err(|k| self.error(here, k))?;
                if ignored > 0 {
                    self.warnings.push(ConfigWarning {
                        file: here.file.to_owned(),
                        line: here.line,
                        kind: ConfigWarningKind::ExtraTimeouts { ignored },
                    });
                }
            }
            Supported::ConnLim | Supported::NoConnLim => {
                let rule =
                    limits::parse_connlim(cmd, command, &args).map_err(|k| self.error(here, k))?;
                if self.connlimits.len() >= MAX_CONNLIM_RULES {
                    return Err(self.error(
                        here,
                        ConfigErrorKind::TooManyRules {
                            what: "connlim/noconnlim",
                            limit: MAX_CONNLIM_RULES,
                        },
                    ));
                }
                self.connlimits.push(rule);
            }
            Supported::CountIn
            | Supported::CountOut
            | Supported::CountAll
            | Supported::NoCountIn
            | Supported::NoCountOut
            | Supported::NoCountAll => {
                let rule =
                    limits::parse_count(cmd, command, &args).map_err(|k| self.error(here, k))?;
                if self.quotas.len() >= MAX_QUOTA_RULES {
                    return Err(self.error(
                        here,
                        ConfigErrorKind::TooManyRules {
                            what: "count*/nocount*",
                            limit: MAX_QUOTA_RULES,
                        },
                    ));
                }
                self.quotas
                    .push(rule)
                    .map_err(|e| self.error(here, ConfigErrorKind::QuotaRule(e)))?;
            }
            Supported::Counter => {
                let counter =
                    limits::parse_counter(&args, here.base_dir).map_err(|k| self.error(here, k))?;
                self.counter = Some(counter);
            }
            Supported::Parent => {
                let hop = ParentHop::parse(&args)
                    .map_err(|e| self.error(here, ConfigErrorKind::Parent(Box::new(e))))?;
                let pushed = match self.acl.last_mut() {
                    Some(ace) => ace.push_parent(hop),
                    None => Err(ParentError::NotAfterAllow),
                };
                pushed.map_err(|e| self.error(here, ConfigErrorKind::Parent(Box::new(e))))?;
            }
            Supported::Flush => self.acl.clear(),
            Supported::Internal => {
                self.internal = parse_listen_ip(args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
            }
            Supported::Log => {
                let (log, warning) =
                    logging::parse_log(&args, here.base_dir).map_err(|k| self.error(here, k))?;
                self.log = log;
                self.warn(here, warning);
            }
            Supported::LogFormat => {
                let format = args.first().copied().unwrap_or_default();
                self.logformat = LogFormat::parse(format)
                    .map_err(|e| self.error(here, ConfigErrorKind::LogFormat(e)))?;
                self.warn(here, logging::logformat_zone_warning(format));
            }
            Supported::LogJson => self.logformat = LogFormat::json(),
            Supported::LogDump => {
                self.logdump = logging::parse_logdump(&args).map_err(|k| self.error(here, k))?;
            }
            Supported::NoLog => {
                logging::apply_nolog(&mut self.acl).map_err(|k| self.error(here, k))?;
            }
            Supported::Rotate => {
                self.log_retention.keep =
                    logging::parse_rotate(args.first().copied().unwrap_or_default())
                        .map_err(|k| self.error(here, k))?;
                self.retention_origin = Some((here.file.to_owned(), here.line));
            }
            Supported::Archiver => {
                self.log_retention.archiver =
                    Some(logging::parse_archiver(&args).map_err(|k| self.error(here, k))?);
                self.retention_origin = Some((here.file.to_owned(), here.line));
            }
            Supported::MaxConn => {
                self.maxconn = parse_maxconn(args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
            }
            Supported::External => {
                let ip = parse_listen_ip(args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
                self.external.set(ip);
            }
            Supported::Backlog => {
                let n = parse_backlog(args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
                self.backlog = Some(n);
            }
            Supported::Socks
            | Supported::Proxy
            | Supported::TcpPm
            | Supported::UdpPm
            | Supported::DnsPr
            | Supported::Pop3p
            | Supported::Smtpp
            | Supported::Imapp
            | Supported::Tlspr
            | Supported::Auto
            | Supported::Admin => self.start_service(here, command, &args)?,
            Supported::Service => {}
            Supported::NServer => {
                self.names
                    .nserver(args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
                if self.names.servers.len() > triproxy_dns::MAX_SERVERS {
                    self.warnings.push(ConfigWarning {
                        file: here.file.to_owned(),
                        line: here.line,
                        kind: ConfigWarningKind::ExtraNameServers {
                            used: triproxy_dns::MAX_SERVERS,
                        },
                    });
                }
            }
            Supported::NsCache | Supported::NsCache6 => {
                let v6 = cmd == Supported::NsCache6;
                self.names
                    .nscache(v6, args.first().copied().unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
            }
            Supported::NsRecord => {
                let (name, addr) = (args.first().copied(), args.get(1).copied());
                self.names
                    .nsrecord(name.unwrap_or_default(), addr.unwrap_or_default())
                    .map_err(|k| self.error(here, k))?;
            }
            Supported::FakeResolve => self.names.fake = true,
            Supported::Include => {
                self.include(here, args.first().copied().unwrap_or_default())?;
            }
            Supported::End => return Ok(Flow::End),
            Supported::Daemon => self.process.daemon = true,
            Supported::PidFile => {
                let name = args.first().copied().unwrap_or_default();
                let path = process::parse_file("pidfile", name, here.base_dir)
                    .map_err(|k| self.error(here, k))?;
                self.process.pidfile = Some(path);
            }
            Supported::Config => {
                let name = args.first().copied().unwrap_or_default();
                let path = process::parse_file("config", name, here.base_dir)
                    .map_err(|k| self.error(here, k))?;
                self.process.config_file = Some(path);
            }
            Supported::Monitor => self.monitor(here, args.first().copied().unwrap_or_default())?,
            Supported::System => {
                let command = args.first().copied().unwrap_or_default();
                process::parse_system(&mut self.process, command)
                    .map_err(|k| self.error(here, k))?;
            }
            Supported::Chroot => {
                process::parse_chroot(&mut self.process, &args, here.base_dir)
                    .map_err(|k| self.error(here, k))?;
                // Names are mapped on a reload too, so that a configured name always names
                // the file from outside the root (see `process::in_root`).
                let root = self.process.chroot.clone();
                ROOT.with(|r| *r.borrow_mut() = root);
            }
            Supported::SetUid | Supported::SetGid => {
                let what = if cmd == Supported::SetUid {
                    "setuid"
                } else {
                    "setgid"
                };
                let account =
                    process::parse_account(what, args.first().copied().unwrap_or_default())
                        .map_err(|k| self.error(here, k))?;
                if cmd == Supported::SetUid {
                    self.process.user = Some(account);
                } else {
                    self.process.group = Some(account);
                }
            }
            Supported::Writable => self.warn_at(here, ConfigWarningKind::Writable),
            Supported::StackSize => {
                parse_decimal(args.first().copied().unwrap_or_default())
                    .filter(|&n| n <= u64::from(u32::MAX))
                    .ok_or_else(|| {
                        self.error(
                            here,
                            ConfigErrorKind::InvalidNumber {
                                what: "stacksize",
                                value: args.first().copied().unwrap_or_default().to_owned(),
                                min: 0,
                                max: u64::from(u32::MAX),
                            },
                        )
                    })?;
                self.warn_at(here, ConfigWarningKind::StackSize);
            }
            Supported::Force => self.force = true,
            Supported::NoForce => self.force = false,
        }
        Ok(Flow::Continue)
    }
}

fn arg_count(command: &str, arity: Arity, given: usize) -> ConfigErrorKind {
    ConfigErrorKind::ArgumentCount {
        command: command.to_owned(),
        min: arity.min,
        max: arity.max,
        given,
    }
}
