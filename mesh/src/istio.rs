//! The parts of Istio's `networking.istio.io` resources this project acts on, as serde types.
//! Every other field is collected in `other`, so that loading can refuse it by name (with its
//! file and place) instead of dropping it silently.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Fields this project does not act on, by name.
pub type Other = BTreeMap<String, Value>;

/// `metadata`.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// The resource's name.
    pub name: String,
    /// Its namespace, if the file says.
    pub namespace: Option<String>,
    /// Labels, annotations and the rest: not acted on, and harmless.
    #[serde(flatten)]
    pub rest: Other,
}

/// A `VirtualService`.
#[derive(Debug, Clone, Deserialize)]
pub struct VirtualService {
    /// The resource's metadata.
    pub metadata: Metadata,
    /// The spec.
    pub spec: VirtualServiceSpec,
}

/// `VirtualService.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualServiceSpec {
    /// Destination hosts the rules apply to.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Gateways (and `mesh`) the rules apply at; none means the mesh only.
    #[serde(default)]
    pub gateways: Vec<String>,
    /// HTTP rules, tried in order.
    #[serde(default)]
    pub http: Vec<HttpRoute>,
    /// Everything else (`tcp`, `tls`, `exportTo`).
    #[serde(flatten)]
    pub other: Other,
}

/// One HTTP rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    /// Its name, if any.
    pub name: Option<String>,
    /// Conditions, any of which selects the rule; none selects every request.
    #[serde(default, rename = "match")]
    pub matches: Vec<MatchRequest>,
    /// Weighted destinations.
    #[serde(default)]
    pub route: Vec<RouteDestination>,
    /// Fault injection.
    pub fault: Option<Fault>,
    /// Deadline of a routed request, such as `0.5s`.
    pub timeout: Option<String>,
    /// Retries (without them, Istio's default: 2 retries on connection failures).
    pub retries: Option<Retries>,
    /// Everything else (`rewrite`, `mirror`, `headers`, `corsPolicy`, ...).
    #[serde(flatten)]
    pub other: Other,
}

/// Conditions that must all hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchRequest {
    /// Its name, if any.
    pub name: Option<String>,
    /// Header conditions, by lower-case header name.
    #[serde(default)]
    pub headers: BTreeMap<String, StringMatch>,
    /// Headers that must not match.
    #[serde(default)]
    pub without_headers: BTreeMap<String, StringMatch>,
    /// Path condition.
    pub uri: Option<StringMatch>,
    /// Method condition.
    pub method: Option<StringMatch>,
    /// Everything else (`queryParams`, `sourceLabels`, `port`, ...).
    #[serde(flatten)]
    pub other: Other,
}

/// `exact`, `prefix` or `regex` (RE2, full match); none of them means "present".
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StringMatch {
    /// The whole value.
    pub exact: Option<String>,
    /// The start of the value.
    pub prefix: Option<String>,
    /// A regular expression the whole value matches.
    pub regex: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub other: Other,
}

/// A destination and its share.
#[derive(Debug, Clone, Deserialize)]
pub struct RouteDestination {
    /// Where.
    pub destination: Destination,
    /// Share of requests (relative).
    pub weight: Option<i64>,
    /// Everything else (`headers`).
    #[serde(flatten)]
    pub other: Other,
}

/// A service and subset.
#[derive(Debug, Clone, Deserialize)]
pub struct Destination {
    /// The service.
    pub host: String,
    /// The subset (a DestinationRule's).
    pub subset: Option<String>,
    /// The port (every Bookinfo service has one, 9080).
    pub port: Option<PortSelector>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// `port: {number: 9080}`.
#[derive(Debug, Clone, Deserialize)]
pub struct PortSelector {
    /// The port number.
    pub number: u32,
}

/// Fault injection.
#[derive(Debug, Clone, Deserialize)]
pub struct Fault {
    /// Delay before forwarding.
    pub delay: Option<Delay>,
    /// Answer an error instead of forwarding.
    pub abort: Option<Abort>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// A delay fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delay {
    /// How long.
    pub fixed_delay: Option<String>,
    /// Share of requests, 0-100.
    pub percentage: Option<Percent>,
    /// Share of requests, 0-100 (the older integer field).
    pub percent: Option<i64>,
    /// Everything else (`exponentialDelay`).
    #[serde(flatten)]
    pub other: Other,
}

/// An abort fault.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Abort {
    /// The status to answer.
    pub http_status: Option<i64>,
    /// Share of requests, 0-100.
    pub percentage: Option<Percent>,
    /// Everything else (`grpcStatus`, `http2Error`).
    #[serde(flatten)]
    pub other: Other,
}

/// `percentage: {value: 50.0}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Percent {
    /// 0 to 100.
    pub value: f64,
}

/// `retries`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retries {
    /// Retries at most (0 turns retrying off).
    pub attempts: Option<i64>,
    /// Deadline of each try.
    pub per_try_timeout: Option<String>,
    /// Envoy's retry conditions, comma-separated (status codes allowed).
    pub retry_on: Option<String>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// A `DestinationRule`.
#[derive(Debug, Clone, Deserialize)]
pub struct DestinationRule {
    /// The resource's metadata.
    pub metadata: Metadata,
    /// The spec.
    pub spec: DestinationRuleSpec,
}

/// `DestinationRule.spec`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRuleSpec {
    /// The service.
    pub host: String,
    /// Named subsets.
    #[serde(default)]
    pub subsets: Vec<Subset>,
    /// Load balancing (the rest is refused).
    pub traffic_policy: Option<TrafficPolicy>,
    /// Everything else (`exportTo`, ...).
    #[serde(flatten)]
    pub other: Other,
}

/// `trafficPolicy`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicy {
    /// `loadBalancer: {simple: RANDOM}`.
    pub load_balancer: Option<LoadBalancer>,
    /// Everything else (`tls`, `connectionPool`, `outlierDetection`, ...).
    #[serde(flatten)]
    pub other: Other,
}

/// `loadBalancer`.
#[derive(Debug, Clone, Deserialize)]
pub struct LoadBalancer {
    /// `ROUND_ROBIN`, `RANDOM`, `LEAST_REQUEST` (`LEAST_CONN`).
    pub simple: Option<String>,
    /// Everything else (`consistentHash`, ...).
    #[serde(flatten)]
    pub other: Other,
}

/// A named subset of a service's pods.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    /// Its name, as routes refer to it.
    pub name: String,
    /// Pod labels, `version` among them.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Load balancing of this subset.
    pub traffic_policy: Option<TrafficPolicy>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// A `Gateway`: the ingress gateway's servers.
#[derive(Debug, Clone, Deserialize)]
pub struct Gateway {
    /// The resource's metadata.
    pub metadata: Metadata,
    /// The spec.
    pub spec: GatewaySpec,
}

/// `Gateway.spec`.
#[derive(Debug, Clone, Deserialize)]
pub struct GatewaySpec {
    /// Which gateway pods (the ingress gateway, `istio: ingressgateway`).
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// Its listeners.
    #[serde(default)]
    pub servers: Vec<Server>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// One server of a gateway.
#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    /// Its port.
    pub port: Option<GatewayPort>,
    /// The hosts it serves (`*` for any).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Everything else (`tls`, ...).
    #[serde(flatten)]
    pub other: Other,
}

/// `port: {number: 8080, name: http, protocol: HTTP}`.
#[derive(Debug, Clone, Deserialize)]
pub struct GatewayPort {
    /// The port of the gateway's pod.
    pub number: Option<u32>,
    /// Its name.
    pub name: Option<String>,
    /// `HTTP` (the only one taken here).
    pub protocol: Option<String>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}
