//! Peeking at the first handshake message of a TLS connection: the client's ClientHello
//! (RFC 8446 section 4.1.2, RFC 5246 section 7.4.1.2) with its `server_name` (RFC 6066
//! section 3), `application_layer_protocol_negotiation` (RFC 7301) and `supported_versions`
//! (RFC 8446 section 4.2.1) extensions, and the server's ServerHello.
//!
//! The parsers read the raw bytes a peer sent, TLS records included: a handshake message
//! may be split over several records (RFC 8446 section 5.1) and the records over many
//! reads. A strict prefix answers [`Status::Partial`] with a lower bound of the bytes still
//! missing; nothing is consumed or changed, because a proxy forwards the hello unchanged.
//!
//! Limits: the handshake message (its 4-byte header included) is at most
//! [`MAX_HANDSHAKE_LEN`] bytes, spread over at most [`MAX_RECORDS`] records, so a whole
//! hello never needs more than [`MAX_HELLO_LEN`] bytes of buffer. Parsing allocates
//! nothing unless the message spans several records; then it copies the message once into
//! one buffer of its declared size (at most 16 KiB).
//!
//! This module is not TLS: it checks structure only, never cryptography, and it neither
//! produces nor understands encrypted records.

mod error;

use core::fmt;
pub use error::{Field, SniError, TlsError};
use std::borrow::Cow;
use triproxy_wire::{DomainName, Status};

/// Largest handshake message accepted, 4-byte header included: 16 KiB (the largest
/// plaintext record fragment, RFC 8446 section 5.1). Real ClientHellos are 200 to 2000
/// bytes; post-quantum key shares bring them near 1800.
pub const MAX_HANDSHAKE_LEN: usize = 16 * 1024;

/// Most records a hello may be split into.
pub const MAX_RECORDS: usize = 16;

/// Largest number of raw bytes a whole hello may occupy: the message plus one 5-byte
/// record header per record. A buffer of this size never stalls the parsers: they answer
/// [`TlsError::TooLarge`] before asking for more.
pub const MAX_HELLO_LEN: usize = MAX_HANDSHAKE_LEN + 5 * MAX_RECORDS;

/// Record content type of handshake messages (RFC 8446 section 5.1).
pub const CONTENT_HANDSHAKE: u8 = 22;
/// Record content type of alerts.
pub const CONTENT_ALERT: u8 = 21;
/// Handshake type of a ClientHello (RFC 8446 section 4).
pub const CLIENT_HELLO: u8 = 1;
/// Handshake type of a ServerHello.
pub const SERVER_HELLO: u8 = 2;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// Largest TLSPlaintext fragment (2^14, RFC 8446 section 5.1).
const MAX_FRAGMENT: usize = 1 << 14;

/// Most `supported_versions` entries kept; further ones are counted but not stored.
pub const MAX_VERSIONS: usize = 16;

/// Bytes kept of the ALPN list: every protocol whose name (and length byte) fits whole;
/// the first one always does.
pub const ALPN_KEEP: usize = 256;

/// A protocol version as on the wire: `0x0303` is TLS 1.2, `0x0304` TLS 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolVersion(pub u16);

impl ProtocolVersion {
    /// SSL 3.0.
    pub const SSL3: Self = Self(0x0300);
    /// TLS 1.0.
    pub const TLS10: Self = Self(0x0301);
    /// TLS 1.2.
    pub const TLS12: Self = Self(0x0303);
    /// TLS 1.3.
    pub const TLS13: Self = Self(0x0304);

    /// A GREASE value (RFC 8701: `0x?A?A` with both bytes equal), which names no version.
    pub fn is_grease(self) -> bool {
        let [hi, lo] = self.0.to_be_bytes();
        hi == lo && hi & 0x0f == 0x0a
    }
}

/// Protocol names offered in ALPN (RFC 7301), as many whole names as fit in
/// [`ALPN_KEEP`] bytes, in the client's order.
#[derive(Clone, PartialEq, Eq)]
pub struct AlpnList {
    /// Length-prefixed names, as on the wire.
    bytes: [u8; ALPN_KEEP],
    len: usize,
    kept: usize,
    total: usize,
}

impl Default for AlpnList {
    fn default() -> Self {
        AlpnList {
            bytes: [0; ALPN_KEEP],
            len: 0,
            kept: 0,
            total: 0,
        }
    }
}

impl AlpnList {
    /// The kept names, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest = self.bytes.get(..self.len).unwrap_or_default();
        core::iter::from_fn(move || {
            let (&n, tail) = rest.split_first()?;
            let (name, tail) = tail.split_at_checked(usize::from(n))?;
            rest = tail;
            Some(name)
        })
    }

    /// The first name offered (what 3proxy logs).
    pub fn first(&self) -> Option<&[u8]> {
        self.iter().next()
    }

    /// How many names were offered (kept or not).
    pub fn offered(&self) -> usize {
        self.total
    }

    /// Whether no name was offered.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn push(&mut self, name: &[u8]) {
        let in_order = self.kept == self.total;
        self.total += 1;
        let end = self.len + 1 + name.len();
        if !in_order || end > ALPN_KEEP {
            return;
        }
        if let (Some(slot), Ok(n)) = (self.bytes.get_mut(self.len..end), u8::try_from(name.len())) {
            if let Some((first, tail)) = slot.split_first_mut() {
                *first = n;
                tail.copy_from_slice(name);
                self.len = end;
                self.kept += 1;
            }
        }
    }
}

impl fmt::Debug for AlpnList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|n| String::from_utf8_lossy(n)))
            .finish()
    }
}

/// The `supported_versions` a client lists: the first [`MAX_VERSIONS`] in its order.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct VersionList {
    list: [u16; MAX_VERSIONS],
    len: usize,
}

impl VersionList {
    /// The kept versions, in the client's order (GREASE values included).
    pub fn iter(&self) -> impl Iterator<Item = ProtocolVersion> + '_ {
        self.list.iter().take(self.len).map(|&v| ProtocolVersion(v))
    }

    /// Whether the extension was absent or empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push(&mut self, v: u16) {
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = v;
            self.len += 1;
        }
    }
}

impl fmt::Debug for VersionList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|v| format!("{:#06x}", v.0)))
            .finish()
    }
}

/// What a ClientHello says that a proxy needs. Owned and fixed-size: it borrows nothing,
/// because a hello split over records has no contiguous copy in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The version of the first record (`0x0301` from most clients).
    pub record_version: ProtocolVersion,
    /// `legacy_version` (`0x0303` from TLS 1.2 and 1.3 clients).
    pub legacy_version: ProtocolVersion,
    /// The `supported_versions` extension, empty if absent.
    pub supported_versions: VersionList,
    /// The `server_name` host name, if the client sent one, checked as a DNS host name.
    pub sni: Option<DomainName>,
    /// Where the host name's first byte is in the raw input (for a driver that splits the
    /// hello there, as 3proxy's `-s` does), if there is one. In a hello split over records
    /// the name may go on in the next record.
    pub sni_offset: Option<usize>,
    /// The ALPN protocols offered, empty if absent.
    pub alpn: AlpnList,
    /// Raw bytes the hello occupies: every record it spans, headers included.
    pub len: usize,
}

impl ClientHello {
    /// The version the client would like most: the first non-GREASE `supported_versions`
    /// entry, else `legacy_version` (RFC 8446 section 4.2.1).
    pub fn preferred_version(&self) -> ProtocolVersion {
        self.supported_versions
            .iter()
            .find(|v| !v.is_grease())
            .unwrap_or(self.legacy_version)
    }
}

/// What a ServerHello says: the version chosen and, before TLS 1.3, the ALPN protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerHello {
    /// The version of the first record.
    pub record_version: ProtocolVersion,
    /// `legacy_version`.
    pub legacy_version: ProtocolVersion,
    /// The `supported_versions` selection (TLS 1.3), if present.
    pub selected_version: Option<ProtocolVersion>,
    /// The protocol chosen with ALPN, if present (TLS 1.3 servers send it encrypted).
    pub alpn: AlpnList,
    /// Raw bytes up to the end of the record that holds the ServerHello's last byte (the
    /// same record may carry the server's next messages).
    pub len: usize,
}

impl ServerHello {
    /// The negotiated version: the selection if present, else `legacy_version`.
    pub fn version(&self) -> ProtocolVersion {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// Parses the ClientHello at the start of what a client sent.
///
/// `Complete { consumed }` is the number of raw bytes the hello occupies ([`ClientHello::len`]);
/// bytes after it (for example TLS 1.3 early data records) are not looked at.
///
/// ```
/// use triproxy_tls::hello::parse_client_hello;
/// // An HTTP request is not TLS.
/// assert!(parse_client_hello(b"GET / HTTP/1.1\r\n").unwrap_err().is_not_tls());
/// // One byte of a handshake record: more is needed.
/// assert!(parse_client_hello(&[0x16]).unwrap().is_partial());
/// ```
pub fn parse_client_hello(input: &[u8]) -> Result<Status<ClientHello>, TlsError> {
    let (msg, frame) = match reassemble(input, CLIENT_HELLO, Trailing::Reject)? {
        Status::Complete { value, .. } => value,
        Status::Partial { needed } => return Ok(Status::Partial { needed }),
    };
    let mut hello = parse_client_body(body(&msg))?;
    hello.record_version = frame.record_version;
    hello.len = frame.end;
    if let Some(at) = hello.sni_offset {
        hello.sni_offset = raw_offset(input, at + 4);
    }
    Ok(Status::Complete {
        consumed: frame.end,
        value: hello,
    })
}

/// Parses the ServerHello at the start of what a server sent (RFC 8446 section 4.1.3,
/// RFC 5246 section 7.4.1.3). Other handshake messages may follow it in the same record.
pub fn parse_server_hello(input: &[u8]) -> Result<Status<ServerHello>, TlsError> {
    let (msg, frame) = match reassemble(input, SERVER_HELLO, Trailing::Allow)? {
        Status::Complete { value, .. } => value,
        Status::Partial { needed } => return Ok(Status::Partial { needed }),
    };
    let mut hello = parse_server_body(body(&msg))?;
    hello.record_version = frame.record_version;
    hello.len = frame.end;
    Ok(Status::Complete {
        consumed: frame.end,
        value: hello,
    })
}

fn body(msg: &[u8]) -> &[u8] {
    msg.get(4..).unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trailing {
    Allow,
    Reject,
}

/// A whole handshake message and where its records end.
type Reassembled<'a> = (Cow<'a, [u8]>, Frame);

struct Frame {
    record_version: ProtocolVersion,
    /// End of the record that holds the message's last byte.
    end: usize,
}

fn be16(b: &[u8], at: usize) -> Option<usize> {
    let hi = *b.get(at)?;
    let lo = *b.get(at + 1)?;
    Some(usize::from(u16::from_be_bytes([hi, lo])))
}

/// Walks the records at the front of `input` until they hold one whole handshake message
/// of type `want`; returns it (borrowed when one record holds it, else copied once).
fn reassemble(
    input: &[u8],
    want: u8,
    trailing: Trailing,
) -> Result<Status<Reassembled<'_>>, TlsError> {
    let mut pos = 0;
    let mut got = 0; // message bytes seen so far
    let mut header = [0u8; 4];
    let mut total: Option<usize> = None; // message length, header included
    let mut first_version = ProtocolVersion(0);
    let mut records = 0;
    loop {
        // Another record is needed: it must end (with at least one byte) within the cap.
        if pos + 6 > MAX_HELLO_LEN {
            return Err(TlsError::TooLarge { len: pos + 6 });
        }
        let Some(&content_type) = input.get(pos) else {
            return partial(pos, 5 + total.map_or(1, |t| t - got));
        };
        let version = match (input.get(pos + 1), input.get(pos + 2)) {
            (Some(&a), Some(&b)) => Some(u16::from_be_bytes([a, b])),
            _ => None,
        };
        if content_type != CONTENT_HANDSHAKE {
            return Err(if records == 0 {
                TlsError::NotTls { content_type }
            } else {
                TlsError::BadRecord { content_type }
            });
        }
        if let Some(&major) = input.get(pos + 1) {
            if major != 3 {
                return Err(TlsError::BadRecordVersion { major });
            }
        }
        let Some(rec_len) = be16(input, pos + 3) else {
            return partial(
                input.len(),
                pos + 5 - input.len() + total.map_or(1, |t| t - got),
            );
        };
        if records == 0 {
            first_version = ProtocolVersion(version.unwrap_or(0));
        }
        if rec_len == 0 || rec_len > MAX_FRAGMENT {
            return Err(TlsError::BadRecordLength { len: rec_len });
        }
        records += 1;
        if records > MAX_RECORDS {
            return Err(TlsError::TooLarge {
                len: pos + 5 + rec_len,
            });
        }
        let start = pos + 5;
        let end = start + rec_len;
        if end > MAX_HELLO_LEN {
            return Err(TlsError::TooLarge { len: end });
        }
        let frag = input.get(start..end.min(input.len())).unwrap_or_default();
        // The handshake header, possibly spread over records.
        let mut in_header = 0;
        while got < 4 {
            let Some(&b) = frag.get(in_header) else {
                break;
            };
            if got == 0 && b != want {
                return Err(TlsError::UnexpectedMessage { msg_type: b });
            }
            if let Some(slot) = header.get_mut(got) {
                *slot = b;
            }
            got += 1;
            in_header += 1;
        }
        if total.is_none() && got >= 4 {
            let [_, a, b, c] = header;
            let len = 4 + (usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c));
            if len > MAX_HANDSHAKE_LEN {
                return Err(TlsError::TooLarge { len });
            }
            total = Some(len);
        }
        got += frag.len() - in_header;
        if end > input.len() {
            // The record is not all here.
            let after_record = got + (end - input.len());
            let more = match total {
                Some(t) if after_record < t => 5 + (t - after_record),
                _ => 0,
            };
            return partial(input.len(), end - input.len() + more);
        }
        pos = end;
        if let Some(t) = total {
            if got >= t {
                if got > t && trailing == Trailing::Reject {
                    return Err(TlsError::TrailingData { len: got - t });
                }
                let msg = collect(input, end, t);
                return Ok(Status::Complete {
                    value: (
                        msg,
                        Frame {
                            record_version: first_version,
                            end,
                        },
                    ),
                    consumed: end,
                });
            }
        }
    }
}

/// Partial with `needed` more bytes, clamped so that `have + needed` stays within
/// [`MAX_HELLO_LEN`] (still a lower bound: a hello that needs more is refused as
/// [`TlsError::TooLarge`] at the record header that shows it, a point that does not depend
/// on how the bytes were cut).
fn partial<T>(have: usize, needed: usize) -> Result<Status<T>, TlsError> {
    Ok(Status::need(
        needed.min(MAX_HELLO_LEN.saturating_sub(have)).max(1),
    ))
}

/// The first `len` message bytes of the records in `input[..end]` (already validated).
fn collect(input: &[u8], end: usize, len: usize) -> Cow<'_, [u8]> {
    let first_len = be16(input, 3).unwrap_or(0);
    if first_len >= len {
        return Cow::Borrowed(input.get(5..5 + len).unwrap_or_default());
    }
    let mut out = Vec::with_capacity(len);
    let mut pos = 0;
    while pos < end && out.len() < len {
        let rec_len = be16(input, pos + 3).unwrap_or(0);
        let frag = input.get(pos + 5..pos + 5 + rec_len).unwrap_or_default();
        let take = frag.len().min(len - out.len());
        out.extend_from_slice(frag.get(..take).unwrap_or_default());
        pos += 5 + rec_len;
    }
    Cow::Owned(out)
}

/// Where message byte `at` lies in the raw records of `input`.
fn raw_offset(input: &[u8], mut at: usize) -> Option<usize> {
    let mut pos = 0;
    loop {
        let rec_len = be16(input, pos + 3)?;
        if at < rec_len {
            return Some(pos + 5 + at);
        }
        at -= rec_len;
        pos += 5 + rec_len;
    }
}

/// A bounds-checked cursor over a message body.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self, field: Field) -> Result<u8, TlsError> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or(TlsError::Malformed { field })?;
        self.buf = rest;
        Ok(b)
    }

    fn u16(&mut self, field: Field) -> Result<u16, TlsError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([
            b.first().copied().unwrap_or(0),
            b.get(1).copied().unwrap_or(0),
        ]))
    }

    fn take(&mut self, n: usize, field: Field) -> Result<&'a [u8], TlsError> {
        let (head, rest) = self
            .buf
            .split_at_checked(n)
            .ok_or(TlsError::Malformed { field })?;
        self.buf = rest;
        Ok(head)
    }

    /// A vector with a one-byte length.
    fn vec8(&mut self, field: Field) -> Result<&'a [u8], TlsError> {
        let n = self.u8(field)?;
        self.take(usize::from(n), field)
    }

    /// A vector with a two-byte length.
    fn vec16(&mut self, field: Field) -> Result<&'a [u8], TlsError> {
        let n = self.u16(field)?;
        self.take(usize::from(n), field)
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Offset of `part` inside `whole` (both from the same buffer).
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

fn version_of(r: &mut Reader<'_>) -> Result<ProtocolVersion, TlsError> {
    let v = r.u16(Field::Random)?;
    if v >> 8 != 3 {
        return Err(TlsError::BadVersion { version: v });
    }
    r.take(32, Field::Random)?;
    Ok(ProtocolVersion(v))
}

/// Tracks which extensions were seen, to refuse duplicates of the ones read.
#[derive(Default)]
struct Seen(u8);

impl Seen {
    fn mark(&mut self, ext_type: u16) -> Result<(), TlsError> {
        let bit = match ext_type {
            EXT_SERVER_NAME => 1,
            EXT_ALPN => 2,
            EXT_SUPPORTED_VERSIONS => 4,
            _ => return Ok(()),
        };
        if self.0 & bit != 0 {
            return Err(TlsError::DuplicateExtension { ext_type });
        }
        self.0 |= bit;
        Ok(())
    }
}

/// The extension list: absent (before TLS 1.3 it is optional) or exactly the rest.
fn extensions<'a>(
    r: &mut Reader<'a>,
    mut each: impl FnMut(u16, &'a [u8]) -> Result<(), TlsError>,
) -> Result<(), TlsError> {
    if r.is_empty() {
        return Ok(());
    }
    let list = r.vec16(Field::Extensions)?;
    if !r.is_empty() {
        return Err(TlsError::Malformed {
            field: Field::Extensions,
        });
    }
    let mut list = Reader { buf: list };
    let mut seen = Seen::default();
    while !list.is_empty() {
        let ext_type = list.u16(Field::Extensions)?;
        let data = list.vec16(Field::Extensions)?;
        seen.mark(ext_type)?;
        each(ext_type, data)?;
    }
    Ok(())
}

fn parse_client_body(msg: &[u8]) -> Result<ClientHello, TlsError> {
    let mut r = Reader { buf: msg };
    let legacy_version = version_of(&mut r)?;
    let session = r.vec8(Field::SessionId)?;
    if session.len() > 32 {
        return Err(TlsError::Malformed {
            field: Field::SessionId,
        });
    }
    let suites = r.vec16(Field::CipherSuites)?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(TlsError::Malformed {
            field: Field::CipherSuites,
        });
    }
    if r.vec8(Field::Compression)?.is_empty() {
        return Err(TlsError::Malformed {
            field: Field::Compression,
        });
    }
    let mut hello = ClientHello {
        record_version: ProtocolVersion(0),
        legacy_version,
        supported_versions: VersionList::default(),
        sni: None,
        sni_offset: None,
        alpn: AlpnList::default(),
        len: 0,
    };
    extensions(&mut r, |ext_type, data| {
        match ext_type {
            EXT_SERVER_NAME => {
                let name = server_name(data)?;
                hello.sni_offset = Some(offset_in(msg, name));
                hello.sni = Some(check_host_name(name)?);
            }
            EXT_ALPN => hello.alpn = alpn(data)?,
            EXT_SUPPORTED_VERSIONS => {
                let field = Field::SupportedVersions;
                let mut d = Reader { buf: data };
                let list = d.vec8(field)?;
                if !d.is_empty() || list.len() < 2 || list.len() % 2 != 0 {
                    return Err(TlsError::Malformed { field });
                }
                for pair in list.chunks_exact(2) {
                    if let [a, b] = *pair {
                        hello.supported_versions.push(u16::from_be_bytes([a, b]));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(hello)
}

fn parse_server_body(msg: &[u8]) -> Result<ServerHello, TlsError> {
    let mut r = Reader { buf: msg };
    let legacy_version = version_of(&mut r)?;
    let session = r.vec8(Field::SessionId)?;
    if session.len() > 32 {
        return Err(TlsError::Malformed {
            field: Field::SessionId,
        });
    }
    r.u16(Field::CipherSuites)?;
    r.u8(Field::Compression)?;
    let mut hello = ServerHello {
        record_version: ProtocolVersion(0),
        legacy_version,
        selected_version: None,
        alpn: AlpnList::default(),
        len: 0,
    };
    extensions(&mut r, |ext_type, data| {
        match ext_type {
            EXT_ALPN => {
                let list = alpn(data)?;
                if list.offered() != 1 {
                    return Err(TlsError::Malformed { field: Field::Alpn });
                }
                hello.alpn = list;
            }
            EXT_SUPPORTED_VERSIONS => {
                let [a, b] = *data else {
                    return Err(TlsError::Malformed {
                        field: Field::SupportedVersions,
                    });
                };
                hello.selected_version = Some(ProtocolVersion(u16::from_be_bytes([a, b])));
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(hello)
}

/// The host name of a `server_name` extension (RFC 6066 section 3), unchecked.
fn server_name(data: &[u8]) -> Result<&[u8], TlsError> {
    let field = Field::ServerName;
    let mut d = Reader { buf: data };
    let list = d.vec16(field)?;
    if !d.is_empty() || list.is_empty() {
        return Err(TlsError::Malformed { field });
    }
    let mut list = Reader { buf: list };
    let mut host = None;
    while !list.is_empty() {
        let name_type = list.u8(field)?;
        let name = list.vec16(field)?;
        if name_type == 0 {
            if host.is_some() {
                return Err(TlsError::Malformed { field });
            }
            host = Some(name);
        }
    }
    host.ok_or(TlsError::Malformed { field })
}

/// Checks an SNI host name: 1..=253 bytes of letters, digits, `-`, `_` and dots, labels of
/// 1..=63 bytes, not an IPv4 literal. `_` is allowed because such names exist in the wild.
pub fn check_host_name(name: &[u8]) -> Result<DomainName, TlsError> {
    let bad = |e| Err(TlsError::BadSni(e));
    if name.is_empty() {
        return bad(SniError::Empty);
    }
    if name.len() > 253 {
        return bad(SniError::TooLong { len: name.len() });
    }
    if let Some(&byte) = name
        .iter()
        .find(|&&b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
    {
        return bad(SniError::BadByte { byte });
    }
    if name
        .split(|&b| b == b'.')
        .any(|l| l.is_empty() || l.len() > 63)
    {
        return bad(SniError::BadLabel);
    }
    if core::str::from_utf8(name)
        .ok()
        .and_then(|s| s.parse::<std::net::Ipv4Addr>().ok())
        .is_some()
    {
        return bad(SniError::IpLiteral);
    }
    DomainName::new(name).map_err(|_| TlsError::BadSni(SniError::Empty))
}

/// An ALPN `ProtocolNameList` (RFC 7301 section 3.1): non-empty, names of 1..=255 bytes.
fn alpn(data: &[u8]) -> Result<AlpnList, TlsError> {
    let field = Field::Alpn;
    let mut d = Reader { buf: data };
    let list = d.vec16(field)?;
    if !d.is_empty() || list.is_empty() {
        return Err(TlsError::Malformed { field });
    }
    let mut list = Reader { buf: list };
    let mut out = AlpnList::default();
    while !list.is_empty() {
        let name = list.vec8(field)?;
        if name.is_empty() {
            return Err(TlsError::Malformed { field });
        }
        out.push(name);
    }
    Ok(out)
}
