//! Hashed passwords of the `users` table: `CR` (MD5-crypt, `$1$salt$hash`) and `NT` (the
//! Windows NT hash, 32 hex digits), parsed from the configuration and checked in constant
//! time.
//!
//! The hash functions come from crates, not from here: MD5-crypt from `pwhash`
//! (`md5_crypt`), the one pure-Rust implementation of the crypt(3) family on crates.io
//! that covers `$1$` and is tested against the glibc and BSD vectors (RustCrypto's
//! `password-hash` family has SHA-crypt but no MD5-crypt); MD4 from RustCrypto's `md4`.
//! Only the comparison of the computed value with the stored one is written here, with
//! `subtle`.
//!
//! Not here: 3proxy's own `$3$` scheme (BLAKE2 of the password and salt in crypt64),
//! which no crate implements: an entry using it is refused
//! ([`CryptError::Blake2Crypt`]), as is every other crypt form.

use core::fmt;
use subtle::ConstantTimeEq;

/// The crypt(3) prefix of MD5-crypt.
const MD5_CRYPT_MAGIC: &str = "$1$";

/// Longest MD5-crypt salt, in characters (longer salts are cut to 8 by every
/// implementation, so a longer one in a configuration file is a mistake, refused).
pub const MAX_MD5_SALT_LEN: usize = 8;

/// Length of the MD5-crypt checksum: 16 bytes in crypt64, 22 characters.
pub const MD5_CHECKSUM_LEN: usize = 22;

/// Length of an NT hash written in hex.
pub const NT_HASH_HEX_LEN: usize = 32;

/// A stored `CR` password: a validated `$1$salt$checksum` string.
///
/// `Debug` prints the salt only.
#[derive(Clone, PartialEq, Eq)]
pub struct Md5Crypt {
    /// The whole crypt string, as written in the configuration.
    full: String,
}

impl fmt::Debug for Md5Crypt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Md5Crypt(<redacted>)")
    }
}

/// A stored `NT` password: MD4 of the UTF-16LE password.
#[derive(Clone, PartialEq, Eq)]
pub struct NtHash([u8; 16]);

impl fmt::Debug for NtHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NtHash(<redacted>)")
    }
}

/// Why a `CR` or `NT` value was refused. `Display` never prints the value (a hash is as
/// good as a password against anything that accepts the hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptError {
    /// `$3$...`: 3proxy's own BLAKE2 crypt, which no maintained crate implements.
    Blake2Crypt,
    /// A `$N$` scheme other than `$1$` (SHA-crypt, bcrypt, ...), which 3proxy does not
    /// accept either.
    OtherScheme,
    /// Not a `$...$` crypt string at all (3proxy's DES crypt is not supported).
    NotCrypt,
    /// `$1$`: the salt is empty, longer than [`MAX_MD5_SALT_LEN`], or has a character
    /// outside `./0-9A-Za-z`.
    BadSalt,
    /// `$1$salt$`: the checksum is not [`MD5_CHECKSUM_LEN`] crypt64 characters.
    BadChecksum,
    /// `NT`: the value is not [`NT_HASH_HEX_LEN`] hex digits.
    BadNtHash,
}

impl fmt::Display for CryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CryptError::Blake2Crypt => {
                "`$3$` (3proxy's BLAKE2 crypt) is not supported; use `$1$` (openssl passwd -1)"
            }
            CryptError::OtherScheme => {
                "only MD5-crypt (`$1$salt$hash`, openssl passwd -1) is supported"
            }
            CryptError::NotCrypt => "expected MD5-crypt `$1$salt$hash` (openssl passwd -1)",
            CryptError::BadSalt => "the MD5-crypt salt must be 1 to 8 characters of ./0-9A-Za-z",
            CryptError::BadChecksum => {
                "the MD5-crypt hash after the salt must be 22 characters of ./0-9A-Za-z"
            }
            CryptError::BadNtHash => "an NT hash is 32 hex digits",
        })
    }
}

impl std::error::Error for CryptError {}

/// The crypt64 alphabet (crypt(3), `./0-9A-Za-z`).
fn is_crypt64(b: u8) -> bool {
    b == b'.' || b == b'/' || b.is_ascii_alphanumeric()
}

impl Md5Crypt {
    /// Parses a `CR` value: `$1$salt$checksum` with a salt of 1..=[`MAX_MD5_SALT_LEN`]
    /// crypt64 characters and a checksum of [`MD5_CHECKSUM_LEN`] (what
    /// `openssl passwd -1` writes).
    ///
    /// ```
    /// use triproxy_policy::crypt::{CryptError, Md5Crypt};
    /// assert!(Md5Crypt::parse("$1$qwer$CHFTUFGqkjue9HyhcMHEe1").is_ok());
    /// assert_eq!(Md5Crypt::parse("$3$salt$x"), Err(CryptError::Blake2Crypt));
    /// assert_eq!(Md5Crypt::parse("$6$salt$x"), Err(CryptError::OtherScheme));
    /// ```
    pub fn parse(value: &str) -> Result<Md5Crypt, CryptError> {
        let Some(rest) = value.strip_prefix(MD5_CRYPT_MAGIC) else {
            return Err(match value.strip_prefix("$3$") {
                Some(_) => CryptError::Blake2Crypt,
                None if value.starts_with('$') => CryptError::OtherScheme,
                None => CryptError::NotCrypt,
            });
        };
        let (salt, checksum) = rest.split_once('$').ok_or(CryptError::BadChecksum)?;
        if salt.is_empty() || salt.len() > MAX_MD5_SALT_LEN || !salt.bytes().all(is_crypt64) {
            return Err(CryptError::BadSalt);
        }
        if checksum.len() != MD5_CHECKSUM_LEN || !checksum.bytes().all(is_crypt64) {
            return Err(CryptError::BadChecksum);
        }
        Ok(Md5Crypt {
            full: value.to_owned(),
        })
    }

    /// Whether `password` hashes to this value. A password with a NUL byte never matches
    /// (3proxy reads passwords as C strings, so it could not have been set with one).
    pub fn verify(&self, password: &[u8]) -> bool {
        if password.contains(&0) {
            return false;
        }
        // `hash_with` is deprecated only as a way to make *new* MD5-crypt hashes; checking
        // an existing one is what it is for here. The salt was validated by `parse`, so the
        // computed string has the stored one's shape and length.
        #[allow(deprecated)]
        let computed = pwhash::md5_crypt::hash_with(self.full.as_str(), password);
        match computed {
            Ok(computed) => {
                computed.len() == self.full.len()
                    && bool::from(computed.as_bytes().ct_eq(self.full.as_bytes()))
            }
            Err(_) => false,
        }
    }
}

impl NtHash {
    /// Parses an `NT` value: [`NT_HASH_HEX_LEN`] hex digits, either case.
    ///
    /// ```
    /// use triproxy_policy::crypt::NtHash;
    /// let h = NtHash::parse("8846F7EAEE8FB117AD06BDD830B7586C").unwrap();
    /// assert!(h.verify(b"password"));
    /// assert!(!h.verify(b"Password"));
    /// ```
    pub fn parse(value: &str) -> Result<NtHash, CryptError> {
        if value.len() != NT_HASH_HEX_LEN {
            return Err(CryptError::BadNtHash);
        }
        let mut out = [0u8; 16];
        for (byte, pair) in out.iter_mut().zip(value.as_bytes().chunks_exact(2)) {
            let (Some(hi), Some(lo)) = (
                pair.first().copied().and_then(hex_digit),
                pair.get(1).copied().and_then(hex_digit),
            ) else {
                return Err(CryptError::BadNtHash);
            };
            *byte = hi << 4 | lo;
        }
        Ok(NtHash(out))
    }

    /// Whether the NT hash of `password` (MD4 of its UTF-16LE form) is this one. A password
    /// that is not UTF-8 never matches: it has no UTF-16 form. (3proxy widens each byte to
    /// 16 bits, which agrees for ASCII passwords and differs from Windows for others.)
    pub fn verify(&self, password: &[u8]) -> bool {
        use md4::{Digest, Md4};
        let Ok(text) = core::str::from_utf8(password) else {
            return false;
        };
        let mut md4 = Md4::new();
        for unit in text.encode_utf16() {
            md4.update(unit.to_le_bytes());
        }
        let digest = md4.finalize();
        bool::from(digest.as_slice().ct_eq(&self.0))
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl passwd -1 -salt abc secret`.
    const SECRET_ABC: &str = "$1$abc$iCQ2D3nhptRYi27fDYv2s1";

    #[test]
    fn md5_crypt_vectors() {
        let h = Md5Crypt::parse(SECRET_ABC).unwrap();
        assert!(h.verify(b"secret"));
        for wrong in [&b"Secret"[..], b"secre", b"secret ", b"", b"secret\0"] {
            assert!(!h.verify(wrong), "{wrong:?}");
        }
        // The 3proxy sample's user: `test` in MD5-crypt.
        let sample = Md5Crypt::parse("$1$qwer$CHFTUFGqkjue9HyhcMHEe1").unwrap();
        assert!(sample.verify(b"test"));
        assert!(!sample.verify(b"tesT"));
    }

    #[test]
    fn md5_crypt_refusals() {
        for (value, error) in [
            ("$3$abc$x", CryptError::Blake2Crypt),
            ("$5$abc$x", CryptError::OtherScheme),
            ("$2y$05$x", CryptError::OtherScheme),
            ("$1", CryptError::OtherScheme),
            ("abJnggxhB/yWI", CryptError::NotCrypt),
            ("", CryptError::NotCrypt),
            ("$1$", CryptError::BadChecksum),
            ("$1$abc", CryptError::BadChecksum),
            ("$1$$iCQ2D3nhptRYi27fDYv2s1", CryptError::BadSalt),
            ("$1$abcdefghi$iCQ2D3nhptRYi27fDYv2s1", CryptError::BadSalt),
            ("$1$a:c$iCQ2D3nhptRYi27fDYv2s1", CryptError::BadSalt),
            ("$1$abc$iCQ2D3nhptRYi27fDYv2s", CryptError::BadChecksum),
            ("$1$abc$iCQ2D3nhptRYi27fDYv2s1x", CryptError::BadChecksum),
            ("$1$abc$iCQ2D3nhptRYi27fDYv2$1", CryptError::BadChecksum),
        ] {
            assert_eq!(Md5Crypt::parse(value), Err(error), "{value}");
        }
        assert_eq!(
            CryptError::Blake2Crypt.to_string(),
            "`$3$` (3proxy's BLAKE2 crypt) is not supported; use `$1$` (openssl passwd -1)"
        );
        let dbg = format!("{:?}", Md5Crypt::parse(SECRET_ABC).unwrap());
        assert!(!dbg.contains("iCQ2"), "{dbg}");
    }

    #[test]
    fn nt_hash_vectors() {
        for text in [
            "8846F7EAEE8FB117AD06BDD830B7586C",
            "8846f7eaee8fb117ad06bdd830b7586c",
        ] {
            let h = NtHash::parse(text).unwrap();
            assert!(h.verify(b"password"));
            assert!(!h.verify(b"password1"));
            assert!(!h.verify(b""));
            assert!(!h.verify(b"\xffpassword"));
        }
        // Empty password: 31D6CFE0D16AE931B73C59D7E0C089C0 (MD4 of nothing).
        assert!(NtHash::parse("31d6cfe0d16ae931b73c59d7e0c089c0")
            .unwrap()
            .verify(b""));
        // A non-ASCII password goes through UTF-16LE, as Windows computes it.
        // MD4("\xe9\x00") for "é" (U+00E9).
        let h = NtHash::parse(&md4_hex(&[0xe9, 0x00])).unwrap();
        assert!(h.verify("é".as_bytes()));
        assert!(!h.verify(b"\xe9"));
        for bad in [
            "",
            "8846F7EAEE8FB117AD06BDD830B7586",
            "8846F7EAEE8FB117AD06BDD830B7586C0",
            "8846F7EAEE8FB117AD06BDD830B7586G",
            "+846F7EAEE8FB117AD06BDD830B7586C",
            "8846F7EAEE8FB117AD06BDD830B758é",
        ] {
            assert_eq!(NtHash::parse(bad), Err(CryptError::BadNtHash), "{bad}");
        }
        let dbg = format!("{:?}", NtHash::parse("8846F7EAEE8FB117AD06BDD830B7586C"));
        assert!(!dbg.contains("8846") && !dbg.contains("136"), "{dbg}");
    }

    fn md4_hex(data: &[u8]) -> String {
        use md4::{Digest, Md4};
        Md4::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
