//! The global `users` table: user names and their passwords, and the password check.
//!
//! 3proxy keeps one table for all services, filled by `users` commands (cumulative; a
//! reload starts from an empty table). This module parses the `users` arguments
//! ([`Users::add_spec`]) and answers "is this the password of that user" in constant time
//! with 3proxy's log codes ([`Users::verify`]).
//!
//! It is not the `auth` chain (which decides whether a password is needed at all; see
//! [`crate::auth`]) and it does not read password files: `$file` inclusion is the
//! configuration parser's job. Passwords are cleartext (`CL`), MD5-crypt (`CR`, checked
//! by [`crate::crypt`]) or NT hashes (`NT`); 3proxy's `$3$` crypt and `LM` entries are
//! refused explicitly rather than ignored.

use crate::acl::ConfigToken;
use crate::crypt::{CryptError, Md5Crypt, NtHash};
use core::fmt;
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;
use triproxy_wire::LogCode;

/// Longest user name, in bytes (RFC 1929 section 2: ULEN is one byte).
pub const MAX_USER_NAME_LEN: usize = 255;

/// Longest password, in bytes (RFC 1929 section 2: PLEN is one byte).
pub const MAX_PASSWORD_LEN: usize = 255;

/// Most entries the table holds.
pub const MAX_USERS: usize = 1 << 20;

/// A stored password.
///
/// `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Password {
    /// `CL`: the password itself.
    Cleartext(String),
    /// `CR`: an MD5-crypt string (`$1$salt$hash`).
    Md5Crypt(Md5Crypt),
    /// `NT`: the NT hash (MD4 of the UTF-16LE password).
    Nt(NtHash),
}

impl Password {
    /// The 3proxy log code of a wrong password of this type: `CL` 6, `CR` 7, `NT` 8.
    pub fn mismatch_code(&self) -> LogCode {
        match self {
            Password::Cleartext(_) => LogCode::BAD_CL_PASSWORD,
            Password::Md5Crypt(_) => LogCode::BAD_CR_PASSWORD,
            Password::Nt(_) => LogCode::BAD_NT_PASSWORD,
        }
    }

    /// Whether `presented` is this password, in constant time for the comparison itself
    /// (hashing takes the time it takes, whatever the stored value).
    pub fn matches(&self, presented: &[u8]) -> bool {
        match self {
            Password::Cleartext(secret) => constant_time_eq(secret.as_bytes(), presented),
            Password::Md5Crypt(hash) => {
                presented.len() <= MAX_PASSWORD_LEN && hash.verify(presented)
            }
            Password::Nt(hash) => presented.len() <= MAX_PASSWORD_LEN && hash.verify(presented),
        }
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Password::Cleartext(_) => write!(f, "Cleartext(<redacted>)"),
            Password::Md5Crypt(h) => write!(f, "{h:?}"),
            Password::Nt(h) => write!(f, "{h:?}"),
        }
    }
}

/// Why a `users` argument or an insertion was refused. `Display` names the user (or the
/// entry, when it has no `:` and so no password) and never prints a password.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UsersError {
    /// An entry without `:` (3proxy keeps it as a user that can never log in; triproxy
    /// refuses it).
    MissingColon {
        /// The entry.
        entry: ConfigToken,
    },
    /// An entry with an empty user name (`:pass`).
    EmptyName,
    /// A user name longer than [`MAX_USER_NAME_LEN`].
    NameTooLong {
        /// The start of the name.
        name: ConfigToken,
        /// Its length in bytes.
        len: usize,
    },
    /// A password type triproxy does not support (`LM`).
    UnsupportedPasswordType {
        /// The user.
        name: ConfigToken,
        /// The type as written (`LM`).
        kind: &'static str,
    },
    /// A `CR` or `NT` value that is not a hash triproxy can check.
    BadHash {
        /// The user.
        name: ConfigToken,
        /// The type as written (`CR` or `NT`).
        kind: &'static str,
        /// What is wrong with it.
        error: CryptError,
    },
    /// `name:TYPE:pass` where TYPE is not `CL`, `CR`, `NT` or empty. The type is not
    /// printed: with a `:` inside a password it may be part of the secret.
    UnknownPasswordType {
        /// The user.
        name: ConfigToken,
    },
    /// An empty password. 3proxy accepts *any* password for such a user; triproxy refuses
    /// the entry instead of silently allowing everyone in.
    EmptyPassword {
        /// The user.
        name: ConfigToken,
    },
    /// A password longer than [`MAX_PASSWORD_LEN`].
    PasswordTooLong {
        /// The user.
        name: ConfigToken,
        /// Its length in bytes.
        len: usize,
    },
    /// The table already holds [`MAX_USERS`] users.
    TooManyUsers {
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersError::MissingColon { entry } => write!(
                f,
                "users entry `{entry}` has no `:`; write `name:CL:password`"
            ),
            UsersError::EmptyName => write!(f, "users entry with an empty user name"),
            UsersError::NameTooLong { name, len } => write!(
                f,
                "user name `{name}` is {len} bytes long (at most {MAX_USER_NAME_LEN})"
            ),
            UsersError::UnsupportedPasswordType { name, kind } => write!(
                f,
                "user `{name}`: password type `{kind}` is not supported (only CL, CR and NT)"
            ),
            UsersError::BadHash { name, kind, error } => {
                write!(f, "user `{name}`: bad `{kind}` password: {error}")
            }
            UsersError::UnknownPasswordType { name } => write!(
                f,
                "user `{name}`: unknown password type (expected CL, CR or NT; \
                 write `{name}:CL:...` for a password containing `:`)"
            ),
            UsersError::EmptyPassword { name } => write!(
                f,
                "user `{name}` has an empty password (3proxy would accept any password; \
                 refused)"
            ),
            UsersError::PasswordTooLong { name, len } => write!(
                f,
                "user `{name}`: password is {len} bytes long (at most {MAX_PASSWORD_LEN})"
            ),
            UsersError::TooManyUsers { max } => write!(f, "more than {max} users"),
        }
    }
}

impl std::error::Error for UsersError {}

/// The `users` table. Names are exact, case-sensitive byte strings.
///
/// `Debug` prints the user names only.
///
/// ```
/// use triproxy_policy::users::Users;
/// use triproxy_wire::LogCode;
/// let mut users = Users::new();
/// users.add_spec("alice:CL:secret").unwrap();
/// assert_eq!(users.verify(b"alice", b"secret"), Ok(()));
/// assert_eq!(users.verify(b"alice", b"guess"), Err(LogCode::BAD_CL_PASSWORD));
/// assert_eq!(users.verify(b"bob", b"secret"), Err(LogCode::USER_NOT_FOUND));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Users {
    table: BTreeMap<String, Password>,
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Users")
            .field("names", &self.table.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Users {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one `users` argument.
    ///
    /// Forms: `name:CL:pass`, `name::pass` (empty type = CL) and `name:pass` (no type = CL;
    /// the password must then contain no `:`). Everything after the second `:` is the
    /// password, so `name:CL:a:b` has the password `a:b`. `name:CR:$1$salt$hash` is an
    /// MD5-crypt hash and `name:NT:HEX32` an NT hash (either refused with
    /// [`UsersError::BadHash`] when malformed, see [`crate::crypt`]); `name:LM:...` gives
    /// [`UsersError::UnsupportedPasswordType`]; any other type gives
    /// [`UsersError::UnknownPasswordType`]; an entry without `:` gives
    /// [`UsersError::MissingColon`] (3proxy silently keeps it as an unusable entry).
    ///
    /// Differs from 3proxy 1.0, whose parser only recognises `name:XX:...` with a
    /// two-letter type and keeps `name:pass` as an unusable entry named `name:pass`.
    /// Later definitions of a name replace earlier ones. Limits: names up to
    /// [`MAX_USER_NAME_LEN`] bytes, passwords 1..=[`MAX_PASSWORD_LEN`] bytes,
    /// [`MAX_USERS`] entries.
    pub fn add_spec(&mut self, spec: &str) -> Result<(), UsersError> {
        let Some((name, rest)) = spec.split_once(':') else {
            return Err(UsersError::MissingColon {
                entry: ConfigToken::new(spec),
            });
        };
        if name.is_empty() {
            return Err(UsersError::EmptyName);
        }
        let password = match rest.split_once(':') {
            None => rest,
            Some(("" | "CL", password)) => password,
            Some(("CR", hash)) => {
                let hash = Md5Crypt::parse(hash).map_err(|e| bad_hash(name, "CR", e))?;
                return self.try_insert(name, Password::Md5Crypt(hash));
            }
            Some(("NT", hash)) => {
                let hash = NtHash::parse(hash).map_err(|e| bad_hash(name, "NT", e))?;
                return self.try_insert(name, Password::Nt(hash));
            }
            Some(("LM", _)) => {
                return Err(UsersError::UnsupportedPasswordType {
                    name: ConfigToken::new(name),
                    kind: "LM",
                })
            }
            Some(_) => {
                return Err(UsersError::UnknownPasswordType {
                    name: ConfigToken::new(name),
                })
            }
        };
        self.try_insert(name, Password::Cleartext(password.to_owned()))
    }

    /// Adds or replaces a user, checking the limits [`Users::add_spec`] states.
    pub fn try_insert(&mut self, name: &str, password: Password) -> Result<(), UsersError> {
        self.insert_capped(name, password, MAX_USERS)
    }

    fn insert_capped(
        &mut self,
        name: &str,
        password: Password,
        max_users: usize,
    ) -> Result<(), UsersError> {
        if name.is_empty() {
            return Err(UsersError::EmptyName);
        }
        if name.len() > MAX_USER_NAME_LEN {
            return Err(UsersError::NameTooLong {
                name: ConfigToken::new(name),
                len: name.len(),
            });
        }
        if let Password::Cleartext(secret) = &password {
            if secret.is_empty() {
                return Err(UsersError::EmptyPassword {
                    name: ConfigToken::new(name),
                });
            }
            if secret.len() > MAX_PASSWORD_LEN {
                return Err(UsersError::PasswordTooLong {
                    name: ConfigToken::new(name),
                    len: secret.len(),
                });
            }
        }
        if self.table.len() >= max_users && !self.table.contains_key(name) {
            return Err(UsersError::TooManyUsers { max: max_users });
        }
        self.table.insert(name.to_owned(), password);
        Ok(())
    }

    /// Adds or replaces a user. An entry that [`Users::try_insert`] would refuse (empty or
    /// over-long name or password, full table) is not stored; use `try_insert` to learn why.
    pub fn insert(&mut self, name: &str, password: Password) {
        // Documented: refused entries are dropped; callers who care use `try_insert`.
        let _ = self.try_insert(name, password);
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Whether a user of that exact name exists.
    pub fn contains(&self, name: &[u8]) -> bool {
        core::str::from_utf8(name).is_ok_and(|name| self.table.contains_key(name))
    }

    /// The user names, in byte order.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.table.keys().map(String::as_str)
    }

    /// Checks a password (3proxy `strongauth`).
    ///
    /// Unknown user (including any name that is not UTF-8, since configured names are) →
    /// `Err(LogCode::USER_NOT_FOUND)` (5); wrong password → the stored type's code
    /// ([`Password::mismatch_code`]: `CL` 6, `CR` 7, `NT` 8). The cleartext comparison
    /// (`subtle`, over fixed-size buffers) takes the same time wherever the passwords
    /// differ and whatever their lengths (only copying them into those buffers is
    /// proportional to the length); hashed passwords are hashed and the digests compared
    /// with `subtle`. Finding the user is an ordinary map lookup.
    pub fn verify(&self, name: &[u8], password: &[u8]) -> Result<(), LogCode> {
        let stored = core::str::from_utf8(name)
            .ok()
            .and_then(|name| self.table.get(name))
            .ok_or(LogCode::USER_NOT_FOUND)?;
        if stored.matches(password) {
            Ok(())
        } else {
            Err(stored.mismatch_code())
        }
    }
}

impl Users {
    /// Whether `name` has the same entry (type and secret) in both tables: a password
    /// verified against `other` would be verified against `self` too. A reload under
    /// `force` uses this instead of keeping tunnels' passwords.
    pub fn same_entry(&self, other: &Users, name: &str) -> bool {
        match (self.table.get(name), other.table.get(name)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

fn bad_hash(name: &str, kind: &'static str, error: CryptError) -> UsersError {
    UsersError::BadHash {
        name: ConfigToken::new(name),
        kind,
        error,
    }
}

/// Compares `presented` with `stored` in constant time with `subtle`: both are copied into
/// zero-padded buffers of [`MAX_PASSWORD_LEN`] bytes, which are compared whole, and the
/// lengths are compared too (so `ab` never equals `ab\0`). subtle's slice comparison
/// returns early when the lengths differ, which would tell the stored length; the fixed
/// buffers do not. Only the two copies take time proportional to each length. A presented
/// password longer than any stored one is refused at once: that depends on the presented
/// length only.
fn constant_time_eq(stored: &[u8], presented: &[u8]) -> bool {
    let mut s = [0u8; MAX_PASSWORD_LEN];
    let mut p = [0u8; MAX_PASSWORD_LEN];
    let (Some(s_dst), Some(p_dst)) = (s.get_mut(..stored.len()), p.get_mut(..presented.len()))
    else {
        return false;
    };
    s_dst.copy_from_slice(stored);
    p_dst.copy_from_slice(presented);
    let same_len = stored.len().ct_eq(&presented.len());
    bool::from(s.as_slice().ct_eq(p.as_slice()) & same_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(u: &Users, name: &str) -> Option<String> {
        match u.table.get(name)? {
            Password::Cleartext(s) => Some(s.clone()),
            _ => None,
        }
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        for wrong in [
            &b"Secret"[..],
            b"secreT",
            b"secre",
            b"secrets",
            b"",
            b"secret\0",
            b"xxxxxx",
        ] {
            assert!(!constant_time_eq(b"secret", wrong), "{wrong:?}");
        }
        assert!(!constant_time_eq(b"", b"\0"));
        assert!(!constant_time_eq(b"\0", b""));
        // A presented password that is the stored one padded with NULs must not pass.
        assert!(!constant_time_eq(b"ab", b"ab\0\0"));
        // The longest password, and a presented one past the cap.
        let longest = [b'a'; MAX_PASSWORD_LEN];
        assert!(constant_time_eq(&longest, &longest));
        assert!(!constant_time_eq(&longest, &[b'a'; MAX_PASSWORD_LEN + 1]));
    }

    #[test]
    fn add_spec_forms() {
        let mut u = Users::new();
        u.add_spec("a:CL:one").unwrap();
        u.add_spec("b:two").unwrap();
        u.add_spec("c::three").unwrap();
        u.add_spec("d:CL:with:colons").unwrap();
        u.add_spec("e:CL:").unwrap_err();
        assert_eq!(u.len(), 4);
        assert_eq!(secret(&u, "a").as_deref(), Some("one"));
        assert_eq!(secret(&u, "b").as_deref(), Some("two"));
        assert_eq!(secret(&u, "c").as_deref(), Some("three"));
        assert_eq!(secret(&u, "d").as_deref(), Some("with:colons"));
        // Later definitions replace earlier ones.
        u.add_spec("a:CL:uno").unwrap();
        assert_eq!(u.len(), 4);
        assert_eq!(u.verify(b"a", b"uno"), Ok(()));
        assert_eq!(u.verify(b"a", b"one"), Err(LogCode::BAD_CL_PASSWORD));
        assert!(u.contains(b"d") && !u.contains(b"D") && !u.contains(b"\xff"));
        assert_eq!(u.names().collect::<Vec<_>>(), ["a", "b", "c", "d"]);
    }

    #[test]
    fn add_spec_errors() {
        let mut u = Users::new();
        let e = u.add_spec("alice").unwrap_err();
        assert_eq!(
            e,
            UsersError::MissingColon {
                entry: ConfigToken::new("alice")
            }
        );
        assert!(e.to_string().contains("`alice`"));
        assert_eq!(u.add_spec(":CL:pw"), Err(UsersError::EmptyName));
        assert_eq!(u.add_spec(":pw"), Err(UsersError::EmptyName));
        let e = u.add_spec("bob:LM:x").unwrap_err();
        assert_eq!(
            e,
            UsersError::UnsupportedPasswordType {
                name: ConfigToken::new("bob"),
                kind: "LM"
            }
        );
        assert_eq!(
            e.to_string(),
            "user `bob`: password type `LM` is not supported (only CL, CR and NT)"
        );
        for (spec, kind, error, text) in [
            (
                "bob:CR:$1$s$h",
                "CR",
                CryptError::BadChecksum,
                "user `bob`: bad `CR` password: the MD5-crypt hash after the salt must be \
                 22 characters of ./0-9A-Za-z",
            ),
            (
                "bob:CR:$3$salt$hash",
                "CR",
                CryptError::Blake2Crypt,
                "user `bob`: bad `CR` password: `$3$` (3proxy's BLAKE2 crypt) is not \
                 supported; use `$1$` (openssl passwd -1)",
            ),
            (
                "bob:CR:plain",
                "CR",
                CryptError::NotCrypt,
                "user `bob`: bad `CR` password: expected MD5-crypt `$1$salt$hash` \
                 (openssl passwd -1)",
            ),
            (
                "bob:NT:ABCD",
                "NT",
                CryptError::BadNtHash,
                "user `bob`: bad `NT` password: an NT hash is 32 hex digits",
            ),
        ] {
            let e = u.add_spec(spec).unwrap_err();
            assert_eq!(
                e,
                UsersError::BadHash {
                    name: ConfigToken::new("bob"),
                    kind,
                    error
                }
            );
            assert_eq!(e.to_string(), text);
        }
        let e = u.add_spec("carol:my:secret").unwrap_err();
        assert_eq!(
            e,
            UsersError::UnknownPasswordType {
                name: ConfigToken::new("carol")
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("carol") && !msg.contains("secret") && !msg.contains("my"));
        // Lowercase types are not types.
        assert!(matches!(
            u.add_spec("carol:cl:pw"),
            Err(UsersError::UnknownPasswordType { .. })
        ));
        for spec in ["dave:", "dave:CL:", "dave::"] {
            let e = u.add_spec(spec).unwrap_err();
            assert_eq!(
                e,
                UsersError::EmptyPassword {
                    name: ConfigToken::new("dave")
                },
                "{spec}"
            );
            assert!(e.to_string().contains("`dave`"));
        }
        let long_name = "n".repeat(256);
        assert!(matches!(
            u.add_spec(&format!("{long_name}:CL:pw")),
            Err(UsersError::NameTooLong { len: 256, .. })
        ));
        u.add_spec(&format!("{}:CL:pw", "n".repeat(255))).unwrap();
        let long_pw = "p".repeat(256);
        let e = u.add_spec(&format!("eve:CL:{long_pw}")).unwrap_err();
        assert_eq!(
            e,
            UsersError::PasswordTooLong {
                name: ConfigToken::new("eve"),
                len: 256
            }
        );
        assert!(!e.to_string().contains(&long_pw));
        u.add_spec(&format!("eve:CL:{}", "p".repeat(255))).unwrap();
        assert_eq!(u.len(), 2);
    }

    #[test]
    fn insert_and_caps() {
        let mut u = Users::new();
        u.insert("x", Password::Cleartext("pw".into()));
        u.insert("", Password::Cleartext("pw".into()));
        u.insert("y", Password::Cleartext(String::new()));
        assert_eq!(u.len(), 1);
        assert!(!u.is_empty());
        let pw = || Password::Cleartext("p".into());
        u.insert_capped("z", pw(), 2).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(
            u.insert_capped("one-more", pw(), 2),
            Err(UsersError::TooManyUsers { max: 2 })
        );
        assert_eq!(
            UsersError::TooManyUsers { max: MAX_USERS }.to_string(),
            "more than 1048576 users"
        );
        // Replacing an existing user is still possible when full.
        u.insert_capped("x", Password::Cleartext("new".into()), 2)
            .unwrap();
        assert_eq!(u.verify(b"x", b"new"), Ok(()));
    }

    #[test]
    fn verify_codes() {
        let mut u = Users::new();
        u.add_spec("alice:CL:pw").unwrap();
        assert_eq!(u.verify(b"alice", b"pw"), Ok(()));
        assert_eq!(u.verify(b"alice", b"PW"), Err(LogCode::BAD_CL_PASSWORD));
        assert_eq!(u.verify(b"alice", b""), Err(LogCode::BAD_CL_PASSWORD));
        assert_eq!(u.verify(b"Alice", b"pw"), Err(LogCode::USER_NOT_FOUND));
        assert_eq!(u.verify(b"", b"pw"), Err(LogCode::USER_NOT_FOUND));
        assert_eq!(u.verify(b"alice\xff", b"pw"), Err(LogCode::USER_NOT_FOUND));
        assert_eq!(LogCode::USER_NOT_FOUND.get(), 5);
        assert_eq!(LogCode::BAD_CL_PASSWORD.get(), 6);
    }

    #[test]
    fn verify_hashed_codes() {
        let mut u = Users::new();
        // `openssl passwd -1 -salt abc secret`.
        u.add_spec("carl:CR:$1$abc$iCQ2D3nhptRYi27fDYv2s1").unwrap();
        u.add_spec("nina:NT:8846F7EAEE8FB117AD06BDD830B7586C")
            .unwrap();
        u.add_spec("nora:NT:8846f7eaee8fb117ad06bdd830b7586c")
            .unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(u.verify(b"carl", b"secret"), Ok(()));
        assert_eq!(u.verify(b"carl", b"Secret"), Err(LogCode::BAD_CR_PASSWORD));
        assert_eq!(u.verify(b"carl", b""), Err(LogCode::BAD_CR_PASSWORD));
        assert_eq!(u.verify(b"nina", b"password"), Ok(()));
        assert_eq!(u.verify(b"nora", b"password"), Ok(()));
        assert_eq!(u.verify(b"nina", b"passwor"), Err(LogCode::BAD_NT_PASSWORD));
        assert_eq!(
            u.verify(b"nina", &[b'p'; MAX_PASSWORD_LEN + 1]),
            Err(LogCode::BAD_NT_PASSWORD)
        );
        assert_eq!(u.verify(b"carla", b"secret"), Err(LogCode::USER_NOT_FOUND));
        assert_eq!(LogCode::BAD_CR_PASSWORD.get(), 7);
        assert_eq!(LogCode::BAD_NT_PASSWORD.get(), 8);
        // The hash is not a password: presenting it fails.
        assert_eq!(
            u.verify(b"nina", b"8846F7EAEE8FB117AD06BDD830B7586C"),
            Err(LogCode::BAD_NT_PASSWORD)
        );
        let dbg = format!("{u:?}");
        assert!(!dbg.contains("iCQ2") && !dbg.contains("8846"), "{dbg}");
    }

    #[test]
    fn debug_hides_passwords() {
        let mut u = Users::new();
        u.add_spec("alice:CL:hunter2").unwrap();
        let dbg = format!("{u:?}");
        assert!(dbg.contains("alice") && !dbg.contains("hunter2"), "{dbg}");
        let p = format!("{:?}", Password::Cleartext("hunter2".into()));
        assert!(!p.contains("hunter2"));
    }
}
