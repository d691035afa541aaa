//! The Istio routing model of the Bookinfo stack, and its two routers.
//!
//! The same Istio YAML (VirtualService, DestinationRule, Gateway, or the Gateway API's
//! HTTPRoute) steers traffic on a cluster, in `bookinfo up --routes` (the services apply it to their own calls: [`decide`], carried by [`sidecar`]) and in
//! `bookinfo up --mesh` (rendered into the Envoy sidecars' routes: [`envoy`]). [`model`] reads
//! and checks it once for both; what neither router can do is an error naming the field and
//! the file, never silently ignored.
#![warn(missing_docs)]

pub mod decide;
pub mod envoy;
pub mod gateway_api;
pub mod istio;
pub mod model;
pub mod sidecar;

use std::path::PathBuf;

pub use bookinfo_config::parse_duration;

#[cfg(test)]
mod tests;
pub use model::Routing;

/// Why routing files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A file is not valid Istio YAML, or asks for what is not supported.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}
