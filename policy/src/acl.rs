//! Access control lists: 3proxy's `allow` / `deny` entries and their first-match evaluation.
//!
//! This module parses the words that follow `allow` or `deny` in a 3proxy configuration into
//! an [`Ace`], and answers, for one request described by an [`AclRequest`], whether an ACL
//! (a slice of entries, in configuration order) allows it, denies it, or has no matching
//! entry ([`check`]). The semantics follow 3proxy 1.0 (`src/conf.c make_ace()`,
//! `src/acl.c ACLmatches()/checkACL()`); every place where triproxy differs is stated on the
//! item concerned.
//!
//! It is not the `auth` chain (see [`crate::auth`], which decides *which* user name an ACL
//! sees), and it does not resolve names, read clocks or know about parents, bandwidth limits
//! or traffic counters: the caller passes the resolved address and the civil time, and the
//! other 3proxy commands that reuse the ACL tail (`bandlimin`, `connlim`, `countin`, ...) can
//! reuse [`Ace::parse`] and [`Ace::matches`].
//!
//! This file holds the entry ([`Ace`]), its parser and the first-match evaluation; the
//! rest is split by idea: `request` (the request as the ACL sees it, and the verdict),
//! `items` (the items of each field, parsed and matched one token at a time) and `error`
//! (the parse errors, shared with `users` and `auth`).

use crate::parent::{ParentError, ParentHop, Parents};

/// Most items one comma-separated ACL field may list (users, addresses, ports, periods...).
/// 3proxy has no limit; triproxy refuses longer lists with [`AclError::TooManyItems`].
pub const MAX_LIST_ITEMS: usize = 4096;

/// Most fields after `allow`/`deny`: users, sources, targets, ports, operations, weekdays,
/// time periods, weight.
pub const MAX_ACE_FIELDS: usize = 8;

/// Longest user name or host-name pattern an ACL item may hold, in bytes (the longest name
/// RFC 1929 and a SOCKS5 domain name can carry).
pub const MAX_ACL_NAME_LEN: usize = 255;

/// Longest excerpt of a configuration token kept in an error ([`ConfigToken`]), in bytes.
pub const TOKEN_EXCERPT_LEN: usize = 64;

/// Seconds in a day: the largest end of a [`TimePeriod`] (`24:00:00`).
pub const SECONDS_PER_DAY: u32 = 86_400;

mod error;
mod items;
mod request;

pub use error::{AclError, AclField, ConfigToken, TokenProblem};
pub use items::{
    HostMatch, HostPattern, IpRange, OperationSet, PortRange, Targets, TimePeriod, Weekdays,
};
pub use request::{AclRequest, AclVerdict, Action, CivilTime, Operation};

fn parse_weight(text: &str) -> Result<u32, TokenProblem> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TokenProblem::NotANumber);
    }
    text.parse().map_err(|_| TokenProblem::NotANumber)
}

fn parse_user(token: &str) -> Result<String, TokenProblem> {
    if token.len() > MAX_ACL_NAME_LEN {
        return Err(TokenProblem::TooLong {
            max: MAX_ACL_NAME_LEN,
        });
    }
    Ok(token.to_owned())
}

/// Whether a target token that failed to parse as an address should be reported as a bad
/// address rather than read as a host-name pattern: it has `:` or `/`, or it is made only
/// of digits, dots and dashes and ends in a digit (like `1.2.3.256` or `10.0.0.9-10.0.0.1`).
fn looks_numeric(token: &str) -> bool {
    token.contains([':', '/'])
        || (token
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
            && token.bytes().last().is_some_and(|b| b.is_ascii_digit()))
}

enum TargetItem {
    Ip(IpRange),
    Host(HostPattern),
}

fn parse_target(token: &str) -> Result<TargetItem, TokenProblem> {
    match IpRange::parse(token) {
        Ok(range) => Ok(TargetItem::Ip(range)),
        Err(problem) if looks_numeric(token) => Err(problem),
        Err(_) => HostPattern::parse(token).map(TargetItem::Host),
    }
}

/// Splits a list field on commas and parses each item; `*` alone means "any" (`None`).
fn parse_list<T>(
    field: AclField,
    text: &str,
    mut item: impl FnMut(&str) -> Result<T, TokenProblem>,
) -> Result<Option<Vec<T>>, AclError> {
    if text == "*" {
        return Ok(None);
    }
    let mut out = Vec::new();
    for token in text.split(',') {
        if out.len() >= MAX_LIST_ITEMS {
            return Err(AclError::TooManyItems {
                field,
                max: MAX_LIST_ITEMS,
            });
        }
        let bad = |token: &str, problem| AclError::BadToken {
            field,
            token: ConfigToken::new(token),
            problem,
        };
        if token.is_empty() {
            return Err(bad(text, TokenProblem::EmptyItem));
        }
        if token == "*" {
            return Err(bad(token, TokenProblem::StarInList));
        }
        out.push(item(token).map_err(|problem| bad(token, problem))?);
    }
    Ok(Some(out))
}

/// One access control entry: the fields of an `allow` or `deny` line.
///
/// Each field is `None` when it was omitted or `*` (matches anything). The weight is parsed
/// and kept for callers, but matching does not use it: 3proxy's rule "an entry with weight
/// W matches only if W ≥ the weight of the entry matched before on this connection" needs
/// per-connection state that [`AclRequest`] does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    /// Allow or deny.
    pub action: Action,
    users: Option<Vec<String>>,
    sources: Option<Vec<IpRange>>,
    targets: Option<Targets>,
    ports: Option<Vec<PortRange>>,
    operations: Option<OperationSet>,
    weekdays: Option<Weekdays>,
    times: Option<Vec<TimePeriod>>,
    weight: Option<u32>,
    /// `parent` lines after an `allow` line (empty: connect directly).
    parents: Parents,
    /// `nolog` after the line: connections this entry decides leave no log record.
    logging: Logging,
}

/// Whether the connections an ACL entry decides are logged (3proxy's `nolog` command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Logging {
    /// The default: one record per connection (or HTTP request).
    #[default]
    Logged,
    /// `nolog`: the record is produced but not written (health checks, monitoring).
    Unlogged,
}

impl Ace {
    /// Parses the words after `allow` / `deny`:
    /// `[users [sources [targets [ports [operations [weekdays [times [weight]]]]]]]]`.
    ///
    /// Lists are comma-separated without spaces; an omitted trailing field or `*` means any.
    /// Limits: [`MAX_ACE_FIELDS`] fields, [`MAX_LIST_ITEMS`] items per list,
    /// [`MAX_ACL_NAME_LEN`] bytes per user name or host pattern. Errors name the field and
    /// the offending token. (3proxy 1.0 `make_ace()`, reference section 7.)
    ///
    /// ```
    /// use triproxy_policy::acl::{Ace, Action};
    /// let ace = Ace::parse(Action::Allow, &["*", "10.0.0.0/8", "*.example.com", "80,443"]).unwrap();
    /// assert_eq!(ace.ports().map(|p| p.len()), Some(2));
    /// let err = Ace::parse(Action::Deny, &["*", "*", "*", "80-70"]).unwrap_err();
    /// assert_eq!(err.to_string(), "ACL field ports: bad token `80-70`: range end is below its start");
    /// ```
    pub fn parse(action: Action, fields: &[&str]) -> Result<Ace, AclError> {
        if fields.len() > MAX_ACE_FIELDS {
            return Err(AclError::TooManyFields {
                count: fields.len(),
            });
        }
        let mut ace = Ace::any(action);
        for (field, text) in AclField::ORDER.iter().copied().zip(fields.iter().copied()) {
            match field {
                AclField::Users => ace.users = parse_list(field, text, parse_user)?,
                AclField::Sources => ace.sources = parse_list(field, text, IpRange::parse)?,
                AclField::Targets => {
                    ace.targets = parse_list(field, text, parse_target)?.map(|items| {
                        let mut t = Targets::default();
                        for item in items {
                            match item {
                                TargetItem::Ip(r) => t.ips.push(r),
                                TargetItem::Host(h) => t.hosts.push(h),
                            }
                        }
                        t
                    });
                }
                AclField::Ports => ace.ports = parse_list(field, text, PortRange::parse)?,
                AclField::Operations => {
                    ace.operations =
                        parse_list(field, text, OperationSet::parse_token)?.map(|sets| {
                            sets.into_iter()
                                .fold(OperationSet::EMPTY, |a, b| OperationSet(a.0 | b.0))
                        });
                }
                AclField::Weekdays => {
                    ace.weekdays = parse_list(field, text, Weekdays::parse_item)?
                        .map(|sets| sets.into_iter().fold(Weekdays(0), Weekdays::union));
                }
                AclField::TimePeriods => {
                    ace.times = parse_list(field, text, TimePeriod::parse)?;
                }
                AclField::Weight => {
                    ace.weight = if text == "*" {
                        None
                    } else {
                        Some(parse_weight(text).map_err(|problem| AclError::BadToken {
                            field,
                            token: ConfigToken::new(text),
                            problem,
                        })?)
                    };
                }
            }
        }
        Ok(ace)
    }

    /// An entry with every field "any" (`allow` or `deny` alone).
    pub fn any(action: Action) -> Ace {
        Ace {
            action,
            users: None,
            sources: None,
            targets: None,
            ports: None,
            operations: None,
            weekdays: None,
            times: None,
            weight: None,
            parents: Parents::new(),
            logging: Logging::Logged,
        }
    }

    /// `nolog`: the connections this entry decides are not logged.
    pub fn set_nolog(&mut self) {
        self.logging = Logging::Unlogged;
    }

    /// Whether the connections this entry decides are logged.
    pub fn logging(&self) -> Logging {
        self.logging
    }

    /// Whether every field of the entry matches the request (see [`AclRequest`] for how
    /// users, addresses and ports are compared and [`Targets`] for the target field).
    pub fn matches(&self, req: &AclRequest<'_>) -> bool {
        if let Some(users) = &self.users {
            let name = req.acl_user();
            if !users.iter().any(|u| u == name) {
                return false;
            }
        }
        if let Some(sources) = &self.sources {
            if !sources.iter().any(|r| r.contains(req.client)) {
                return false;
            }
        }
        if let Some(targets) = &self.targets {
            if !targets.matches(req) {
                return false;
            }
        }
        if let (Some(ports), Some(port)) = (&self.ports, req.effective_port()) {
            if !ports.iter().any(|r| r.contains(port)) {
                return false;
            }
        }
        if let Some(ops) = self.operations {
            if !ops.contains(req.operation) {
                return false;
            }
        }
        if let Some(days) = self.weekdays {
            if !days.contains(req.time.weekday) {
                return false;
            }
        }
        if let Some(times) = &self.times {
            if !times.iter().any(|p| p.contains(req.time.seconds_of_day)) {
                return false;
            }
        }
        true
    }

    /// The user names (`None` = any user; `-` stands for "no user").
    pub fn users(&self) -> Option<&[String]> {
        self.users.as_deref()
    }

    /// The client address ranges (`None` = any).
    pub fn sources(&self) -> Option<&[IpRange]> {
        self.sources.as_deref()
    }

    /// The target items (`None` = any).
    pub fn targets(&self) -> Option<&Targets> {
        self.targets.as_ref()
    }

    /// The port ranges (`None` = any).
    pub fn ports(&self) -> Option<&[PortRange]> {
        self.ports.as_deref()
    }

    /// The operations (`None` = any).
    pub fn operations(&self) -> Option<OperationSet> {
        self.operations
    }

    /// The weekdays (`None` = any).
    pub fn weekdays(&self) -> Option<Weekdays> {
        self.weekdays
    }

    /// The time periods (`None` = any time).
    pub fn time_periods(&self) -> Option<&[TimePeriod]> {
        self.times.as_deref()
    }

    /// The weight (field 8), if given and not `*`.
    pub fn weight(&self) -> Option<u32> {
        self.weight
    }

    /// The parent proxies of an `allow` entry (empty: connect directly).
    pub fn parents(&self) -> &Parents {
        &self.parents
    }

    /// Adds a `parent` line to this entry. Only `allow` entries take parents.
    pub fn push_parent(&mut self, hop: ParentHop) -> Result<(), ParentError> {
        if self.action != Action::Allow {
            return Err(ParentError::NotAfterAllow);
        }
        self.parents.push(hop)
    }
}

/// Index of the first entry that matches the request, if any. As in 3proxy, an entry with
/// parents is passed over for BIND and ICMP requests, which cannot go through a chain.
///
/// A UDP ASSOCIATE request without a destination (its DST is the client's own address,
/// usually `0.0.0.0:0`; every datagram is checked later with its real destination) is
/// not refused by a `deny` entry that restricts the destination (address or port): that
/// entry denies only some destinations, which the per-datagram check refuses. 3proxy
/// judges the request's DST like a destination instead, so that `deny * * * 25` refuses
/// every association naming `0.0.0.0:0`.
pub fn first_match(acl: &[Ace], req: &AclRequest<'_>) -> Option<usize> {
    let chainable = !matches!(req.operation, Operation::Bind | Operation::IcmpAssoc);
    let any_destination = req.operation == Operation::UdpAssoc
        && req.effective_target_ip().is_none()
        && req.target_host.is_none()
        && req.effective_port().is_none();
    acl.iter().position(|ace| {
        let partial_deny =
            ace.action == Action::Deny && (ace.targets.is_some() || ace.ports.is_some());
        (chainable || ace.parents.is_empty())
            && !(any_destination && partial_deny)
            && ace.matches(req)
    })
}

/// What the limit rules of 3proxy (`bandlim*`, `connlim`, `count*`) give a request: for
/// each rule whose ACL fields match `req`, in order, `limit(rule)`, up to the first
/// matching rule for which it is `None`, an exemption (`nobandlimin`, `noconnlim`,
/// `nocountin`, ...), which stops the scan. One place for the semantics all three share.
pub fn until_exempt<'r, R: 'r, T>(
    rules: impl IntoIterator<Item = &'r R>,
    req: &AclRequest<'_>,
    entry: impl Fn(&R) -> &Ace,
    limit: impl FnMut(&'r R) -> Option<T>,
) -> Vec<T> {
    rules
        .into_iter()
        .filter(|r| entry(r).matches(req))
        .map_while(limit)
        .collect()
}

/// Evaluates an ACL as 3proxy's `checkACL` does: entries in order, the first match decides;
/// no match refuses ([`AclVerdict::NoMatch`], code 3); **an empty list allows everything**.
///
/// ```
/// use triproxy_policy::acl::*;
/// let acl = [Ace::parse(Action::Deny, &["*", "*", "*", "25"]).unwrap(), Ace::any(Action::Allow)];
/// let req = AclRequest {
///     user: None, client: "10.0.0.1".parse().unwrap(), target_host: None,
///     target_ip: Some("192.0.2.1".parse().unwrap()), port: Some(25),
///     operation: Operation::Connect, time: CivilTime { weekday: 1, seconds_of_day: 0 },
/// };
/// assert_eq!(check(&acl, &req), AclVerdict::Deny);
/// assert_eq!(check(&[], &req), AclVerdict::Allow);
/// ```
pub fn check(acl: &[Ace], req: &AclRequest<'_>) -> AclVerdict {
    if acl.is_empty() {
        return AclVerdict::Allow;
    }
    match first_match(acl, req).and_then(|i| acl.get(i)) {
        Some(ace) => match ace.action {
            Action::Allow => AclVerdict::Allow,
            Action::Deny => AclVerdict::Deny,
        },
        None => AclVerdict::NoMatch,
    }
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
