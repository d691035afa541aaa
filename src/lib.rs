//! `bookinfo`: Istio's Bookinfo sample in Rust, as one program. `bookinfo up` (plain
//! `cargo run`) starts the whole stack locally, with Envoy sidecars under `--mesh`; `bookinfo
//! serve <service>` runs one service, as in a container; `bookinfo traces` reads traces.
//!
//! The library holds what the binary and the tests share: the command line ([`cli`]), the
//! wiring of one service ([`serve::Configured`]), the local stack ([`up`]).
#![forbid(unsafe_code)]

pub mod blocking;
pub mod cli;
pub mod curl;
pub mod error;
pub mod output;
pub mod serve;
pub mod service;
pub mod traces;
pub mod up;
