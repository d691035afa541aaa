//! Routes (`config.route.v3`): virtual hosts, what a route matches, where it sends the request,
//! its retries and its span's name.

use std::time::Duration;

use serde::Serialize;

use super::{Extension, ExtensionConfig, HttpFault, PerFilterConfig, proto};

/// `config.route.v3.RouteConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteConfiguration {
    /// Its name.
    pub name: String,
    /// Whether Envoy refuses routes to clusters it does not know (a route may name a subset no
    /// DestinationRule defines: Envoy answers 503, as in Istio).
    pub validate_clusters: bool,
    /// Whether a virtual host's domains are matched against the `Host` without its port.
    #[serde(skip_serializing_if = "proto::is_false")]
    pub ignore_port_in_host_matching: bool,
    /// The virtual hosts, tried by their domains.
    pub virtual_hosts: Vec<VirtualHost>,
}

/// `config.route.v3.VirtualHost`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualHost {
    /// Its name.
    pub name: String,
    /// The `Host`s it serves (`*` for any).
    pub domains: Vec<String>,
    /// Its routes, the first that matches wins.
    pub routes: Vec<Route>,
    /// Whether the upstream is told which attempt a request is (`x-envoy-attempt-count`).
    #[serde(skip_serializing_if = "proto::is_false")]
    pub include_request_attempt_count: bool,
}

/// `config.route.v3.Route`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// Its name, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Which requests it takes.
    #[serde(rename = "match")]
    pub matches: RouteMatch,
    /// Where it sends them.
    pub route: RouteAction,
    /// The name of its spans.
    pub decorator: Decorator,
    /// Its fault, read by the listener's fault filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typed_per_filter_config: Option<PerFilterConfig<HttpFault>>,
    /// Headers set or added to a request it takes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_add: Vec<HeaderValueOption>,
    /// Headers taken out of a request it takes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers_to_remove: Vec<String>,
}

/// `config.core.v3.HeaderValueOption`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderValueOption {
    /// The header.
    pub header: HeaderValue,
    /// `OVERWRITE_IF_EXISTS_OR_ADD` (set) or `APPEND_IF_EXISTS_OR_ADD` (add).
    pub append_action: &'static str,
}

/// `config.core.v3.HeaderValue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderValue {
    /// Its name.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// `config.route.v3.RouteMatch`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteMatch {
    /// Whether the path is matched case sensitively (Envoy's default when left out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
    /// How the path must look.
    #[serde(flatten)]
    pub path: PathMatch,
    /// Headers that must all match (the method as `:method`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatcher>,
}

/// How a route matches the path (`RouteMatch.path_specifier`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    /// Starts with it.
    Prefix(String),
    /// Equals it.
    Path(String),
    /// Matches it, as a whole.
    SafeRegex(RegexMatcher),
}

/// `type.matcher.v3.RegexMatcher`: RE2, matching the whole value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegexMatcher {
    /// The expression.
    pub regex: String,
}

/// `config.route.v3.HeaderMatcher`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderMatcher {
    /// The header.
    pub name: String,
    /// How its value must look.
    #[serde(flatten)]
    pub matcher: HeaderMatch,
    /// Whether the condition holds when the header does not match.
    #[serde(skip_serializing_if = "proto::is_false")]
    pub invert_match: bool,
    /// Whether a missing header is matched as an empty value.
    #[serde(skip_serializing_if = "proto::is_false")]
    pub treat_missing_header_as_empty: bool,
}

/// How a header matcher matches (`HeaderMatcher.header_match_specifier`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeaderMatch {
    /// The value, as a string.
    StringMatch(StringMatcher),
    /// Whether the header is there at all.
    PresentMatch(bool),
}

/// `type.matcher.v3.StringMatcher`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMatcher {
    /// Equals it.
    Exact(String),
    /// Starts with it.
    Prefix(String),
    /// Matches it, as a whole.
    SafeRegex(RegexMatcher),
}

/// `config.route.v3.RouteAction`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteAction {
    /// The cluster or clusters.
    #[serde(flatten)]
    pub cluster: ClusterSpecifier,
    /// The request's deadline (zero: none).
    #[serde(serialize_with = "proto::duration")]
    pub timeout: Duration,
    /// The stream's deadlines, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_stream_duration: Option<MaxStreamDuration>,
    /// Its retries, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
}

/// `RouteAction.MaxStreamDuration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MaxStreamDuration {
    /// How long a stream may last (zero: no limit).
    #[serde(serialize_with = "proto::duration")]
    pub max_stream_duration: Duration,
    /// The most a `grpc-timeout` header may ask for (zero: as much as it asks).
    #[serde(serialize_with = "proto::duration")]
    pub grpc_timeout_header_max: Duration,
}

/// Where a route sends requests (`RouteAction.cluster_specifier`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterSpecifier {
    /// To one cluster.
    Cluster(String),
    /// Across clusters, by weight.
    WeightedClusters(WeightedClusters),
}

/// `config.route.v3.WeightedCluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WeightedClusters {
    /// The clusters and their weights.
    pub clusters: Vec<ClusterWeight>,
}

/// `WeightedCluster.ClusterWeight`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterWeight {
    /// The cluster.
    pub name: String,
    /// Its weight.
    pub weight: u32,
}

/// `config.route.v3.RetryPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryPolicy {
    /// Envoy's retry conditions, separated by commas.
    pub retry_on: String,
    /// Retries at most.
    pub num_retries: u32,
    /// Which hosts a retry avoids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retry_host_predicate: Vec<Extension<PreviousHostsPredicate>>,
    /// How many times a host is picked again for a retry before it is taken anyway (zero:
    /// Envoy's default).
    #[serde(skip_serializing_if = "proto::is_zero", serialize_with = "proto::int64")]
    pub host_selection_retry_max_attempts: i64,
    /// The statuses retried on under `retriable-status-codes`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retriable_status_codes: Vec<u16>,
    /// The deadline of each try.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "proto::optional_duration")]
    pub per_try_timeout: Option<Duration>,
}

/// The retry host predicate that avoids the hosts already tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PreviousHostsPredicate;

impl ExtensionConfig for PreviousHostsPredicate {
    const NAME: &'static str = "envoy.retry_host_predicates.previous_hosts";
    const TYPE: &'static str = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";
}

/// `config.route.v3.Decorator`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decorator {
    /// The operation name of the route's spans.
    pub operation: String,
}
