//! Black-box tests: real services on ephemeral 127.0.0.1 ports, driven over HTTP and compared
//! with what the original Bookinfo services answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod details;
mod helpers;
mod productpage;
mod ratings;
mod reviews;
mod stack;
