//! The error vocabulary of ACL parsing, shared with `users` and `auth`: which field
//! ([`AclField`]), what is wrong with a token ([`TokenProblem`]), the whole error
//! ([`AclError`]), and the bounded excerpt of configuration text it quotes
//! ([`ConfigToken`]).
//!
//! Errors own no `String` and print the offending text escaped and cut.

use super::{MAX_ACE_FIELDS, TOKEN_EXCERPT_LEN};
use arrayvec::ArrayString;
use core::fmt;

// Named only in doc links.
#[cfg(doc)]
use super::MAX_LIST_ITEMS;

/// A bounded copy of the configuration text an error is about, so that errors own no
/// `String` and stay small. Texts longer than [`TOKEN_EXCERPT_LEN`] bytes are cut at a
/// character boundary and printed with a trailing `...`; control characters are escaped
/// when printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ConfigToken {
    text: ArrayString<TOKEN_EXCERPT_LEN>,
    truncated: bool,
}

impl ConfigToken {
    /// Copies (at most [`TOKEN_EXCERPT_LEN`] bytes of) `text`.
    ///
    /// ```
    /// use triproxy_policy::acl::ConfigToken;
    /// assert_eq!(ConfigToken::new("10.0.0.0/33").to_string(), "10.0.0.0/33");
    /// let long = "x".repeat(100);
    /// assert!(ConfigToken::new(&long).is_truncated());
    /// ```
    pub fn new(text: &str) -> Self {
        let mut out = ArrayString::new();
        let mut truncated = false;
        for c in text.chars() {
            if out.try_push(c).is_err() {
                truncated = true;
                break;
            }
        }
        Self {
            text: out,
            truncated,
        }
    }

    /// The kept text (possibly cut short).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the original text was longer than what is kept.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for ConfigToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.text.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        if self.truncated {
            write!(f, "...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ConfigToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// Which field of an ACL entry a parse error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AclField {
    /// Field 1: user names.
    Users,
    /// Field 2: client (source) addresses.
    Sources,
    /// Field 3: target addresses and host-name patterns.
    Targets,
    /// Field 4: target ports.
    Ports,
    /// Field 5: operations (`CONNECT`, `HTTP_GET`, ...).
    Operations,
    /// Field 6: weekdays.
    Weekdays,
    /// Field 7: time periods.
    TimePeriods,
    /// Field 8: weight.
    Weight,
}

impl AclField {
    pub(super) const ORDER: [AclField; MAX_ACE_FIELDS] = [
        AclField::Users,
        AclField::Sources,
        AclField::Targets,
        AclField::Ports,
        AclField::Operations,
        AclField::Weekdays,
        AclField::TimePeriods,
        AclField::Weight,
    ];

    /// The field's name as printed in errors.
    pub fn name(self) -> &'static str {
        match self {
            AclField::Users => "users",
            AclField::Sources => "source addresses",
            AclField::Targets => "targets",
            AclField::Ports => "ports",
            AclField::Operations => "operations",
            AclField::Weekdays => "weekdays",
            AclField::TimePeriods => "time periods",
            AclField::Weight => "weight",
        }
    }
}

impl fmt::Display for AclField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with one token of an ACL field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenProblem {
    /// An empty item (an empty field, or `a,,b`).
    EmptyItem,
    /// `*` inside a list: `*` means "any" only as the whole field.
    StarInList,
    /// An item longer than allowed.
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// Not an IPv4/IPv6 address, `ADDR/LEN` or `ADDR-ADDR` (the source field takes no host
    /// names; a target that looks numeric must be a valid address).
    NotAnAddress,
    /// A CIDR prefix length that is not a number or too large for the family.
    BadPrefixLength {
        /// The largest valid prefix length for the family (32 or 128).
        max: u8,
    },
    /// A range whose end is below its start (`A-B` with `B < A`).
    DescendingRange,
    /// An address range mixing IPv4 and IPv6.
    MixedFamilies,
    /// A host-name pattern with `*` in the middle, nothing but `*`/dots, or forbidden
    /// characters (control characters, spaces, `/`, `:`).
    BadHostPattern,
    /// Not a port number (0..=65535) or port range.
    NotAPort,
    /// Not one of 3proxy's operation names.
    UnknownOperation,
    /// Not a weekday digit (0..=7) or an ascending `a-b` range of them.
    BadWeekday,
    /// Not of the form `HH:MM:SS-HH:MM:SS`.
    BadTimePeriod,
    /// A time period whose end is not after its start (3proxy has no midnight wrap; write
    /// two periods).
    EmptyTimePeriod,
    /// Not a decimal number that fits in 32 bits.
    NotANumber,
}

impl fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenProblem::EmptyItem => write!(f, "empty item"),
            TokenProblem::StarInList => write!(f, "`*` must stand alone as the whole field"),
            TokenProblem::TooLong { max } => write!(f, "longer than {max} bytes"),
            TokenProblem::NotAnAddress => {
                write!(f, "not an IP address, ADDR/LEN network or ADDR-ADDR range")
            }
            TokenProblem::BadPrefixLength { max } => {
                write!(f, "prefix length must be a number from 0 to {max}")
            }
            TokenProblem::DescendingRange => write!(f, "range end is below its start"),
            TokenProblem::MixedFamilies => write!(f, "range mixes IPv4 and IPv6"),
            TokenProblem::BadHostPattern => write!(
                f,
                "bad host-name pattern (use name, *suffix, prefix* or *middle*)"
            ),
            TokenProblem::NotAPort => write!(f, "not a port (0-65535) or ascending port range"),
            TokenProblem::UnknownOperation => write!(f, "unknown operation"),
            TokenProblem::BadWeekday => {
                write!(
                    f,
                    "weekdays are digits 0-7 (0 and 7 = Sunday) or ranges like 1-5"
                )
            }
            TokenProblem::BadTimePeriod => write!(f, "time periods are HH:MM:SS-HH:MM:SS"),
            TokenProblem::EmptyTimePeriod => write!(
                f,
                "time period ends before or when it starts (no wrap past midnight: use two periods)"
            ),
            TokenProblem::NotANumber => write!(f, "not a number"),
        }
    }
}

/// Why the words after `allow`/`deny` are not a valid ACL entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AclError {
    /// More than [`MAX_ACE_FIELDS`] fields.
    TooManyFields {
        /// How many fields were given.
        count: usize,
    },
    /// A list field with more than [`MAX_LIST_ITEMS`] items.
    TooManyItems {
        /// The field.
        field: AclField,
        /// The limit.
        max: usize,
    },
    /// One token of a field is invalid.
    BadToken {
        /// The field.
        field: AclField,
        /// The offending token (for an empty item, the whole field).
        token: ConfigToken,
        /// What is wrong with it.
        problem: TokenProblem,
    },
}

impl fmt::Display for AclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclError::TooManyFields { count } => write!(
                f,
                "ACL entry has {count} fields; at most {MAX_ACE_FIELDS} \
                 (users sources targets ports operations weekdays times weight)"
            ),
            AclError::TooManyItems { field, max } => {
                write!(f, "ACL field {field}: more than {max} items")
            }
            AclError::BadToken {
                field,
                token,
                problem,
            } => write!(f, "ACL field {field}: bad token `{token}`: {problem}"),
        }
    }
}

impl std::error::Error for AclError {}
