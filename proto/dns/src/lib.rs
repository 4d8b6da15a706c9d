//! DNS for triproxy.

mod cache;
pub mod config;
pub mod resolver;
pub use config::*;
pub use resolver::*;
