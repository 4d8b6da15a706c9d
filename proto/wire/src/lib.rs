//! Shared vocabulary of the triproxy protocol crates.
//!
//! This crate holds the types every protocol machine speaks in: the [`Status`] a parser
//! answers with, the [`TargetAddr`] a client asks for, bounded [`DomainName`]s, the
//! [`Transmit`] buffer a machine hands its driver, and the 3proxy [`LogCode`] every failure
//! maps to. It does no I/O, reads no clock and allocates nothing.
//!
//! It is not a protocol: SOCKS, HTTP and the others live in their own crates and depend on
//! this one. [`handshake`] has the one I/O loop their client adapters share: the trait
//! always, the loops only with the features `blocking` (a `std::net::TcpStream`) and
//! `futures` (any `futures-io` stream), which are off by default.
//!
//! # Stability
//!
//! Without features, no type or trait of another crate appears in this crate's public API:
//! the `arrayvec` storage behind [`DomainName`] and [`Transmit`] is an implementation
//! detail, and may be replaced in any release. With the `futures` feature on, `futures-io`
//! 0.3 is part of the API on purpose. While the version is 0.x, a minor release may break the API
//! and a patch release does not.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod addr;
mod code;
pub mod handshake;
pub mod line;
pub mod login;
mod status;
mod transmit;

pub use addr::{DomainError, DomainName, ParseTargetError, TargetAddr, MAX_DOMAIN_LEN};
pub use code::LogCode;
pub use status::Status;
pub use transmit::{Transmit, TransmitFull, MAX_TRANSMIT};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
