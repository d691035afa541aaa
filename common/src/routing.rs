//! How a service's outbound calls are routed where no sidecar routes them (the local stack
//! without `--mesh`): the [`Router`] a service is handed decides each call. The Istio rules
//! themselves live in the `bookinfo-mesh` crate; here is only what the client needs to obey a
//! decision, so that neither this crate nor the services know where decisions come from.

use std::fmt;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;

/// `BOOKINFO_ROUTES`: comma-separated Istio YAML files applied to outbound calls.
pub const BOOKINFO_ROUTES: &str = "BOOKINFO_ROUTES";

/// Decides where each outbound call goes and what happens to it on the way.
pub trait Router: Send + Sync + fmt::Debug {
    /// The decision for one call to `service` (`reviews`, ...) with `method`, `path` and the
    /// headers it carries.
    fn route(&self, service: &str, method: &str, path: &str, headers: &HeaderMap) -> Decision;
}

/// Where one call goes, and what happens to it on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The `version` label of the pods to call; `None` for any.
    pub version: Option<String>,
    /// Wait this long before sending (fault injection).
    pub delay: Option<Duration>,
    /// Answer this status without sending (fault injection).
    pub abort: Option<StatusCode>,
    /// The route's deadline: past it the call fails with 504, as Envoy answers.
    pub timeout: Option<Duration>,
    /// Answer this status without sending, as the proxy would: 404 when no rule matches, 503
    /// when the route names a subset no DestinationRule defines.
    pub refusal: Option<StatusCode>,
    /// Retries on a refused connection (and on the statuses listed).
    pub retries: Retry,
}

/// Retries of a call, as Istio's route says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retry {
    /// Retries at most (0: none).
    pub attempts: u32,
    /// Deadline of each try.
    pub per_try_timeout: Option<Duration>,
    /// Statuses that are retried too (any 5xx when `server_errors`).
    pub statuses: Vec<u16>,
    /// Any 5xx is retried.
    pub server_errors: bool,
}
