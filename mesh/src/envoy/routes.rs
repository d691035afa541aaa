//! VirtualService rules as Envoy routes, the way istiod translates them: header, path and
//! method matches (regexes as RE2 full matches), weighted clusters per subset, faults on the
//! route (the listener's fault filter reads them), timeouts and retries, decorators named as
//! Istio names them.
//!
//! The comments name the function of istiod (`pilot/pkg/networking/core/`) each rule follows.

use std::time::Duration;

use actix_web::http::header::{self as http, HeaderName};

use super::api::{
    ClusterSpecifier, ClusterWeight, Decorator, DenominatorType, Extension, FaultAbort, FaultDelay,
    FractionalPercent, HeaderMatch, HeaderMatcher, HeaderValue, HeaderValueOption, HttpFault,
    MaxStreamDuration, PathMatch, PerFilterConfig, PreviousHostsPredicate, RegexMatcher, RetryPolicy, Route,
    RouteAction, RouteConfiguration, RouteMatch, StringMatcher, VirtualHost, WeightedClusters,
};
use super::{INBOUND_CLUSTER, SERVICE_PORT, fqdn, host_of, outbound_cluster, waypoint_cluster};
use crate::model::{Condition, GATEWAY_PORT, Match, Matcher, Retries, Routing, Rule};

/// Istio's default retry conditions (route/retry/retry.go, `defaultRetryOn`).
const DEFAULT_RETRY_ON: &str = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// Istio's retry condition on inbound routes (route/retry/retry.go, `defaultInboundRetryOn`):
/// a request reset before it reached the application was never processed, so it is safe to
/// send again.
const INBOUND_RETRY_ON: &str = "reset-before-request";

/// How a destination's cluster is named: `fn(service, subset, namespace)`.
type ClusterOf = fn(&str, Option<&str>, &str) -> String;

/// The route configuration of a sidecar's inbound listener: every path to its application.
pub(super) fn inbound(app: &str, namespace: &str) -> RouteConfiguration {
    inbound_routes(INBOUND_CLUSTER, vec![default_inbound_route(INBOUND_CLUSTER, app, namespace)])
}

/// The route configuration of a waypoint's chain for `service` in `namespace`
/// (listener_waypoint.go, buildWaypointInboundHTTPRouteConfig): the rules bound to the
/// service, its subsets as the waypoint names them; without any, every path to the whole
/// service by Istio's default *outbound* route (httproute.go, buildSidecarInboundHTTPRouteConfig:
/// "the inbound route of a Waypoint is more like the outbound route": the waypoint picks among
/// the service's pods, so it retries on another one). istiod also caps direct response bodies
/// there; no route here answers directly.
pub(super) fn waypoint(routing: &Routing, service: &str, namespace: &str) -> RouteConfiguration {
    let name = waypoint_cluster(service, None, namespace);
    let routes = match routing.services.get(service) {
        Some(rules) => translate_rules(rules, namespace, SERVICE_PORT, waypoint_cluster),
        None => vec![every_path(name.clone(), trace_operation(service, namespace), Some(default_retry()))],
    };
    inbound_routes(&name, routes)
}

/// route/route.go, BuildDefaultHTTPInboundRoute: every path to `cluster`, named after the
/// service; no timeout, no stream limit, the default inbound retries.
fn default_inbound_route(cluster: &str, service: &str, namespace: &str) -> Route {
    let mut route =
        every_path(cluster.to_owned(), trace_operation(service, namespace), Some(inbound_retry()));
    route.route.max_stream_duration = Some(MaxStreamDuration {
        max_stream_duration: Duration::ZERO,
        grpc_timeout_header_max: Duration::ZERO,
    });
    route
}

/// An inbound route configuration, `name`d: one virtual host, `inbound|http|9080`, any host.
fn inbound_routes(name: &str, routes: Vec<Route>) -> RouteConfiguration {
    RouteConfiguration {
        name: name.to_owned(),
        validate_clusters: false,
        ignore_port_in_host_matching: false,
        virtual_hosts: vec![VirtualHost {
            name: format!("inbound|http|{SERVICE_PORT}"),
            domains: vec!["*".to_owned()],
            routes,
            include_request_attempt_count: false,
        }],
    }
}

/// The route configuration of a sidecar's listener for `service` in `namespace`.
pub(super) fn outbound(routing: &Routing, service: &str, namespace: &str) -> RouteConfiguration {
    let routes: Vec<Route> = match routing.services.get(service) {
        Some(rules) => translate_rules(rules, namespace, SERVICE_PORT, outbound_cluster),
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
            // httproute.go, buildSidecarOutboundHTTPRouteConfig (proxy headers' default).
            include_request_attempt_count: true,
        }],
    }
}

/// The gateway's routes to `namespace`: the routing files' gateway rules (by their hosts), or
/// every path to productpage on the sample Gateway's port.
pub(super) fn gateway(routing: &Routing, namespace: &str) -> RouteConfiguration {
    let Some(first) = routing.gateway.first() else {
        let every_path = vec![default_route("productpage", namespace)];
        return gateway_routes(GATEWAY_PORT, vec![gateway_host("*", GATEWAY_PORT, every_path)]);
    };
    // gateway.go, buildGatewayHTTPRouteConfig: one virtual host per host (in lower case), named
    // after the port of the server that first serves it, holding the routes of every
    // VirtualService for that host.
    let mut hosts: Vec<VirtualHost> = Vec::new();
    for rules in routing.gateway.chunk_by(|a, b| a.rule.virtual_service == b.rule.virtual_service) {
        let Some(bound) = rules.first() else { continue };
        let routes = translate_rules(rules.iter().map(|g| &g.rule), namespace, bound.port, outbound_cluster);
        let mut served: Vec<String> = bound.hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
        served.sort();
        served.dedup();
        for host in served {
            match hosts.iter_mut().find(|v| v.domains == [host.as_str()]) {
                Some(existing) => existing.routes.extend(routes.iter().cloned()),
                None => hosts.push(gateway_host(&host, bound.port, routes.clone())),
            }
        }
    }
    for host in &mut hosts {
        catch_alls_last(&mut host.routes);
    }
    gateway_routes(first.port, hosts)
}

/// The gateway's routes by host: each namespace's productpage for its own host.
pub(super) fn gateway_by_host<'a>(namespaces: impl Iterator<Item = &'a str>) -> RouteConfiguration {
    let hosts = namespaces
        .map(|ns| gateway_host(&host_of(ns), GATEWAY_PORT, vec![default_route("productpage", ns)]))
        .collect();
    gateway_routes(GATEWAY_PORT, hosts)
}

/// gateway.go, buildGatewayHTTPRouteConfig: the route configuration of the gateway's server on
/// `port` (`http.8080`), its virtual hosts sorted by name (util.go, SortVirtualHosts), any port
/// of a `Host` accepted.
fn gateway_routes(port: u16, mut virtual_hosts: Vec<VirtualHost>) -> RouteConfiguration {
    virtual_hosts.sort_by(|a, b| a.name.cmp(&b.name));
    RouteConfiguration {
        name: format!("http.{port}"),
        validate_clusters: false,
        ignore_port_in_host_matching: true,
        virtual_hosts,
    }
}

/// gateway.go, buildGatewayHTTPRouteConfig: the virtual host of `host` (`*` for any) on the
/// server's `port`, `<host>:<port>`, telling the upstream which attempt a request is.
fn gateway_host(host: &str, port: u16, routes: Vec<Route>) -> VirtualHost {
    VirtualHost {
        name: format!("{host}:{port}"),
        domains: vec![host.to_owned()],
        routes,
        include_request_attempt_count: true,
    }
}

/// route/route.go, SortVHostRoutes: a gateway's catch-all routes go after the others, in their
/// order, so that one VirtualService's catch-all does not hide another's paths.
fn catch_alls_last(routes: &mut [Route]) {
    routes.sort_by_key(is_catch_all);
}

/// route/route.go, IsCatchAllRoute: every path (prefix `/` or regex `.*`) and no header.
fn is_catch_all(route: &Route) -> bool {
    let every_path = match &route.matches.path {
        PathMatch::Prefix(prefix) => prefix == "/",
        PathMatch::SafeRegex(regex) => regex.regex == ".*",
        PathMatch::Path(_) => false,
    };
    every_path && route.matches.headers.is_empty()
}

/// telemetry.go, TraceOperation: the spans of a service's default route,
/// `reviews.default.svc.cluster.local:9080/*`.
fn trace_operation(service: &str, namespace: &str) -> String {
    format!("{}:{SERVICE_PORT}/*", fqdn(service, namespace))
}

/// route/route.go, BuildDefaultHTTPOutboundRoute: Istio's route where no VirtualService says
/// otherwise: every path, no timeout, the default retries.
fn default_route(service: &str, namespace: &str) -> Route {
    every_path(
        outbound_cluster(service, None, namespace),
        trace_operation(service, namespace),
        Some(default_retry()),
    )
}

/// route/route.go, buildDefaultHTTPRoute: every path to `cluster`, named `default`, no timeout.
fn every_path(cluster: String, operation: String, retry_policy: Option<RetryPolicy>) -> Route {
    Route {
        name: Some("default".to_owned()),
        matches: every_request(),
        route: RouteAction {
            cluster: ClusterSpecifier::Cluster(cluster),
            timeout: Duration::ZERO,
            max_stream_duration: None,
            retry_policy,
        },
        decorator: Decorator { operation },
        typed_per_filter_config: None,
        request_headers_to_add: Vec::new(),
        request_headers_to_remove: Vec::new(),
    }
}

/// route/route.go, TranslateRouteMatch of no match: every path, case left to Envoy's default.
fn every_request() -> RouteMatch {
    RouteMatch { case_sensitive: None, path: PathMatch::Prefix("/".to_owned()), headers: Vec::new() }
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

/// route/route.go, BuildHTTPRoutesForVirtualService: each rule as routes, one per match (or
/// one matching everything), heard on `listen_port`. A VirtualService's rules after a route
/// that matches every request are never reached and are left out.
fn translate_rules<'a>(
    rules: impl IntoIterator<Item = &'a Rule>,
    namespace: &str,
    listen_port: u16,
    cluster_of: ClusterOf,
) -> Vec<Route> {
    let mut routes = Vec::new();
    let mut caught: Vec<&str> = Vec::new();
    for rule in rules {
        if caught.contains(&rule.virtual_service.as_str()) {
            continue;
        }
        if rule.matches.is_empty() {
            routes.push(translate(rule, None, namespace, listen_port, cluster_of));
            caught.push(&rule.virtual_service);
            continue;
        }
        for m in &rule.matches {
            let route = translate(rule, Some(m), namespace, listen_port, cluster_of);
            let catch_all = is_catch_all(&route);
            routes.push(route);
            if catch_all {
                caught.push(&rule.virtual_service);
                break;
            }
        }
    }
    routes
}

/// route/route.go, TranslateRoute: one match of a rule (or none) as a route.
fn translate(
    rule: &Rule,
    m: Option<&Match>,
    namespace: &str,
    listen_port: u16,
    cluster_of: ClusterOf,
) -> Route {
    // The rule's name, then the match's after a dot (`.exact` for an unnamed rule).
    let name = match m.and_then(|m| m.name.as_deref()) {
        Some(match_name) => Some(format!("{}.{match_name}", rule.name.as_deref().unwrap_or_default())),
        None => rule.name.clone().filter(|name| !name.is_empty()),
    };
    let matches = m.map_or_else(every_request, |m| route_match(&m.conditions));
    let cluster = destination(rule, namespace, cluster_of);
    let operation = operation(&matches, &cluster, &rule.virtual_service, listen_port);
    Route {
        name,
        matches,
        route: RouteAction {
            cluster,
            timeout: rule.timeout.unwrap_or_default(),
            max_stream_duration: None,
            retry_policy: retry_policy(&rule.retries),
        },
        decorator: Decorator { operation },
        typed_per_filter_config: fault(rule).map(PerFilterConfig),
        request_headers_to_add: header_values(rule),
        request_headers_to_remove: rule
            .request_headers
            .remove
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect(),
    }
}

/// route/route.go, applyHTTPRouteDestination: a rule of one destination goes to its cluster;
/// one of several to weighted clusters, those of weight 0 left out, even when one remains.
fn destination(rule: &Rule, namespace: &str, cluster_of: ClusterOf) -> ClusterSpecifier {
    let cluster = |d: &crate::model::Destination| cluster_of(&d.host, d.subset.as_deref(), namespace);
    if let [only] = rule.destinations.as_slice() {
        return ClusterSpecifier::Cluster(cluster(only));
    }
    let clusters = rule
        .destinations
        .iter()
        .filter(|d| d.weight > 0)
        .map(|d| ClusterWeight { name: cluster(d), weight: d.weight })
        .collect();
    ClusterSpecifier::WeightedClusters(WeightedClusters { clusters })
}

/// route/route.go, GetRouteOperation: the name of a route's spans, `<host>:<port><path>` of its
/// one cluster, or `<VirtualService>:<listener's port><path>` where it has several; the path
/// is the match's (a prefix ending in `*`).
fn operation(
    matches: &RouteMatch,
    cluster: &ClusterSpecifier,
    virtual_service: &str,
    listen_port: u16,
) -> String {
    let path = match &matches.path {
        PathMatch::Prefix(prefix) => format!("{prefix}*"),
        PathMatch::Path(path) => path.clone(),
        PathMatch::SafeRegex(regex) => regex.regex.clone(),
    };
    if let ClusterSpecifier::Cluster(name) = cluster
        && let Some((port, host)) = subset_key(name)
    {
        return format!("{host}:{port}{path}");
    }
    format!("{virtual_service}:{listen_port}{path}")
}

/// model/service.go, ParseSubsetKey: the port and host of `direction|port|subset|host`.
fn subset_key(cluster: &str) -> Option<(u16, &str)> {
    let mut parts = cluster.split('|');
    let (_direction, port, _subset, host) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    // Istio's Atoi: a port that is not a number reads as 0.
    Some((port.parse().unwrap_or(0), host))
}

/// route/route.go, TranslateRouteMatch: header conditions sorted by name, then the method; the
/// path; case sensitive.
fn route_match(conditions: &[Condition]) -> RouteMatch {
    let mut path = PathMatch::Prefix("/".to_owned());
    let mut headers = Vec::new();
    let mut method = None;
    for condition in conditions {
        match condition {
            Condition::Header { name, matcher, negate } => headers.push(HeaderMatcher {
                invert_match: *negate,
                // It cannot go with a presence test (canBeConvertedToPresentMatch).
                treat_missing_header_as_empty: *negate && !matches!(matcher, Matcher::Present),
                ..header_matcher(name, matcher)
            }),
            Condition::Method(matcher) => method = Some(header_matcher(":method", matcher)),
            Condition::Uri(matcher) => match matcher {
                Matcher::Exact(exact) => path = PathMatch::Path(exact.clone()),
                Matcher::Prefix(prefix) => path = PathMatch::Prefix(prefix.clone()),
                Matcher::Regex { source, .. } => {
                    path = PathMatch::SafeRegex(RegexMatcher { regex: source.clone() })
                }
                Matcher::Present => {}
            },
        }
    }
    headers.sort_by(|a, b| a.name.cmp(&b.name));
    headers.extend(method);
    RouteMatch { case_sensitive: Some(true), path, headers }
}

/// route/retry/retry.go, ConvertPolicy.
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

/// route/route.go, translateHeaderMatch.
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

/// route/route.go, TranslateFault: a route's fault, its percentages in millionths (cut, not
/// rounded, as Istio's integer conversion does).
fn fault(rule: &Rule) -> Option<HttpFault> {
    let percentage = |percent: f64| FractionalPercent {
        numerator: (percent * 10_000.0) as u64,
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

/// An HTTPRoute's `RequestHeaderModifier` as istiod renders it: `set` overwrites, `add` appends.
fn header_values(rule: &Rule) -> Vec<HeaderValueOption> {
    let option = |action: &'static str| {
        // The values were read from text, so they are text again.
        move |(key, value): &(HeaderName, http::HeaderValue)| HeaderValueOption {
            header: HeaderValue {
                key: key.as_str().to_owned(),
                value: value.to_str().unwrap_or_default().to_owned(),
            },
            append_action: action,
        }
    };
    let edits = &rule.request_headers;
    let set = edits.set.iter().map(option("OVERWRITE_IF_EXISTS_OR_ADD"));
    set.chain(edits.add.iter().map(option("APPEND_IF_EXISTS_OR_ADD"))).collect()
}
