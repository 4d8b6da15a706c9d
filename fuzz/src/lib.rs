//! Helpers shared by triproxy's fuzz targets, and the [`target!`] macro every target is
//! written with.
//!
//! A target is one file, `fuzz_targets/NAME.rs`, whose body is a `target!` invocation. Under
//! cargo-fuzz (nightly, `--cfg fuzzing`) the macro hands the body to libFuzzer; without it
//! the same file builds on stable, where `fuzz-replay` (a workspace member) compiles it as a
//! module and replays `corpus/NAME/` and `artifacts-found/NAME/` through it in `cargo test`.
//!
//! What is here: [`Input`], a reader that turns the front of the fuzzer's bytes into choices
//! (configurations, driver decisions) and hands back the rest as a byte stream; [`chunks`],
//! which splits a stream at points derived from one input byte; [`check_codec`], the
//! decode → encode → decode oracle with the all-prefixes rule of STYLE.md §13; and a fixed
//! [`start`] instant, so that machines see the same time in every run.
//!
//! What is not here: knowledge of any particular protocol. A target that needs a driver
//! for a machine writes it in its own file, so that adding a target never touches this
//! crate. The project crates are re-exported ([`wire`], [`socks`], [`http`], [`dns`], [`tls`],
//! [`pop3`], [`imap`], [`smtp`], [`policy`], [`daemon`]) so that a target file names only
//! this crate and `fuzz-replay` needs no other dependency.

#![forbid(unsafe_code)]

use std::fmt::Debug;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

pub use triproxy as daemon;
pub use triproxy_dns as dns;
pub use triproxy_http as http;
pub use triproxy_imap as imap;
pub use triproxy_policy as policy;
pub use triproxy_pop3 as pop3;
pub use triproxy_smtp as smtp;
pub use triproxy_socks as socks;
pub use triproxy_tls as tls;
pub use triproxy_wire as wire;

use triproxy_wire::Status;

#[cfg(feature = "libfuzzer")]
#[doc(hidden)]
pub use libfuzzer_sys as __libfuzzer;

/// Declares a fuzz target: `triproxy_fuzz::target!(|data| { ... });`
///
/// It defines `pub fn run(data: &[u8])` with the body (a finding is a panic) and, under
/// cargo-fuzz, the libFuzzer entry point that calls it. Built without `--cfg fuzzing` it
/// defines a `main` that runs the files and directories named on its command line, so a
/// crash can be reproduced on stable:
/// `cargo run --manifest-path fuzz/Cargo.toml --no-default-features --bin NAME -- FILE`.
///
/// A target file starts with `#![cfg_attr(fuzzing, no_main)]` (libFuzzer brings `main`).
#[macro_export]
macro_rules! target {
    (|$data:ident| $body:block) => {
        /// Runs this target on one input; panics if an oracle fails.
        pub fn run($data: &[u8]) $body

        #[cfg(fuzzing)]
        $crate::__libfuzzer::fuzz_target!(|data: &[u8]| run(data));

        /// Replays the inputs named on the command line (files or directories).
        #[cfg(not(fuzzing))]
        #[allow(dead_code)]
        fn main() {
            for arg in ::std::env::args_os().skip(1) {
                let n = $crate::replay_path(::std::path::Path::new(&arg), run);
                ::std::eprintln!("{}: {} inputs ran", arg.to_string_lossy(), n);
            }
        }
    };
}

/// Runs `run` on the file at `path`, or on every file directly inside the directory at
/// `path` in name order; returns how many inputs ran. Unreadable entries are skipped
/// (a missing corpus directory runs nothing).
pub fn replay_path(path: &Path, run: fn(&[u8])) -> usize {
    let mut files = Vec::new();
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            files.extend(entries.filter_map(Result::ok).map(|e| e.path()));
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut ran = 0;
    for file in files.iter().filter(|f| f.is_file()) {
        if let Ok(bytes) = std::fs::read(file) {
            run(&bytes);
            ran += 1;
        }
    }
    ran
}

/// The instant every machine starts at. Fixed for the whole process, so that two runs of
/// a machine over the same input see the same times.
pub fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    // The fuzz targets need *some* instant to offset from; nothing depends on its value.
    #[allow(clippy::disallowed_methods)]
    *START.get_or_init(Instant::now)
}

/// Reads choices from the front of a fuzz input; the unread rest is the byte stream.
///
/// Reading past the end gives zeros, so every input is valid and short inputs mean "the
/// first choice everywhere".
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Wraps the fuzzer's bytes.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte (0 past the end).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }

    /// The next four bytes, big-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// One of `options`, chosen by the next byte (`options` must not be empty; an empty
    /// slice gives `None`).
    pub fn choose<T: Copy>(&mut self, options: &[T]) -> Option<T> {
        let b = usize::from(self.byte());
        options.get(b % options.len().max(1)).copied()
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// The bytes up to (not including) the next `sep`, which is skipped; everything left
    /// if there is none.
    pub fn until(&mut self, sep: u8) -> &'a [u8] {
        match self.data.iter().position(|&b| b == sep) {
            Some(i) => {
                let (head, rest) = self.data.split_at(i);
                self.data = rest.get(1..).unwrap_or_default();
                head
            }
            None => self.rest(),
        }
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.data)
    }
}

/// Splits `stream` into chunks as a network might deliver it; `how` picks the pattern:
/// 0 one chunk, 1 one byte at a time, 2 two chunks cut in the middle, anything else chunk
/// sizes from a small generator seeded with `how` (1 to 16 bytes, sometimes larger).
/// Empty chunks never appear. Concatenated, the chunks are always `stream`.
pub fn chunks(stream: &[u8], how: u8) -> Vec<&[u8]> {
    match how {
        0 => vec![stream],
        1 => stream.chunks(1).collect(),
        2 => {
            let (a, b) = stream.split_at(stream.len() / 2);
            [a, b].into_iter().filter(|c| !c.is_empty()).collect()
        }
        seed => {
            let mut state = u32::from(seed).wrapping_mul(0x9E37_79B9) | 1;
            let mut out = Vec::new();
            let mut rest = stream;
            while !rest.is_empty() {
                // xorshift32
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let size = match state % 8 {
                    0 => 64 + (state >> 8) as usize % 512,
                    _ => 1 + (state >> 8) as usize % 16,
                };
                let (head, tail) = rest.split_at(size.min(rest.len()));
                out.push(head);
                rest = tail;
            }
            out
        }
    }
}

/// The decode → encode → decode oracle for one message type, plus the rules every parser
/// of this project promises (STYLE.md §3 and §13):
///
/// * a complete parse consumed at most the input, and its encoding has exactly
///   `encoded_len` bytes and parses back to the same value, consuming all of it;
/// * every strict prefix of the consumed bytes, and of the encoding, is `Partial`;
/// * `Partial { needed: Some(n) }` is a true lower bound: the input extended by `n - 1`
///   bytes (of `0x00`, or of `0xff`) is still not complete.
///
/// `encode` returns the bytes and the length the type says it needs.
/// Returns the value if the input parsed complete.
pub fn check_codec<T, E>(
    input: &[u8],
    parse: impl Fn(&[u8]) -> Result<Status<T>, E>,
    encode: impl Fn(&T) -> (Vec<u8>, usize),
) -> Option<T>
where
    T: PartialEq + Debug,
    E: Debug,
{
    match parse(input) {
        Ok(Status::Complete { value, consumed }) => {
            assert!(
                consumed > 0 && consumed <= input.len(),
                "consumed {consumed} of {} bytes",
                input.len()
            );
            let used = input.get(..consumed).unwrap_or_default();
            assert_prefixes_partial(used, &parse, "input");
            let (bytes, claimed) = encode(&value);
            assert_eq!(bytes.len(), claimed, "encoded_len disagrees with encode");
            match parse(&bytes) {
                Ok(Status::Complete {
                    value: again,
                    consumed: used_again,
                }) => {
                    assert_eq!(again, value, "decode(encode(v)) != v for {bytes:02x?}");
                    assert_eq!(used_again, bytes.len(), "re-parse left bytes over");
                }
                other => panic!("encoding {bytes:02x?} of {value:?} re-parsed as {other:?}"),
            }
            assert_prefixes_partial(&bytes, &parse, "encoding");
            Some(value)
        }
        Ok(Status::Partial { needed }) => {
            if let Some(n) = needed {
                for fill in [0x00, 0xff] {
                    let mut longer = input.to_vec();
                    longer.resize(input.len() + n.get() - 1, fill);
                    if let Ok(Status::Complete { value, .. }) = parse(&longer) {
                        panic!(
                            "{input:02x?} said it needs {n} more bytes, but {} more made {value:?}",
                            n.get() - 1
                        );
                    }
                }
            }
            None
        }
        Err(_) => None,
    }
}

fn assert_prefixes_partial<T: Debug, E: Debug>(
    bytes: &[u8],
    parse: &impl Fn(&[u8]) -> Result<Status<T>, E>,
    what: &str,
) {
    for end in 0..bytes.len() {
        let prefix = bytes.get(..end).unwrap_or_default();
        match parse(prefix) {
            Ok(Status::Partial { .. }) => {}
            other => {
                panic!("strict prefix {prefix:02x?} of the {what} {bytes:02x?} gave {other:?}")
            }
        }
    }
}

/// Encodes with a `bytes::BufMut` encoder into a fresh vector, for [`check_codec`].
pub fn encode_with(len: usize, f: impl FnOnce(&mut Vec<u8>)) -> (Vec<u8>, usize) {
    let mut v = Vec::with_capacity(len);
    f(&mut v);
    (v, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_stream() {
        let stream: Vec<u8> = (0..=255).collect();
        for how in 0..=255 {
            let parts = chunks(&stream, how);
            assert!(parts.iter().all(|c| !c.is_empty()));
            assert_eq!(parts.concat(), stream);
        }
        assert!(chunks(&[], 7).is_empty());
    }

    #[test]
    fn input_reads_past_the_end_as_zero() {
        let mut i = Input::new(&[1, 2, 3, 0, 9]);
        assert_eq!(i.u16(), 0x0102);
        assert_eq!(i.until(0), &[3]);
        assert_eq!(i.rest(), &[9]);
        assert_eq!((i.byte(), i.u32()), (0, 0));
        assert_eq!(i.choose(&[5, 6]), Some(5));
    }
}
