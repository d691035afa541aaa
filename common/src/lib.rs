//! What the four Bookinfo services share.
//!
//! Services stay thin: HTTP handlers and domain data. Everything about reading configuration,
//! forwarding headers, calling other services and wiring the HTTP server lives here, behind a
//! small API, so that a service never knows which tracing mode it runs in.
//!
//! - [`config`]: typed configuration read from the environment through a [`config::Source`].
//! - [`propagation`]: the headers a request carries on to the services it calls.
//! - [`upstream`]: the services a service can call and where they live.
//! - [`client`]: the outbound HTTP client ([`client::RequestContext`]) handlers call through.
//! - [`server`]: listening sockets and the shared `actix-web` wiring.
//! - [`respond`]: small response builders.
//! - [`telemetry`]: process-wide logging set-up.
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod propagation;
pub mod respond;
pub mod server;
pub mod telemetry;
pub mod upstream;

pub use client::{Reply, RequestContext, UpstreamClient, UpstreamError};
pub use config::{ConfigError, Source};
pub use upstream::{Upstream, Upstreams};
