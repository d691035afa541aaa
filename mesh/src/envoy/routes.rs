//! VirtualService rules as Envoy routes, the way istiod translates them: header, path and
//! method matches (regexes as RE2 full matches), weighted clusters per subset, faults on the
//! route (the listener's fault filter reads them), timeouts and retries, decorators named as
//! Istio names them.

use std::time::Duration;

use super::api::{
    ClusterSpecifier, ClusterWeight, Decorator, DenominatorType, Extension, FaultAbort, FaultDelay,
    FractionalPercent, HeaderMatch, HeaderMatcher, HttpFault, MaxStreamDuration, PathMatch, PerFilterConfig,
    PreviousHostsPredicate, RegexMatcher, RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch,
    StringMatcher, VirtualHost, WeightedClusters,
};
use super::{INBOUND_CLUSTER, SERVICE_PORT, fqdn, host_of, outbound_cluster};
use crate::model::{Condition, Matcher, Retries, Routing, Rule};

/// Istio's default retry conditions (route/retry/retry.go, `defaultRetryOn`).
const DEFAULT_RETRY_ON: &str = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// Istio's retry condition on inbound routes (route/retry/retry.go, `defaultInboundRetryOn`):
/// a request reset before it reached the application was never processed, so it is safe to
/// send again.
const INBOUND_RETRY_ON: &str = "reset-before-request";

/// The route configuration of a sidecar's inbound listener: every path to its application.
pub(super) fn inbound(app: &str, namespace: &str) -> RouteConfiguration {
    // route/route.go, BuildDefaultHTTPInboundRoute: no timeout, no stream limit, the default
    // inbound retries.
    let mut route = every_path(INBOUND_CLUSTER.to_owned(), app, namespace, Some(inbound_retry()));
    route.route.max_stream_duration = Some(MaxStreamDuration {
        max_stream_duration: Duration::ZERO,
        grpc_timeout_header_max: Duration::ZERO,
    });
    RouteConfiguration {
        name: INBOUND_CLUSTER.to_owned(),
        validate_clusters: false,
        ignore_port_in_host_matching: false,
        virtual_hosts: vec![VirtualHost {
            name: "inbound|http|9080".to_owned(),
            domains: vec!["*".to_owned()],
            routes: vec![route],
            include_request_attempt_count: false,
        }],
    }
}

/// The route configuration of a sidecar's listener for `service` in `namespace`.
pub(super) fn outbound(routing: &Routing, service: &str, namespace: &str) -> RouteConfiguration {
    let routes: Vec<Route> = match routing.services.get(service) {
        Some(rules) => rules.iter().flat_map(|rule| render(rule, namespace)).collect(),
        None => vec![default_route(service, namespace)],
    };
    RouteConfiguration {
        name: format!("{SERVICE_PORT}"),
        validate_clusters: false,
        ignore_port_in_host_matching: false,
        virtual_hosts: vec![VirtualHost {
            name: format!("{}:{SERVICE_PORT}", fqdn(service, namespace)),
            domains: vec!["*".to_owned()],
            routes,
            include_request_attempt_count: true,
        }],
    }
}

/// The gateway's routes to `namespace`: the routing files' gateway rules (by their hosts), or
/// every path to productpage.
pub(super) fn gateway(routing: &Routing, namespace: &str) -> RouteConfiguration {
    let virtual_hosts = if routing.gateway.is_empty() {
        vec![gateway_host("*", vec![default_route("productpage", namespace)])]
    } else {
        let mut hosts: Vec<&String> = routing.gateway.iter().flat_map(|g| &g.hosts).collect();
        hosts.dedup();
        hosts
            .into_iter()
            .map(|host| {
                let routes = routing
                    .gateway
                    .iter()
                    .filter(|g| g.hosts.contains(host))
                    .flat_map(|g| render(&g.rule, namespace))
                    .collect();
                gateway_host(host, routes)
            })
            .collect()
    };
    gateway_routes(virtual_hosts)
}

/// The gateway's routes by host: each namespace's productpage for its own host.
pub(super) fn gateway_by_host<'a>(namespaces: impl Iterator<Item = &'a str>) -> RouteConfiguration {
    gateway_routes(
        namespaces.map(|ns| gateway_host(&host_of(ns), vec![default_route("productpage", ns)])).collect(),
    )
}

fn gateway_routes(virtual_hosts: Vec<VirtualHost>) -> RouteConfiguration {
    RouteConfiguration {
        name: "http.8080".to_owned(),
        validate_clusters: false,
        ignore_port_in_host_matching: false,
        virtual_hosts,
    }
}

/// The gateway's virtual host for `host` (`*` for any), on any port.
fn gateway_host(host: &str, routes: Vec<Route>) -> VirtualHost {
    let domains =
        if host == "*" { vec![host.to_owned()] } else { vec![host.to_owned(), format!("{host}:*")] };
    VirtualHost { name: format!("{host}:80"), domains, routes, include_request_attempt_count: false }
}

/// Istio's route where no VirtualService says otherwise: every path, no timeout, the default
/// retries.
fn default_route(service: &str, namespace: &str) -> Route {
    every_path(outbound_cluster(service, None, namespace), service, namespace, Some(default_retry()))
}

/// Every path to `cluster`, no timeout, spans named after `service`.
fn every_path(cluster: String, service: &str, namespace: &str, retry_policy: Option<RetryPolicy>) -> Route {
    Route {
        name: Some("default".to_owned()),
        matches: RouteMatch {
            case_sensitive: None,
            path: PathMatch::Prefix("/".to_owned()),
            headers: Vec::new(),
        },
        route: RouteAction {
            cluster: ClusterSpecifier::Cluster(cluster),
            timeout: Duration::ZERO,
            max_stream_duration: None,
            retry_policy,
        },
        decorator: Decorator { operation: format!("{}:{SERVICE_PORT}/*", fqdn(service, namespace)) },
        typed_per_filter_config: None,
    }
}

/// route/retry/retry.go, DefaultPolicy.
fn default_retry() -> RetryPolicy {
    RetryPolicy {
        retry_on: DEFAULT_RETRY_ON.to_owned(),
        num_retries: 2,
        retry_host_predicate: vec![Extension(PreviousHostsPredicate)],
        host_selection_retry_max_attempts: 5,
        retriable_status_codes: Vec::new(),
        per_try_timeout: None,
    }
}

/// route/retry/retry.go, ConvertInboundPolicy of no policy: one local cluster, so no host
/// predicate.
fn inbound_retry() -> RetryPolicy {
    RetryPolicy {
        retry_on: INBOUND_RETRY_ON.to_owned(),
        num_retries: 2,
        retry_host_predicate: Vec::new(),
        host_selection_retry_max_attempts: 0,
        retriable_status_codes: Vec::new(),
        per_try_timeout: None,
    }
}

/// One rule as routes: one per match (Istio's translation), or one matching everything.
fn render(rule: &Rule, namespace: &str) -> Vec<Route> {
    if rule.matches.is_empty() {
        return vec![route(rule, rule.name.clone(), &[], namespace)];
    }
    rule.matches
        .iter()
        .map(|m| {
            let name = match (&rule.name, &m.name) {
                (Some(rule), Some(m)) => Some(format!("{rule}.{m}")),
                (name, _) => name.clone(),
            };
            route(rule, name, &m.conditions, namespace)
        })
        .collect()
}

fn route(rule: &Rule, name: Option<String>, conditions: &[Condition], namespace: &str) -> Route {
    let mut path_match = PathMatch::Prefix("/".to_owned());
    let mut headers = Vec::new();
    let mut path = "/*".to_owned();
    for condition in conditions {
        match condition {
            Condition::Header { name, matcher, negate } => headers.push(HeaderMatcher {
                invert_match: *negate,
                treat_missing_header_as_empty: *negate && !matches!(matcher, Matcher::Present),
                ..header_matcher(name, matcher)
            }),
            Condition::Method(matcher) => headers.push(header_matcher(":method", matcher)),
            Condition::Uri(matcher) => match matcher {
                Matcher::Exact(exact) => {
                    path_match = PathMatch::Path(exact.clone());
                    path.clone_from(exact);
                }
                Matcher::Prefix(prefix) => {
                    path_match = PathMatch::Prefix(prefix.clone());
                    path = format!("{prefix}*");
                }
                Matcher::Regex { source, .. } => {
                    path_match = PathMatch::SafeRegex(RegexMatcher { regex: source.clone() });
                    path.clone_from(source);
                }
                Matcher::Present => {}
            },
        }
    }
    headers.sort_by(|a, b| a.name.cmp(&b.name));

    let mut clusters: Vec<ClusterWeight> = rule
        .destinations
        .iter()
        // Istio leaves out the 0-weighted destinations of a weighted route.
        .filter(|d| rule.destinations.len() == 1 || d.weight > 0)
        .map(|d| ClusterWeight {
            name: outbound_cluster(&d.host, d.subset.as_deref(), namespace),
            weight: d.weight,
        })
        .collect();
    let (cluster, operation) = if clusters.len() == 1 {
        let cluster = clusters.remove(0).name;
        let host = cluster.rsplit('|').next().unwrap_or_default();
        let operation = format!("{host}:{SERVICE_PORT}{path}");
        (ClusterSpecifier::Cluster(cluster), operation)
    } else {
        // Where several clusters share a route, Istio names it after the VirtualService.
        let operation = format!("{}:{SERVICE_PORT}{path}", rule.virtual_service);
        (ClusterSpecifier::WeightedClusters(WeightedClusters { clusters }), operation)
    };
    Route {
        name,
        matches: RouteMatch { case_sensitive: Some(true), path: path_match, headers },
        route: RouteAction {
            cluster,
            timeout: rule.timeout.unwrap_or_default(),
            max_stream_duration: None,
            retry_policy: retry_policy(&rule.retries),
        },
        decorator: Decorator { operation },
        typed_per_filter_config: fault(rule).map(PerFilterConfig),
    }
}

fn retry_policy(retries: &Retries) -> Option<RetryPolicy> {
    match retries {
        Retries::Default => Some(default_retry()),
        Retries::Off => None,
        Retries::Custom { attempts, per_try_timeout, retry_on } => {
            let tokens: Vec<&str> = retry_on.as_deref().unwrap_or(DEFAULT_RETRY_ON).split(',').collect();
            let statuses: Vec<u16> = tokens.iter().filter_map(|t| t.parse().ok()).collect();
            let mut on: Vec<&str> = tokens.iter().copied().filter(|t| t.parse::<u16>().is_err()).collect();
            if !statuses.is_empty() && !on.contains(&"retriable-status-codes") {
                on.push("retriable-status-codes");
            }
            Some(RetryPolicy {
                retry_on: on.join(","),
                num_retries: *attempts,
                retriable_status_codes: statuses,
                per_try_timeout: *per_try_timeout,
                ..default_retry()
            })
        }
    }
}

fn header_matcher(name: &str, matcher: &Matcher) -> HeaderMatcher {
    let matcher = match matcher {
        Matcher::Exact(exact) => HeaderMatch::StringMatch(StringMatcher::Exact(exact.clone())),
        Matcher::Prefix(prefix) => HeaderMatch::StringMatch(StringMatcher::Prefix(prefix.clone())),
        Matcher::Regex { source, .. } => {
            HeaderMatch::StringMatch(StringMatcher::SafeRegex(RegexMatcher { regex: source.clone() }))
        }
        Matcher::Present => HeaderMatch::PresentMatch(true),
    };
    HeaderMatcher {
        name: name.to_owned(),
        matcher,
        invert_match: false,
        treat_missing_header_as_empty: false,
    }
}

/// A route's fault, as Istio writes it: percentages in millionths.
fn fault(rule: &Rule) -> Option<HttpFault> {
    let percentage = |percent: f64| FractionalPercent {
        numerator: (percent * 10_000.0).round() as u64,
        denominator: DenominatorType::Million,
    };
    if rule.delay.is_none() && rule.abort.is_none() {
        return None;
    }
    Some(HttpFault {
        delay: rule
            .delay
            .map(|(delay, percent)| FaultDelay { fixed_delay: delay, percentage: percentage(percent) }),
        abort: rule
            .abort
            .map(|(status, percent)| FaultAbort { http_status: status, percentage: percentage(percent) }),
    })
}
