//! What the four Bookinfo services share.
//!
//! Services stay thin: HTTP handlers and domain data. Everything about reading configuration,
//! forwarding headers, calling other services and wiring the HTTP server lives here, behind a
//! small API, so that a service never knows which tracing mode it runs in.
//!
//! - [`config`]: typed configuration read from the environment through a [`config::Source`].
//! - [`propagation`]: the headers a request carries on to the services it calls, and the
//!   tracing modes.
//! - [`upstream`]: the services a service can call and where they live.
//! - [`client`]: the outbound HTTP client ([`client::RequestContext`]) handlers call through.
//! - [`edge`]: productpage's rule: it alone names the user (`end-user`, baggage `user`).
//! - [`server`]: listening sockets and the shared `actix-web` wiring.
//! - [`service`]: the services, by name.
//! - [`middleware`]: per request, the SERVER span (`otel` mode) and the access log.
//! - [`respond`]: small response builders.
//! - [`routing`]: the decision a [`routing::Router`] makes for each outbound call.
//! - [`telemetry`]: logging and the OpenTelemetry SDK, from the standard `OTEL_*` variables.
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod edge;
pub mod middleware;
pub mod propagation;
pub mod respond;
pub mod routing;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod upstream;

pub use client::{Reply, RequestContext, UpstreamClient, UpstreamError};
pub use config::{ConfigError, Source};
pub use propagation::TracingMode;
pub use service::Service;
pub use telemetry::Tracing;
pub use upstream::{Upstream, Upstreams};
