//! The parts of the Kubernetes Gateway API (`gateway.networking.k8s.io`) this project acts on,
//! as serde types: `HTTPRoute`, and `Gateway` as far as its name and listeners. As in [`crate::istio`],
//! every other field is collected in `other`, so that loading refuses it by name.

use serde::Deserialize;
use serde_json::Value;

use crate::istio::{Metadata, Other};

/// An `HTTPRoute`.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpRoute {
    /// The resource's metadata.
    pub metadata: Metadata,
    /// The spec.
    pub spec: HttpRouteSpec,
}

/// `HTTPRoute.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// What the route is attached to: a Service (GAMMA, the mesh) or a Gateway.
    #[serde(default)]
    pub parent_refs: Vec<ParentRef>,
    /// Hosts served, for a route attached to a Gateway.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<RouteRule>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// One of `parentRefs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRef {
    /// `""` (core, for a Service) or `gateway.networking.k8s.io`.
    pub group: Option<String>,
    /// `Service` or `Gateway` (the default).
    pub kind: Option<String>,
    /// The parent's name.
    pub name: String,
    /// The Service's port.
    pub port: Option<i64>,
    /// Everything else (`namespace`, `sectionName`).
    #[serde(flatten)]
    pub other: Other,
}

/// One of `rules`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    /// Its name, if any.
    pub name: Option<String>,
    /// Conditions, any of which selects the rule; none selects every request.
    #[serde(default)]
    pub matches: Vec<RouteMatch>,
    /// Filters (`RequestHeaderModifier` is taken).
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Weighted backends.
    #[serde(default)]
    pub backend_refs: Vec<BackendRef>,
    /// `request` and `backendRequest` deadlines.
    pub timeouts: Option<Timeouts>,
    /// Everything else (`retry`, `sessionPersistence`).
    #[serde(flatten)]
    pub other: Other,
}

/// One of `matches`: conditions that must all hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteMatch {
    /// The path condition.
    pub path: Option<PathMatch>,
    /// Header conditions.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    /// The method.
    pub method: Option<String>,
    /// Everything else (`queryParams`).
    #[serde(flatten)]
    pub other: Other,
}

/// `path: {type: PathPrefix, value: /}`.
#[derive(Debug, Clone, Deserialize)]
pub struct PathMatch {
    /// `Exact`, `PathPrefix` (the default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The path, prefix or expression.
    pub value: Option<String>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// `headers: [{type: Exact, name: ..., value: ...}]`.
#[derive(Debug, Clone, Deserialize)]
pub struct HeaderMatch {
    /// `Exact` (the default) or `RegularExpression`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The header (case does not matter).
    pub name: String,
    /// The value or expression.
    pub value: String,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// One of `backendRefs`.
#[derive(Debug, Clone, Deserialize)]
pub struct BackendRef {
    /// `""` (core), the default.
    pub group: Option<String>,
    /// `Service`, the default.
    pub kind: Option<String>,
    /// The Service: `reviews`, or a version's `reviews-v2`.
    pub name: String,
    /// Its port.
    pub port: Option<i64>,
    /// Relative share of requests (1 when unset).
    pub weight: Option<i64>,
    /// Everything else (`namespace`, `filters`).
    #[serde(flatten)]
    pub other: Other,
}

/// `timeouts`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// The deadline of a request, retries included.
    pub request: Option<String>,
    /// Everything else (`backendRequest`).
    #[serde(flatten)]
    pub other: Other,
}

/// A `Gateway` of the Gateway API: only its name and class are taken (the local gateway has
/// one HTTP listener whatever it lists).
#[derive(Debug, Clone, Deserialize)]
pub struct Gateway {
    /// The resource's metadata.
    pub metadata: Metadata,
    /// The spec.
    pub spec: GatewaySpec,
}

/// `Gateway.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// `istio`.
    pub gateway_class_name: Option<String>,
    /// Its listeners.
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Everything else (`addresses`, `infrastructure`).
    #[serde(flatten)]
    pub other: Other,
}

/// One listener of a Gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Its name.
    pub name: Option<String>,
    /// Its port.
    pub port: Option<i64>,
    /// `HTTP` (the only one taken).
    pub protocol: Option<String>,
    /// Which routes may attach (one namespace locally, so any value means the same).
    pub allowed_routes: Option<Value>,
    /// Everything else (`hostname`, `tls`).
    #[serde(flatten)]
    pub other: Other,
}

/// One of a rule's `filters`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    /// `RequestHeaderModifier` (the only one taken), `RequestRedirect`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The header changes of a `RequestHeaderModifier`.
    pub request_header_modifier: Option<HeaderModifier>,
    /// Everything else (the other filters' settings).
    #[serde(flatten)]
    pub other: Other,
}

/// `requestHeaderModifier`.
#[derive(Debug, Clone, Deserialize)]
pub struct HeaderModifier {
    /// Headers given a value, replacing any.
    #[serde(default)]
    pub set: Vec<HttpHeader>,
    /// Headers given a value besides any.
    #[serde(default)]
    pub add: Vec<HttpHeader>,
    /// Headers taken out.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// `{name: ..., value: ...}`.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpHeader {
    /// The header.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}
