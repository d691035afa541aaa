//! How a Bookinfo service serves requests and calls other services.
//!
//! Services stay thin: HTTP handlers and domain data. Everything about serving, forwarding
//! headers, calling other services and the spans of both lives here, behind a small API, so that
//! a service never knows which tracing mode it runs in:
//! `ctx.get(REVIEWS, "/reviews/{id}", id).timeout(..).send()`.
//!
//! - [`server`]: listening sockets and the shared `actix-web` wiring ([`server::run`]).
//! - [`middleware`]: per request, the SERVER span (`otel` mode) and the access log.
//! - [`edge`]: productpage's rule, applied to each inbound request: it alone names the user.
//! - [`client`]: the outbound HTTP client ([`RequestContext`]) handlers call through, with a
//!   CLIENT span per call in `otel` mode.
//! - [`spans`]: how each request is traced ([`Tracing`]) and the spans of requests and calls.
//! - [`database`]: the spans of a service's queries to a database.
//! - [`upstream`]: the services a service calls and where they live.
//! - [`routing`]: where a [`routing::Router`] plays the calling pod's sidecar (the local stack).
//! - [`headers`]: actix-web's header maps, lent to `bookinfo-propagation`.
//! - [`respond`]: small response builders.
#![warn(missing_docs)]

pub mod client;
pub mod database;
pub mod edge;
pub mod headers;
pub mod middleware;
pub mod respond;
pub mod routing;
pub mod server;
pub mod spans;
pub mod upstream;

pub use client::{Reply, RequestContext, UpstreamClient, UpstreamError};
pub use spans::{Otel, Tracing};
pub use upstream::{Upstream, Upstreams};
