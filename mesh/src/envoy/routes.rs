//! VirtualService rules as Envoy routes, the way istiod translates them: header, path and
//! method matches (regexes as RE2 full matches), weighted clusters per subset, faults on the
//! route (the listener's fault filter reads them), timeouts and retries, decorators named as
//! Istio names them.

use serde_json::{Value, json};

use super::{SERVICE_PORT, fqdn, host_of, outbound_cluster};
use crate::model::{Condition, Matcher, Retries, Routing, Rule};

/// Istio's default retry conditions.
const DEFAULT_RETRY_ON: &str = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// The route configuration of a sidecar's listener for `service` in `namespace`.
pub(super) fn outbound(routing: &Routing, service: &str, namespace: &str) -> Value {
    let routes: Vec<Value> = match routing.services.get(service) {
        Some(rules) => rules.iter().flat_map(|rule| render(rule, namespace)).collect(),
        None => {
            vec![default_route(service, namespace, &format!("{}:{SERVICE_PORT}/*", fqdn(service, namespace)))]
        }
    };
    json!({
        "name": format!("{SERVICE_PORT}"),
        // A route may name a subset no DestinationRule defines: Envoy answers 503, as in Istio.
        "validate_clusters": false,
        "virtual_hosts": [{
            "name": format!("{}:{SERVICE_PORT}", fqdn(service, namespace)),
            "domains": ["*"],
            "routes": routes,
            "include_request_attempt_count": true,
        }],
    })
}

/// The gateway's routes to `namespace`: the routing files' gateway rules (by their hosts), or
/// every path to productpage.
pub(super) fn gateway(routing: &Routing, namespace: &str) -> Value {
    let virtual_hosts: Vec<Value> = if routing.gateway.is_empty() {
        vec![json!({
            "name": "*:80",
            "domains": ["*"],
            "routes": [default_route("productpage", namespace, &format!("{}:{SERVICE_PORT}/*", fqdn("productpage", namespace)))],
        })]
    } else {
        let mut hosts: Vec<&String> = routing.gateway.iter().flat_map(|g| &g.hosts).collect();
        hosts.dedup();
        hosts
            .into_iter()
            .map(|host| {
                let routes: Vec<Value> = routing
                    .gateway
                    .iter()
                    .filter(|g| g.hosts.contains(host))
                    .flat_map(|g| render(&g.rule, namespace))
                    .collect();
                let domains = if host == "*" { json!(["*"]) } else { json!([host, format!("{host}:*")]) };
                json!({"name": format!("{host}:80"), "domains": domains, "routes": routes})
            })
            .collect()
    };
    json!({"name": "http.8080", "validate_clusters": false, "virtual_hosts": virtual_hosts})
}

/// The gateway's routes by host: each namespace's productpage for its own host.
pub(super) fn gateway_by_host<'a>(namespaces: impl Iterator<Item = &'a str>) -> Value {
    let virtual_hosts: Vec<Value> = namespaces
        .map(|ns| {
            let host = host_of(ns);
            let operation = format!("{}:{SERVICE_PORT}/*", fqdn("productpage", ns));
            json!({
                "name": format!("{host}:80"),
                "domains": [host, format!("{host}:*")],
                "routes": [default_route("productpage", ns, &operation)],
            })
        })
        .collect();
    json!({"name": "http.8080", "validate_clusters": false, "virtual_hosts": virtual_hosts})
}

/// Istio's route where no VirtualService says otherwise: every path, no timeout, the default
/// retries.
fn default_route(service: &str, namespace: &str, operation: &str) -> Value {
    json!({
        "name": "default",
        "match": {"prefix": "/"},
        "route": {
            "cluster": outbound_cluster(service, None, namespace),
            "timeout": "0s",
            "retry_policy": default_retry(),
        },
        "decorator": {"operation": operation},
    })
}

fn default_retry() -> Value {
    json!({
        "retry_on": DEFAULT_RETRY_ON,
        "num_retries": 2,
        "retry_host_predicate": [{
            "name": "envoy.retry_host_predicates.previous_hosts",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"},
        }],
        "host_selection_retry_max_attempts": "5",
    })
}

/// One rule as routes: one per match (Istio's translation), or one matching everything.
fn render(rule: &Rule, namespace: &str) -> Vec<Value> {
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

fn route(rule: &Rule, name: Option<String>, conditions: &[Condition], namespace: &str) -> Value {
    let mut path_match = ("prefix", json!("/"));
    let mut headers = Vec::new();
    let mut path = "/*".to_owned();
    for condition in conditions {
        match condition {
            Condition::Header { name, matcher, negate } => {
                let mut header = header_matcher(name, matcher);
                if *negate {
                    header["invert_match"] = json!(true);
                    if !matches!(matcher, Matcher::Present) {
                        header["treat_missing_header_as_empty"] = json!(true);
                    }
                }
                headers.push(header);
            }
            Condition::Method(matcher) => headers.push(header_matcher(":method", matcher)),
            Condition::Uri(matcher) => match matcher {
                Matcher::Exact(exact) => {
                    path_match = ("path", json!(exact));
                    path.clone_from(exact);
                }
                Matcher::Prefix(prefix) => {
                    path_match = ("prefix", json!(prefix));
                    path = format!("{prefix}*");
                }
                Matcher::Regex { source, .. } => {
                    path_match = ("safe_regex", json!({"regex": source}));
                    path.clone_from(source);
                }
                Matcher::Present => {}
            },
        }
    }
    let mut matched = json!({"case_sensitive": true});
    matched[path_match.0] = path_match.1;
    headers.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    if !headers.is_empty() {
        matched["headers"] = Value::Array(headers);
    }

    let clusters: Vec<(String, u32)> = rule
        .destinations
        .iter()
        // Istio leaves out the 0-weighted destinations of a weighted route.
        .filter(|d| rule.destinations.len() == 1 || d.weight > 0)
        .map(|d| (outbound_cluster(&d.host, d.subset.as_deref(), namespace), d.weight))
        .collect();
    let mut action = json!({"timeout": rule.timeout.map_or_else(|| "0s".to_owned(), seconds)});
    let operation = if let [(cluster, _)] = clusters.as_slice() {
        action["cluster"] = json!(cluster);
        let host = cluster.rsplit('|').next().unwrap_or_default();
        format!("{host}:{SERVICE_PORT}{path}")
    } else {
        let weighted: Vec<Value> =
            clusters.iter().map(|(name, weight)| json!({"name": name, "weight": weight})).collect();
        action["weighted_clusters"] = json!({"clusters": weighted});
        // Where several clusters share a route, Istio names it after the VirtualService.
        format!("{}:{SERVICE_PORT}{path}", rule.virtual_service)
    };
    match &rule.retries {
        Retries::Default => action["retry_policy"] = default_retry(),
        Retries::Off => {}
        Retries::Custom { attempts, per_try_timeout, retry_on } => {
            let tokens: Vec<&str> = retry_on.as_deref().unwrap_or(DEFAULT_RETRY_ON).split(',').collect();
            let statuses: Vec<u16> = tokens.iter().filter_map(|t| t.parse().ok()).collect();
            let mut on: Vec<&str> = tokens.iter().copied().filter(|t| t.parse::<u16>().is_err()).collect();
            if !statuses.is_empty() && !on.contains(&"retriable-status-codes") {
                on.push("retriable-status-codes");
            }
            let mut policy = default_retry();
            policy["num_retries"] = json!(attempts);
            policy["retry_on"] = json!(on.join(","));
            if !statuses.is_empty() {
                policy["retriable_status_codes"] = json!(statuses);
            }
            if let Some(per_try) = per_try_timeout {
                policy["per_try_timeout"] = json!(seconds(*per_try));
            }
            action["retry_policy"] = policy;
        }
    }
    let mut route = json!({"match": matched, "route": action, "decorator": {"operation": operation}});
    if let Some(name) = name {
        route["name"] = json!(name);
    }
    if let Some(fault) = fault(rule) {
        route["typed_per_filter_config"] = json!({"envoy.filters.http.fault": fault});
    }
    route
}

fn header_matcher(name: &str, matcher: &Matcher) -> Value {
    match matcher {
        Matcher::Exact(exact) => json!({"name": name, "string_match": {"exact": exact}}),
        Matcher::Prefix(prefix) => json!({"name": name, "string_match": {"prefix": prefix}}),
        Matcher::Regex { source, .. } => {
            json!({"name": name, "string_match": {"safe_regex": {"regex": source}}})
        }
        Matcher::Present => json!({"name": name, "present_match": true}),
    }
}

/// A route's fault, as Istio writes it: percentages in millionths.
fn fault(rule: &Rule) -> Option<Value> {
    let percentage =
        |percent: f64| json!({"numerator": (percent * 10_000.0).round() as u64, "denominator": "MILLION"});
    if rule.delay.is_none() && rule.abort.is_none() {
        return None;
    }
    let mut fault = json!({"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"});
    if let Some((delay, percent)) = rule.delay {
        fault["delay"] = json!({"fixed_delay": seconds(delay), "percentage": percentage(percent)});
    }
    if let Some((status, percent)) = rule.abort {
        fault["abort"] = json!({"http_status": status, "percentage": percentage(percent)});
    }
    Some(fault)
}

/// A duration in protobuf's JSON form: `7s`, `0.500s`.
fn seconds(duration: std::time::Duration) -> String {
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}.{nanos:09}s", duration.as_secs())
    }
}
