//! What the Bookinfo services answer each other, one module per service: the types the
//! service that writes an answer and the services that read it share, so that neither side
//! can drift from the other and a reader needs no more of the writer than its wire format.
//!
//! - [`details`]: the [`details::Book`] of `/details/{id}`.
//! - [`reviews`]: the [`reviews::Reviews`] of `/reviews/{id}`, written byte for byte as the
//!   original writes it.
//! - [`ratings`]: the [`ratings::Ratings`] of `/ratings/{id}`.
//!
//! Each module also names its service, which its callers' upstream addresses derive from.
#![warn(missing_docs)]

pub mod details;
pub mod ratings;
pub mod reviews;
