//! The `auth` chain: which authentication methods a service tries, in which order, and
//! what user name the ACL then sees.
//!
//! 3proxy's `auth A B C` (reference section 6, `src/auth.c doauth()`) tries each method in
//! turn; the first that succeeds decides, and its ACL check (if any) is final. This module
//! parses the chain ([`AuthChain::parse`]) and runs it: [`AuthChain::decide`] runs the whole
//! 3proxy algorithm including the ACL, [`AuthChain::authenticate`] only the
//! credential part (for callers that check the ACL themselves).
//!
//! It is not the password table ([`crate::users`]), the cache `cache` and `cacheacl` read
//! ([`crate::authcache`]) nor the ACL matcher ([`crate::acl`]). `dnsname` and `radius`
//! are recognised and refused with the reason, and the removed `nbname` is refused as
//! 3proxy 1.0 does.

use crate::acl::{self, Ace, AclRequest, Action, ConfigToken};
use crate::authcache::{AuthCache, AuthCacheSettings};
use crate::users::Users;
use core::fmt;
use std::net::IpAddr;
use std::time::Instant;
use triproxy_wire::LogCode;

/// Most methods one `auth` line may list.
pub const MAX_AUTH_METHODS: usize = 16;

/// One authentication method of an `auth` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// `none`: everyone is accepted and **no ACL is evaluated** (no `allow`/`deny`).
    None,
    /// `iponly`: the ACL decides with the user name hidden (the ACL sees `-`); if the ACL
    /// refuses, the chain goes on to the next method. 3proxy's effective default.
    IpOnly,
    /// `useronly`: any user name is accepted without a password, then the ACL decides.
    UserOnly,
    /// `strong`: user name and password are checked against `users`, then the ACL decides.
    Strong,
    /// `cache`: a client the `authcache` remembers is accepted, then the ACL decides.
    Cache,
    /// `cacheacl`: a client the `authcache` remembers is accepted and **no ACL is
    /// evaluated** (so no `parent` entry applies either).
    CacheAcl,
}

impl AuthMethod {
    /// Parses one word of an `auth` line (case-sensitive, as 3proxy).
    ///
    /// ```
    /// use triproxy_policy::auth::{AuthError, AuthMethod};
    /// assert_eq!(AuthMethod::parse("strong"), Ok(AuthMethod::Strong));
    /// assert_eq!(AuthMethod::parse("radius"), Err(AuthError::Radius));
    /// assert_eq!(AuthMethod::parse("nbname"), Err(AuthError::Removed));
    /// ```
    pub fn parse(word: &str) -> Result<AuthMethod, AuthError> {
        match word {
            "none" => Ok(AuthMethod::None),
            "iponly" => Ok(AuthMethod::IpOnly),
            "useronly" => Ok(AuthMethod::UserOnly),
            "strong" => Ok(AuthMethod::Strong),
            "cache" => Ok(AuthMethod::Cache),
            "cacheacl" => Ok(AuthMethod::CacheAcl),
            "dnsname" => Err(AuthError::DnsName),
            "radius" => Err(AuthError::Radius),
            "nbname" => Err(AuthError::Removed),
            other => Err(AuthError::Unknown {
                name: ConfigToken::new(other),
            }),
        }
    }

    /// The configuration word.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::IpOnly => "iponly",
            AuthMethod::UserOnly => "useronly",
            AuthMethod::Strong => "strong",
            AuthMethod::Cache => "cache",
            AuthMethod::CacheAcl => "cacheacl",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an `auth` line is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthError {
    /// `auth` with no method.
    Empty,
    /// More than [`MAX_AUTH_METHODS`] methods.
    TooMany {
        /// The limit.
        max: usize,
    },
    /// `dnsname`, refused: it accepts a client whose address has a PTR record resolving
    /// back to it, and whoever controls the reverse zone of their own address controls
    /// that record.
    DnsName,
    /// `radius`: triproxy has no RADIUS client yet.
    Radius,
    /// `nbname`, removed from 3proxy (a configuration error in 3proxy 1.0 as well).
    Removed,
    /// Not a 3proxy method.
    Unknown {
        /// The word.
        name: ConfigToken,
    },
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Empty => write!(f, "auth needs at least one method"),
            AuthError::TooMany { max } => write!(f, "auth lists more than {max} methods"),
            AuthError::DnsName => write!(
                f,
                "auth method `dnsname` is not supported: it trusts a PTR record an attacker \
                 can control"
            ),
            AuthError::Radius => write!(
                f,
                "auth method `radius` is not supported yet (triproxy has no RADIUS client)"
            ),
            AuthError::Removed => write!(f, "auth method `nbname` was removed from 3proxy"),
            AuthError::Unknown { name } => write!(
                f,
                "unknown auth method `{name}` (expected none, iponly, useronly, strong, \
                 cache or cacheacl)"
            ),
        }
    }
}

impl std::error::Error for AuthError {}

/// Result of the credential part of the chain ([`AuthChain::authenticate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// A method accepted the client.
    Authenticated {
        /// The name ACL user lists match against (`None` matches `-`).
        acl_user: Option<String>,
        /// Whether the ACL must still be checked (false only for `none`).
        check_acl: bool,
    },
    /// Every method refused; the 3proxy log code.
    Failed(LogCode),
}

/// Result of the whole chain, ACL included ([`AuthChain::decide`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// The request may proceed.
    Granted {
        /// The method that accepted it.
        method: AuthMethod,
        /// The name the ACL saw (`None`: `-`, or no ACL for `none`; for `none` this holds
        /// the presented name, for logging).
        acl_user: Option<String>,
        /// Index in the ACL of the `allow` entry that matched; `None` when the ACL was
        /// empty or not evaluated (`none`).
        rule: Option<usize>,
    },
    /// Refused with this 3proxy log code (1 deny, 3 no match, 4 no user name or cache
    /// miss, 5 unknown user, 6/7/8 bad CL/CR/NT password).
    Refused(LogCode),
}

/// The authentication cache as one service uses it, and the time of the request: what
/// the `cache` and `cacheacl` methods read and what `strong` and `useronly` fill.
#[derive(Debug, Clone, Copy)]
pub struct CacheUse<'a> {
    /// The process's table.
    pub cache: &'a AuthCache,
    /// The service's `authcache` settings.
    pub settings: &'a AuthCacheSettings,
    /// The time of the request.
    pub now: Instant,
}

impl CacheUse<'_> {
    fn lookup(
        &self,
        client: IpAddr,
        user: Option<&[u8]>,
        password: Option<&[u8]>,
    ) -> Option<String> {
        self.cache
            .lookup(self.now, self.settings, client, user, password)
    }
}

/// A cache hit (the cached name) or the miss code, 4 as in 3proxy.
fn cache_check(
    cache: Option<CacheUse<'_>>,
    client: IpAddr,
    user: Option<&[u8]>,
    password: Option<&[u8]>,
) -> Result<String, LogCode> {
    cache
        .and_then(|c| c.lookup(client, user, password))
        .ok_or(LogCode::NO_USERNAME)
}

/// The methods of one `auth` line, in order; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthChain(Vec<AuthMethod>);

impl Default for AuthChain {
    fn default() -> Self {
        Self::default_chain()
    }
}

impl AuthChain {
    /// Parses the words after `auth` (1..=[`MAX_AUTH_METHODS`] methods).
    pub fn parse(words: &[&str]) -> Result<AuthChain, AuthError> {
        if words.is_empty() {
            return Err(AuthError::Empty);
        }
        if words.len() > MAX_AUTH_METHODS {
            return Err(AuthError::TooMany {
                max: MAX_AUTH_METHODS,
            });
        }
        words
            .iter()
            .map(|w| AuthMethod::parse(w))
            .collect::<Result<Vec<_>, _>>()
            .map(AuthChain)
    }

    /// 3proxy's effective default, `auth iponly` (installed at start and on every reload,
    /// although the manual says `none`).
    pub fn default_chain() -> AuthChain {
        AuthChain(vec![AuthMethod::IpOnly])
    }

    /// The methods, in order.
    pub fn methods(&self) -> &[AuthMethod] {
        &self.0
    }

    /// Whether any method wants a password from the client (`strong`): decides whether a
    /// SOCKS5 server selects username/password authentication (RFC 1928 section 3).
    /// `cache` and `cacheacl` count too: a cache keyed by user name or password needs them
    /// (a SOCKS5 client that offers no password method is then refused, as with `strong`).
    pub fn needs_password(&self) -> bool {
        self.0.iter().any(|m| {
            matches!(
                m,
                AuthMethod::Strong | AuthMethod::Cache | AuthMethod::CacheAcl
            )
        })
    }

    /// Whether a method reads the authentication cache (`cache`, `cacheacl`).
    pub fn uses_cache(&self) -> bool {
        self.0
            .iter()
            .any(|m| matches!(m, AuthMethod::Cache | AuthMethod::CacheAcl))
    }

    /// Whether the chain starts with `none`: every client is then accepted at once and ACLs
    /// are never evaluated (3proxy: `auth none` disables `allow`/`deny`/`parent`).
    /// A later `none` (`auth strong none`) only applies to clients earlier methods refused.
    pub fn is_none(&self) -> bool {
        self.0.first() == Some(&AuthMethod::None)
    }

    /// Runs the credential part of the chain for a client that presented `user` and
    /// `password` (either may be absent; an empty name counts as absent).
    ///
    /// * `none` → `Authenticated { acl_user: <presented name>, check_acl: false }`.
    /// * `iponly` → `Authenticated { acl_user: None, check_acl: true }`: the name is hidden
    ///   from the ACL (the caller may still log it).
    /// * `useronly` → needs a name (code 4; a name that is not UTF-8 also gives 4, as
    ///   no ACL user entry could name it).
    /// * `strong` → [`Users::verify`] (4 no name, 5 unknown user, 6 bad password).
    ///
    /// The first method that succeeds wins; if all fail, the highest code (3proxy keeps the
    /// largest error; a code ≥ 10 would stop the chain at once).
    ///
    /// Limitation: in 3proxy `iponly` succeeds only if the ACL allows, and otherwise the
    /// chain continues (`auth iponly strong`: trusted networks without a password, the rest
    /// with one). Without the ACL this method cannot know, and treats `iponly` as a success
    /// whose ACL check is still due; use [`AuthChain::decide`] for the exact behaviour.
    pub fn authenticate(
        &self,
        users: &Users,
        user: Option<&[u8]>,
        password: Option<&[u8]>,
    ) -> AuthOutcome {
        self.authenticate_cached(users, None, IpAddr::from([0, 0, 0, 0]), user, password)
    }

    /// [`AuthChain::authenticate`] with the service's authentication cache: `cache` and
    /// `cacheacl` accept a client `cache` remembers (from `client`), and miss with code 4
    /// otherwise or without a cache. Nothing is added to the cache here: entries are made
    /// by [`AuthChain::decide_cached`], once the ACL has allowed.
    pub fn authenticate_cached(
        &self,
        users: &Users,
        cache: Option<CacheUse<'_>>,
        client: IpAddr,
        user: Option<&[u8]>,
        password: Option<&[u8]>,
    ) -> AuthOutcome {
        let user = user.filter(|u| !u.is_empty());
        let mut worst = 0u16;
        for method in &self.0 {
            let code = match method {
                AuthMethod::None => {
                    return AuthOutcome::Authenticated {
                        acl_user: user.and_then(utf8_name),
                        check_acl: false,
                    }
                }
                AuthMethod::IpOnly => {
                    return AuthOutcome::Authenticated {
                        acl_user: None,
                        check_acl: true,
                    }
                }
                AuthMethod::UserOnly | AuthMethod::Strong => {
                    match credential_check(*method, users, user, password) {
                        Ok(name) => {
                            return AuthOutcome::Authenticated {
                                acl_user: Some(name),
                                check_acl: true,
                            }
                        }
                        Err(code) => code,
                    }
                }
                AuthMethod::Cache | AuthMethod::CacheAcl => {
                    match cache_check(cache, client, user, password) {
                        Ok(name) => {
                            return AuthOutcome::Authenticated {
                                acl_user: Some(name),
                                check_acl: *method == AuthMethod::Cache,
                            }
                        }
                        Err(code) => code,
                    }
                }
            };
            worst = worst.max(code.get());
            if worst >= LogCode::LIMIT_EXCEEDED.get() {
                break;
            }
        }
        AuthOutcome::Failed(LogCode(worst))
    }

    /// Runs 3proxy's whole `doauth` for one request: each method in order, with the ACL.
    ///
    /// `req.user` is ignored: each method sets the name the ACL sees (`iponly`: none, so
    /// `-`; `useronly`/`strong`: the presented name). Per method:
    /// * `none` → granted, ACL not evaluated;
    /// * `iponly` → the ACL (without user) allows → granted; otherwise its code (1 or 3) is
    ///   remembered and the **next method is tried**;
    /// * `useronly` / `strong` → credential failure (4, 5, 6) is remembered and the next
    ///   method is tried; on success the ACL (with the user) is final: allow → granted,
    ///   deny → refused 1, no match → refused 3.
    ///
    /// When every method fails, the highest remembered code is returned (as 3proxy; a code
    /// ≥ 10 would stop the chain at once). An empty ACL allows everything.
    ///
    /// ```
    /// use triproxy_policy::{acl::*, auth::*, users::Users};
    /// use triproxy_wire::LogCode;
    /// let mut users = Users::new();
    /// users.add_spec("alice:CL:pw").unwrap();
    /// let chain = AuthChain::parse(&["iponly", "strong"]).unwrap();
    /// let acl = [
    ///     Ace::parse(Action::Allow, &["*", "192.168.0.0/16"]).unwrap(),
    ///     Ace::parse(Action::Allow, &["alice"]).unwrap(),
    /// ];
    /// let mut req = AclRequest {
    ///     user: None, client: "203.0.113.5".parse().unwrap(), target_host: None,
    ///     target_ip: Some("192.0.2.1".parse().unwrap()), port: Some(443),
    ///     operation: Operation::Connect, time: CivilTime { weekday: 2, seconds_of_day: 0 },
    /// };
    /// // Outside the trusted network: iponly finds no rule, strong checks the password.
    /// assert_eq!(chain.decide(&users, None, None, &acl, &req), AuthDecision::Refused(LogCode::NO_USERNAME));
    /// assert!(matches!(chain.decide(&users, Some(b"alice"), Some(b"pw"), &acl, &req),
    ///                  AuthDecision::Granted { method: AuthMethod::Strong, rule: Some(1), .. }));
    /// // Inside: no password needed.
    /// req.client = "192.168.1.9".parse().unwrap();
    /// assert!(matches!(chain.decide(&users, None, None, &acl, &req),
    ///                  AuthDecision::Granted { method: AuthMethod::IpOnly, rule: Some(0), .. }));
    /// ```
    pub fn decide(
        &self,
        users: &Users,
        user: Option<&[u8]>,
        password: Option<&[u8]>,
        acl: &[Ace],
        req: &AclRequest<'_>,
    ) -> AuthDecision {
        self.decide_cached(users, None, user, password, acl, req)
    }

    /// [`AuthChain::decide`] with the service's authentication cache (`req.client` is the
    /// client's address):
    /// * `cache` → a hit is accepted under the cached name and the ACL is final; a miss
    ///   (or no cache) is code 4 and the next method is tried;
    /// * `cacheacl` → a hit is granted without the ACL (`rule: None`); a miss is code 4;
    /// * after `strong` or `useronly` accepted a client and the ACL allowed it, the client
    ///   is remembered (see [`crate::authcache`] for what is kept and for how long).
    pub fn decide_cached(
        &self,
        users: &Users,
        cache: Option<CacheUse<'_>>,
        user: Option<&[u8]>,
        password: Option<&[u8]>,
        acl: &[Ace],
        req: &AclRequest<'_>,
    ) -> AuthDecision {
        let user = user.filter(|u| !u.is_empty());
        let mut worst = 0u16;
        for method in &self.0 {
            let code = match method {
                AuthMethod::None => {
                    return AuthDecision::Granted {
                        method: AuthMethod::None,
                        acl_user: user.and_then(utf8_name),
                        rule: None,
                    }
                }
                AuthMethod::IpOnly => match authorize(acl, req, None) {
                    Ok(rule) => {
                        return AuthDecision::Granted {
                            method: AuthMethod::IpOnly,
                            acl_user: None,
                            rule,
                        }
                    }
                    Err(code) => code,
                },
                AuthMethod::UserOnly | AuthMethod::Strong => {
                    match credential_check(*method, users, user, password) {
                        Ok(name) => {
                            return match authorize(acl, req, Some(&name)) {
                                Ok(rule) => {
                                    if let Some(c) = cache {
                                        c.cache
                                            .insert(c.now, c.settings, req.client, &name, password);
                                    }
                                    AuthDecision::Granted {
                                        method: *method,
                                        acl_user: Some(name),
                                        rule,
                                    }
                                }
                                Err(code) => AuthDecision::Refused(code),
                            }
                        }
                        Err(code) => code,
                    }
                }
                AuthMethod::Cache => match cache_check(cache, req.client, user, password) {
                    Ok(name) => {
                        return match authorize(acl, req, Some(&name)) {
                            Ok(rule) => AuthDecision::Granted {
                                method: AuthMethod::Cache,
                                acl_user: Some(name),
                                rule,
                            },
                            Err(code) => AuthDecision::Refused(code),
                        }
                    }
                    Err(code) => code,
                },
                AuthMethod::CacheAcl => match cache_check(cache, req.client, user, password) {
                    Ok(name) => {
                        return AuthDecision::Granted {
                            method: AuthMethod::CacheAcl,
                            acl_user: Some(name),
                            rule: None,
                        }
                    }
                    Err(code) => code,
                },
            };
            worst = worst.max(code.get());
            if worst >= LogCode::LIMIT_EXCEEDED.get() {
                break;
            }
        }
        AuthDecision::Refused(LogCode(worst))
    }
}

impl AuthChain {
    /// [`AuthChain::decide`] again for an established connection, without its password:
    /// `strong` counts as passed when `password_still_valid` says the password verified at
    /// the start would still verify (its user's entry did not change). Method order,
    /// codes and the final ACL decision are as in `decide`. `Ok` if the chain still
    /// grants the connection, else the refusal's code.
    pub fn recheck(
        &self,
        users: &Users,
        name: Option<&str>,
        password_still_valid: bool,
        acl: &[Ace],
        req: &AclRequest<'_>,
    ) -> Result<(), LogCode> {
        let name = name.filter(|n| !n.is_empty());
        let mut worst = 0u16;
        for method in &self.0 {
            let code = match (method, name) {
                (AuthMethod::None, _) => return Ok(()),
                // A reload empties the cache: a miss, as 3proxy's (the next method decides).
                (AuthMethod::Cache | AuthMethod::CacheAcl, _) => LogCode::NO_USERNAME,
                (AuthMethod::IpOnly, _) => match authorize(acl, req, None) {
                    Ok(_) => return Ok(()),
                    Err(code) => code,
                },
                (AuthMethod::UserOnly | AuthMethod::Strong, None) => LogCode::NO_USERNAME,
                (AuthMethod::Strong, Some(n)) if !users.contains(n.as_bytes()) => {
                    LogCode::USER_NOT_FOUND
                }
                (AuthMethod::Strong, Some(_)) if !password_still_valid => LogCode::BAD_CL_PASSWORD,
                (AuthMethod::UserOnly | AuthMethod::Strong, Some(n)) => {
                    return authorize(acl, req, Some(n)).map(|_| ());
                }
            };
            worst = worst.max(code.get());
            if worst >= LogCode::LIMIT_EXCEEDED.get() {
                break;
            }
        }
        Err(LogCode(worst))
    }
}

fn utf8_name(name: &[u8]) -> Option<String> {
    core::str::from_utf8(name).ok().map(str::to_owned)
}

/// `useronly` / `strong` without the ACL: the accepted name, or the failure code.
fn credential_check(
    method: AuthMethod,
    users: &Users,
    user: Option<&[u8]>,
    password: Option<&[u8]>,
) -> Result<String, LogCode> {
    let name = user.ok_or(LogCode::NO_USERNAME)?;
    if method == AuthMethod::Strong {
        users.verify(name, password.unwrap_or_default())?;
        // A verified name is a key of the table, hence UTF-8.
        return utf8_name(name).ok_or(LogCode::USER_NOT_FOUND);
    }
    utf8_name(name).ok_or(LogCode::NO_USERNAME)
}

/// 3proxy `checkACL` with the given user: the matching `allow` rule (None for an empty ACL)
/// or the refusal code.
fn authorize(
    acl: &[Ace],
    req: &AclRequest<'_>,
    user: Option<&str>,
) -> Result<Option<usize>, LogCode> {
    if acl.is_empty() {
        return Ok(None);
    }
    let req = AclRequest { user, ..*req };
    let index = acl::first_match(acl, &req).ok_or(LogCode::ACL_NO_MATCH)?;
    match acl.get(index).map(|ace| ace.action) {
        Some(Action::Allow) => Ok(Some(index)),
        _ => Err(LogCode::ACL_DENIED),
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
