#![cfg_attr(fuzzing, no_main)]
//! The counter file reader (`triproxy_policy::counterfile::read`) on arbitrary bytes, then
//! the counters restored from what it accepted.
//!
//! Input: the whole file.
//!
//! Oracles: no panic; an accepted file writes back to exactly its own length and reads
//! back equal (decode → encode → decode); a truncated or damaged file is an error, never a
//! partial result (every strict prefix that is not a header plus whole records fails);
//! counters restored from it and stored again keep the bytes of their records.

use std::sync::Arc;
use triproxy_fuzz::policy::acl::{Ace, Action};
use triproxy_fuzz::policy::counterfile::{read, write, CounterFile, HEADER_LEN, RECORD_LEN};
use triproxy_fuzz::policy::period::{LocalStamp, Period};
use triproxy_fuzz::policy::quota::{CountDirection, Quotas, Rule};

fn stamp(unix: i64) -> Option<LocalStamp> {
    Some(LocalStamp {
        unix,
        year: 2000 + i32::try_from(unix / 31_536_000 % 1000).ok()?,
        month: 1 + u8::try_from(unix / 2_592_000 % 12).ok()?,
        day: 1 + u8::try_from(unix / 86_400 % 28).ok()?,
        hour: u8::try_from(unix / 3600 % 24).ok()?,
        minute: u8::try_from(unix / 60 % 60).ok()?,
    })
}

triproxy_fuzz::target!(|data| {
    let Ok(file) = read(data) else {
        return;
    };
    let bytes = write(&file);
    if !data.is_empty() {
        assert_eq!(bytes.len(), data.len());
        assert_eq!(bytes.get(..4), data.get(..4));
    }
    assert_eq!(read(&bytes).as_ref(), Ok(&file));
    for cut in [1, HEADER_LEN - 1, data.len().saturating_sub(1)] {
        if cut > 0 && cut < data.len() && (cut < HEADER_LEN || (cut - HEADER_LEN) % RECORD_LEN != 0)
        {
            assert!(
                read(&data[..cut]).is_err(),
                "prefix of {cut} bytes accepted"
            );
        }
    }

    // Counters numbered 1..=4 take their records, and give them back.
    let Ok(any) = Ace::parse(Action::Allow, &[]) else {
        panic!("empty ACL fields must parse");
    };
    let mut quotas = Quotas::new();
    for n in 1..=4u32 {
        let rule = Rule::count(CountDirection::All, n, "", Period::Daily, 1, any.clone());
        assert!(quotas.push(rule).is_ok(), "distinct numbers");
    }
    let quotas = Arc::new(quotas);
    quotas.restore(&file, stamp);
    let mut again = CounterFile::default();
    quotas.store(&mut again, file.updated);
    for n in 1..=4u32 {
        assert_eq!(again.get(n).map(|r| r.bytes), file.get(n).map(|r| r.bytes));
    }
});
