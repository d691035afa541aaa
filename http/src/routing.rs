//! Where a service's outbound calls are routed when no sidecar routes them (the local stack
//! without `--mesh`): the [`Router`] a service is handed plays the calling pod's sidecar for
//! each call. It decides where the call goes (a version's pods) and what happens on the way
//! (faults, retries, deadlines), and sends each try through the [`Transport`] the client hands
//! it. The Istio rules, and that sidecar's behaviour, live in the `bookinfo-mesh` crate: neither
//! this crate nor the services know where decisions come from, or that Envoy exists.

use std::fmt;

use actix_web::http::header::HeaderMap;
use futures_util::future::LocalBoxFuture;

use crate::client::{Reply, UpstreamError};
use crate::upstream::Upstream;

/// `BOOKINFO_ROUTES`: comma-separated Istio YAML files applied to outbound calls.
pub const BOOKINFO_ROUTES: &str = "BOOKINFO_ROUTES";

/// One outbound call, as the calling pod's sidecar sees it.
#[derive(Debug)]
pub struct Outbound<'a> {
    /// The service called.
    pub upstream: Upstream,
    /// `GET`, ...
    pub method: &'a str,
    /// The path and query.
    pub path: &'a str,
    /// Every header it carries.
    pub headers: HeaderMap,
}

/// The answer of a sidecar: the upstream's, or its own (a fault, a refusal, a deadline), any
/// status; or why no answer came.
pub type Answer = Result<Reply, UpstreamError>;

/// How a call reaches the pods: what the client hands a [`Router`].
pub trait Transport {
    /// Whether `upstream` has pods of `version`.
    fn has_version(&self, version: &str) -> bool;

    /// One try: the call with `headers` to a pod of `version` (any, for `None`).
    fn send(&self, version: Option<&str>, headers: HeaderMap) -> LocalBoxFuture<'_, Answer>;
}

/// Plays the calling pod's sidecar for each outbound call.
pub trait Router: Send + Sync + fmt::Debug {
    /// Carries `call` as the sidecar would, through `transport`: the answer it would give the
    /// application.
    fn route<'a>(&'a self, call: Outbound<'a>, transport: &'a dyn Transport) -> LocalBoxFuture<'a, Answer>;
}
