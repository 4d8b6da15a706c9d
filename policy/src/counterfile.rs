//! 3proxy's binary counter file (`counter FILE`): the traffic tallies that survive a
//! restart.
//!
//! The layout is the one 3proxy 1.0 writes on 64-bit Unix (its `struct counter_header`
//! and `struct counter_record` in native byte order, which is little-endian on every
//! platform triproxy runs on), so a file can move between 3proxy and triproxy:
//!
//! ```text
//! offset 0    "3CF\0"                     magic (4 bytes)
//! offset 4    4 bytes                     alignment padding (ignored when read, zero when written)
//! offset 8    i64 LE  updated             when the file was last written (Unix seconds)
//! offset 16   record 1, record 2, ...     24 bytes each; counter NUM is record NUM-1
//!   +0  u64 LE  bytes                     traffic counted in the current period
//!   +8  i64 LE  cleared                   when the counter was last reset (0: never)
//!   +16 i64 LE  updated                   when traffic was last added (0: never)
//! ```
//!
//! A record of zeros is a slot nobody wrote (3proxy seeks past the end to write record
//! NUM, leaving holes of zeros). Times must lie in 0..[`MAX_TIME`] (3proxy's
//! `MAX_COUNTER_TIME`, the year 3000).
//!
//! Reading is strict where 3proxy is lenient: 3proxy starts a counter from zero when its
//! record is cut short, which silently forgets the traffic counted so far; here a file
//! whose length is not a header plus whole records is [`CounterFileError::Truncated`], so
//! the daemon refuses to start instead of lifting every quota. An empty file is a new one.
//!
//! This module only converts bytes; reading and writing the file is the daemon's job.

use core::fmt;

/// The magic at the start of the file (with its NUL).
pub const MAGIC: [u8; 4] = *b"3CF\0";
/// Size of the header in bytes.
pub const HEADER_LEN: usize = 16;
/// Size of one record in bytes.
pub const RECORD_LEN: usize = 24;
/// Times at or after this (3000-01-01 UTC) are corrupt (3proxy `MAX_COUNTER_TIME`).
pub const MAX_TIME: i64 = 0x7_9340_6fff;
/// Highest counter number (`countin "NUM/..."`): bounds the file to 24 MB.
pub const MAX_COUNTER_NUMBER: u32 = 1_000_000;
/// Largest file accepted.
pub const MAX_FILE_LEN: usize = HEADER_LEN + RECORD_LEN * MAX_COUNTER_NUMBER as usize;

/// One counter's persisted state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record {
    /// Bytes counted in the current period.
    pub bytes: u64,
    /// Unix time of the last reset; 0 = never.
    pub cleared: i64,
    /// Unix time traffic was last added; 0 = never.
    pub updated: i64,
}

impl Record {
    /// Whether this slot was never written.
    pub fn is_empty(&self) -> bool {
        *self == Record::default()
    }
}

/// A whole counter file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CounterFile {
    /// Unix time the file was last written; 0 = never.
    pub updated: i64,
    /// Records in file order: counter NUM is `records[NUM - 1]`.
    pub records: Vec<Record>,
}

impl CounterFile {
    /// The record of counter `number` (1-based), if the file has a non-empty one.
    pub fn get(&self, number: u32) -> Option<&Record> {
        let index = usize::try_from(number).ok()?.checked_sub(1)?;
        self.records.get(index).filter(|r| !r.is_empty())
    }

    /// Sets the record of counter `number` (1..=[`MAX_COUNTER_NUMBER`]), growing the file
    /// with empty records as needed. Other numbers are ignored.
    pub fn set(&mut self, number: u32, record: Record) {
        if !(1..=MAX_COUNTER_NUMBER).contains(&number) {
            return;
        }
        let Ok(index) = usize::try_from(number - 1) else {
            return;
        };
        if self.records.len() <= index {
            self.records.resize(index + 1, Record::default());
        }
        if let Some(slot) = self.records.get_mut(index) {
            *slot = record;
        }
    }
}

/// Why bytes are not a usable counter file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CounterFileError {
    /// The first four bytes are not `3CF\0`.
    NotACounterFile,
    /// The file ends inside the header or inside a record.
    Truncated {
        /// The file's length.
        len: usize,
    },
    /// Longer than [`MAX_FILE_LEN`].
    TooLarge {
        /// The file's length.
        len: usize,
    },
    /// A time outside 0..[`MAX_TIME`] (3proxy: "Invalid or corrupted counter file").
    BadTime {
        /// 0 for the header, else the counter number whose record holds it.
        number: u32,
        /// The value.
        value: i64,
    },
}

impl fmt::Display for CounterFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CounterFileError::NotACounterFile => {
                write!(f, "not a 3proxy counter file (no `3CF` header)")
            }
            CounterFileError::Truncated { len } => write!(
                f,
                "truncated: {len} bytes is not a {HEADER_LEN}-byte header plus whole {RECORD_LEN}-byte records"
            ),
            CounterFileError::TooLarge { len } => {
                write!(f, "{len} bytes is larger than {MAX_FILE_LEN}")
            }
            CounterFileError::BadTime { number: 0, value } => {
                write!(f, "corrupt: header time {value} is out of range")
            }
            CounterFileError::BadTime { number, value } => {
                write!(f, "corrupt: counter {number} has time {value} out of range")
            }
        }
    }
}

impl std::error::Error for CounterFileError {}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(s) = bytes.get(at..at + 8) {
        b.copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

fn time_at(bytes: &[u8], at: usize, number: u32) -> Result<i64, CounterFileError> {
    let value = u64_at(bytes, at) as i64;
    if (0..MAX_TIME).contains(&value) {
        Ok(value)
    } else {
        Err(CounterFileError::BadTime { number, value })
    }
}

/// Parses a whole counter file. Empty input is a new, empty file.
///
/// ```
/// use triproxy_policy::counterfile::{read, write, CounterFile, Record};
/// let mut file = CounterFile { updated: 1_700_000_000, records: Vec::new() };
/// file.set(2, Record { bytes: 5 << 20, cleared: 1_699_990_000, updated: 1_700_000_000 });
/// let bytes = write(&file);
/// assert_eq!(bytes.len(), 16 + 2 * 24);
/// assert_eq!(read(&bytes), Ok(file));
/// assert!(read(&bytes[..30]).is_err());
/// ```
pub fn read(bytes: &[u8]) -> Result<CounterFile, CounterFileError> {
    if bytes.is_empty() {
        return Ok(CounterFile::default());
    }
    if bytes.len() > MAX_FILE_LEN {
        return Err(CounterFileError::TooLarge { len: bytes.len() });
    }
    if bytes.len() >= MAGIC.len() && bytes.get(..4) != Some(&MAGIC[..]) {
        return Err(CounterFileError::NotACounterFile);
    }
    if bytes.len() < HEADER_LEN || (bytes.len() - HEADER_LEN) % RECORD_LEN != 0 {
        return Err(CounterFileError::Truncated { len: bytes.len() });
    }
    let updated = time_at(bytes, 8, 0)?;
    let body = bytes.get(HEADER_LEN..).unwrap_or_default();
    let mut records = Vec::with_capacity(body.len() / RECORD_LEN);
    for (i, chunk) in body.chunks_exact(RECORD_LEN).enumerate() {
        let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
        records.push(Record {
            bytes: u64_at(chunk, 0),
            cleared: time_at(chunk, 8, number)?,
            updated: time_at(chunk, 16, number)?,
        });
    }
    Ok(CounterFile { updated, records })
}

/// The bytes of `file`, in the layout [`read`] accepts. Times out of range are clamped
/// into it, so what is written always reads back.
pub fn write(file: &CounterFile) -> Vec<u8> {
    let clamp = |t: i64| t.clamp(0, MAX_TIME - 1);
    let mut out = Vec::with_capacity(HEADER_LEN + RECORD_LEN * file.records.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&clamp(file.updated).to_le_bytes());
    for r in &file.records {
        out.extend_from_slice(&r.bytes.to_le_bytes());
        out.extend_from_slice(&clamp(r.cleared).to_le_bytes());
        out.extend_from_slice(&clamp(r.updated).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A file as 3proxy writes it: counter 1 with 1 MiB, a hole for counter 2, counter 3.
    fn three_proxy_bytes() -> Vec<u8> {
        let mut b = b"3CF\0\xaa\xbb\xcc\xdd".to_vec(); // padding may hold anything
        b.extend_from_slice(&1_764_660_000i64.to_le_bytes());
        b.extend_from_slice(&(1u64 << 20).to_le_bytes());
        b.extend_from_slice(&1_764_633_600i64.to_le_bytes());
        b.extend_from_slice(&1_764_659_990i64.to_le_bytes());
        b.extend_from_slice(&[0; 24]);
        b.extend_from_slice(&7u64.to_le_bytes());
        b.extend_from_slice(&0i64.to_le_bytes());
        b.extend_from_slice(&1_764_659_000i64.to_le_bytes());
        b
    }

    #[test]
    fn reads_a_3proxy_file() {
        let file = read(&three_proxy_bytes()).unwrap();
        assert_eq!(file.updated, 1_764_660_000);
        assert_eq!(file.records.len(), 3);
        assert_eq!(
            file.get(1),
            Some(&Record {
                bytes: 1 << 20,
                cleared: 1_764_633_600,
                updated: 1_764_659_990
            })
        );
        assert_eq!(file.get(2), None, "a hole");
        assert_eq!(file.get(3).map(|r| r.bytes), Some(7));
        assert_eq!(file.get(0), None);
        assert_eq!(file.get(4), None);
        // Written back: the same bytes but for the padding.
        let mut expected = three_proxy_bytes();
        expected[4..8].copy_from_slice(&[0; 4]);
        assert_eq!(write(&file), expected);
    }

    #[test]
    fn empty_is_new_and_damage_is_an_error() {
        assert_eq!(read(&[]), Ok(CounterFile::default()));
        let good = three_proxy_bytes();
        for len in 1..good.len() {
            let cut = &good[..len];
            let ok_len = len >= HEADER_LEN && (len - HEADER_LEN) % RECORD_LEN == 0;
            assert_eq!(read(cut).is_ok(), ok_len, "length {len}");
        }
        assert_eq!(
            read(b"3CF"),
            Err(CounterFileError::Truncated { len: 3 }),
            "a short header"
        );
        let mut bad = good.clone();
        bad[0] = b'4';
        assert_eq!(read(&bad), Err(CounterFileError::NotACounterFile));
        let mut bad = good.clone();
        bad[16 + 24 + 24 + 8..16 + 24 + 24 + 16].copy_from_slice(&(-1i64).to_le_bytes());
        assert_eq!(
            read(&bad),
            Err(CounterFileError::BadTime {
                number: 3,
                value: -1
            })
        );
        let mut bad = good;
        bad[8..16].copy_from_slice(&MAX_TIME.to_le_bytes());
        assert!(matches!(
            read(&bad),
            Err(CounterFileError::BadTime { number: 0, .. })
        ));
        assert!(matches!(
            read(&vec![0; MAX_FILE_LEN + 1]),
            Err(CounterFileError::TooLarge { .. })
        ));
    }

    #[test]
    fn set_grows_with_holes() {
        let mut f = CounterFile::default();
        f.set(
            3,
            Record {
                bytes: 1,
                cleared: 0,
                updated: 0,
            },
        );
        assert_eq!(f.records.len(), 3);
        f.set(0, Record::default());
        f.set(MAX_COUNTER_NUMBER + 1, Record::default());
        assert_eq!(f.records.len(), 3);
        assert_eq!(f.get(3).map(|r| r.bytes), Some(1));
    }

    fn time() -> impl Strategy<Value = i64> {
        0..MAX_TIME
    }

    proptest! {
        #[test]
        fn round_trip(
            updated in time(),
            records in proptest::collection::vec((any::<u64>(), time(), time()), 0..40),
        ) {
            let file = CounterFile {
                updated,
                records: records
                    .into_iter()
                    .map(|(bytes, cleared, updated)| Record { bytes, cleared, updated })
                    .collect(),
            };
            let bytes = write(&file);
            prop_assert_eq!(bytes.len(), HEADER_LEN + RECORD_LEN * file.records.len());
            prop_assert_eq!(read(&bytes), Ok(file));
        }

        #[test]
        fn any_bytes_read_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(file) = read(&bytes) {
                prop_assert_eq!(read(&write(&file)), Ok(file));
            }
        }
    }
}
