//! What can be wrong with a hello: [`TlsError`], with [`Field`] for the malformed part and
//! [`SniError`] for a `server_name` that is not a usable host name.
//!
//! Only the error values and their text live here; the parsers that find the faults are in
//! [`hello`](super).

use core::fmt;

/// Which part of a hello is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// Fewer bytes than version and random.
    Random,
    /// `legacy_session_id`: longer than 32 bytes or past the end.
    SessionId,
    /// `cipher_suites`: odd, empty or past the end (ClientHello), or missing (ServerHello).
    CipherSuites,
    /// `legacy_compression_methods`: empty or past the end.
    Compression,
    /// The extension list: its length disagrees with the message, or an extension runs
    /// past its end.
    Extensions,
    /// `server_name` (RFC 6066 section 3): the list is empty, disagrees with the extension
    /// length, or names two host names.
    ServerName,
    /// `application_layer_protocol_negotiation` (RFC 7301 section 3.1).
    Alpn,
    /// `supported_versions` (RFC 8446 section 4.2.1).
    SupportedVersions,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Random => "version and random",
            Field::SessionId => "session id",
            Field::CipherSuites => "cipher suites",
            Field::Compression => "compression methods",
            Field::Extensions => "extension list",
            Field::ServerName => "server_name extension",
            Field::Alpn => "ALPN extension",
            Field::SupportedVersions => "supported_versions extension",
        })
    }
}

/// Why an SNI host name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SniError {
    /// A host name of zero bytes.
    Empty,
    /// Longer than 253 bytes (a DNS name in text form).
    TooLong {
        /// Its length.
        len: usize,
    },
    /// An empty label (two dots, a leading dot or a trailing dot: RFC 6066 sends the name
    /// without its trailing dot) or a label longer than 63 bytes.
    BadLabel,
    /// A byte other than an ASCII letter, digit, `-`, `_` or `.`.
    BadByte {
        /// The byte.
        byte: u8,
    },
    /// A literal IPv4 address, which RFC 6066 section 3 does not permit.
    IpLiteral,
}

impl fmt::Display for SniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SniError::Empty => write!(f, "empty SNI host name"),
            SniError::TooLong { len } => write!(f, "SNI host name of {len} bytes (at most 253)"),
            SniError::BadLabel => write!(f, "SNI host name with an empty or over-long label"),
            SniError::BadByte { byte } => write!(f, "SNI host name holds byte {byte:#04x}"),
            SniError::IpLiteral => write!(f, "SNI holds an IP address, not a host name"),
        }
    }
}

/// Why bytes are not the hello expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsError {
    /// The first record is not a handshake record (content type 22): the peer does not
    /// speak TLS (an HTTP request, a SOCKS greeting), or, from a server, answered with an
    /// alert. Decided by the first byte alone.
    NotTls {
        /// The record's content type (the first byte).
        content_type: u8,
    },
    /// A record's version has a major byte other than 3 (decided by the second byte of the
    /// record).
    BadRecordVersion {
        /// The major byte.
        major: u8,
    },
    /// A later record of the hello is not a handshake record.
    BadRecord {
        /// Its content type.
        content_type: u8,
    },
    /// A record of zero bytes, or longer than 2^14 bytes (RFC 8446 section 5.1).
    BadRecordLength {
        /// Its declared length.
        len: usize,
    },
    /// The first handshake message is not the one expected (a ClientHello from a client,
    /// a ServerHello from a server).
    UnexpectedMessage {
        /// Its handshake type.
        msg_type: u8,
    },
    /// The message is longer than [`MAX_HANDSHAKE_LEN`], or split into more than
    /// [`MAX_RECORDS`] records.
    ///
    /// [`MAX_HANDSHAKE_LEN`]: super::MAX_HANDSHAKE_LEN
    /// [`MAX_RECORDS`]: super::MAX_RECORDS
    TooLarge {
        /// The declared message length (header included), or the raw bytes it would take.
        len: usize,
    },
    /// `legacy_version`'s major byte is not 3.
    BadVersion {
        /// The version received.
        version: u16,
    },
    /// A field of the message is malformed or cut short.
    Malformed {
        /// Which one.
        field: Field,
    },
    /// An extension type appears twice (RFC 8446 section 4.2).
    DuplicateExtension {
        /// Its type.
        ext_type: u16,
    },
    /// The `server_name` host name is not a DNS host name.
    BadSni(SniError),
    /// Bytes of another handshake message follow the ClientHello in its last record (a
    /// client must wait for the ServerHello).
    TrailingData {
        /// How many.
        len: usize,
    },
}

impl TlsError {
    /// Whether this error says the bytes are not TLS at all (rather than broken TLS).
    pub fn is_not_tls(&self) -> bool {
        matches!(
            self,
            TlsError::NotTls { .. } | TlsError::BadRecordVersion { .. }
        )
    }

    /// A readable reason without the values, for logs.
    pub fn reason(&self) -> &'static str {
        match self {
            TlsError::NotTls { .. } => "not a TLS handshake record",
            TlsError::BadRecordVersion { .. } => "TLS record version is not 3.x",
            TlsError::BadRecord { .. } => "a record of the hello is not a handshake record",
            TlsError::BadRecordLength { .. } => "TLS record of zero or more than 16384 bytes",
            TlsError::UnexpectedMessage { .. } => "first handshake message is not the hello",
            TlsError::TooLarge { .. } => "hello larger than 16 KiB or in too many records",
            TlsError::BadVersion { .. } => "hello version is not 3.x",
            TlsError::Malformed { .. } => "malformed hello",
            TlsError::DuplicateExtension { .. } => "hello repeats an extension",
            TlsError::BadSni(_) => "SNI is not a host name",
            TlsError::TrailingData { .. } => "handshake data after the ClientHello",
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NotTls { content_type } => {
                write!(f, "{} (content type {content_type})", self.reason())
            }
            TlsError::BadRecordVersion { major } => write!(f, "{} ({major})", self.reason()),
            TlsError::BadRecord { content_type } => {
                write!(f, "{} (content type {content_type})", self.reason())
            }
            TlsError::BadRecordLength { len } => write!(f, "{} ({len})", self.reason()),
            TlsError::UnexpectedMessage { msg_type } => {
                write!(f, "{} (handshake type {msg_type})", self.reason())
            }
            TlsError::TooLarge { len } => write!(f, "{} ({len} bytes)", self.reason()),
            TlsError::BadVersion { version } => write!(f, "{} ({version:#06x})", self.reason()),
            TlsError::Malformed { field } => write!(f, "{}: {field}", self.reason()),
            TlsError::DuplicateExtension { ext_type } => {
                write!(f, "{} (type {ext_type})", self.reason())
            }
            TlsError::BadSni(e) => e.fmt(f),
            TlsError::TrailingData { len } => write!(f, "{} ({len} bytes)", self.reason()),
        }
    }
}

impl std::error::Error for TlsError {}
