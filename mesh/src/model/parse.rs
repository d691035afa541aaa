//! Istio's YAML read into the [`Routing`], and checked: what neither router acts on is an
//! error naming the field, its file and its place. Gateway API routes are read in
//! `gateway_api.rs`.

mod gateway_api;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::RegexBuilder;
use serde_json::Value;
use serde_saphyr::NonFiniteFloatPolicy;

use super::{
    Condition, Destination, GATEWAY_PORT, GatewayRule, LoadBalancer, Match, Matcher, Retries, Routing, Rule,
    re2, short,
};
use crate::istio::{self, DestinationRule, Gateway, Other, VirtualService};
use crate::{RouteError, parse_duration};

/// Envoy's retry conditions Istio passes through `retryOn`.
const RETRY_ON: [&str; 16] = [
    "5xx",
    "gateway-error",
    "reset",
    "reset-before-request",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "http3-post-connect-failure",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// The versions of `networking.istio.io` that Istio serves.
const API_VERSIONS: [&str; 3] =
    ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"];

/// The versions of `gateway.networking.k8s.io` taken (HTTPRoute and Gateway).
const GATEWAY_API_VERSIONS: [&str; 2] = ["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"];

/// A resource read into its type; an error names the field's path (`spec.http[0].timeout`).
fn typed<T: serde::de::DeserializeOwned>(document: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(document).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." { inner.to_string() } else { format!("{path}: {inner}") }
    })
}

/// Where in the files a problem is.
struct Place<'a> {
    path: &'a Path,
    at: String,
}

impl Place<'_> {
    fn error(&self, message: impl std::fmt::Display) -> RouteError {
        RouteError::Invalid { path: self.path.to_path_buf(), message: format!("{}: {message}", self.at) }
    }

    fn within(&self, more: impl std::fmt::Display) -> Place<'_> {
        Place { path: self.path, at: format!("{}{more}", self.at) }
    }

    /// Refuses the first field neither router acts on.
    fn refuse(&self, other: &Other, supported: &str) -> Result<(), RouteError> {
        match other.keys().next() {
            Some(field) => Err(self.error(format!(
                "`{field}` is not supported by the local routing (it takes {supported}); leave it out or use another file"
            ))),
            None => Ok(()),
        }
    }
}

impl Routing {
    /// Reads YAML files (several documents each).
    ///
    /// # Errors
    /// Invalid YAML, a resource that does not deserialise, a kind or field neither router
    /// acts on, an invalid regex, duration, percentage, weight or status, a file with no
    /// routing resource at all; naming the file and the place in it.
    pub fn parse(files: &[(&Path, &str)]) -> Result<Self, RouteError> {
        let mut virtual_services = Vec::new();
        let mut destination_rules = Vec::new();
        let mut gateways = Vec::new();
        let mut http_routes = Vec::new();
        let mut api_gateways = Vec::new();
        for (path, text) in files {
            let invalid = |message: String| RouteError::Invalid { path: path.to_path_buf(), message };
            // `.nan` and `.inf` kept as text, so that the field they are in is named below.
            let options = serde_saphyr::options! { non_finite_float_policy: NonFiniteFloatPolicy::AsString };
            let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(text, options)
                .map_err(|err| invalid(format!("not valid YAML: {err}")))?;
            let mut resources = 0;
            for (index, document) in documents.into_iter().enumerate() {
                if document.is_null() {
                    continue;
                }
                resources += 1;
                let kind = document.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
                let api = document.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
                let at = format!("document {}", index + 1);
                if api.starts_with("gateway.networking.k8s.io/") {
                    if !GATEWAY_API_VERSIONS.contains(&api.as_str()) {
                        return Err(invalid(format!(
                            "{at}: apiVersion {api} is not one taken here ({})",
                            GATEWAY_API_VERSIONS.join(", ")
                        )));
                    }
                    match kind.as_str() {
                        "HTTPRoute" => {
                            let route =
                                typed(document).map_err(|err| invalid(format!("{at}: HTTPRoute: {err}")))?;
                            http_routes.push((*path, route));
                        }
                        "Gateway" => {
                            let gateway =
                                typed(document).map_err(|err| invalid(format!("{at}: Gateway: {err}")))?;
                            api_gateways.push((*path, gateway));
                        }
                        other => {
                            return Err(invalid(format!(
                                "{at}: {other} ({api}) is not supported by the local routing (of the Gateway API it takes HTTPRoute and Gateway)"
                            )));
                        }
                    }
                    continue;
                }
                if !api.starts_with("networking.istio.io/") {
                    return Err(invalid(format!(
                        "{at}: {kind} ({api}) is not an Istio networking resource; routing files hold VirtualService, DestinationRule and Gateway, or the Gateway API's HTTPRoute and Gateway"
                    )));
                }
                if !API_VERSIONS.contains(&api.as_str()) {
                    return Err(invalid(format!(
                        "{at}: apiVersion {api} is not one Istio serves ({})",
                        API_VERSIONS.join(", ")
                    )));
                }
                match kind.as_str() {
                    "VirtualService" => {
                        let vs: VirtualService =
                            typed(document).map_err(|err| invalid(format!("{at}: VirtualService: {err}")))?;
                        virtual_services.push((*path, vs));
                    }
                    "DestinationRule" => {
                        let dr: DestinationRule = typed(document)
                            .map_err(|err| invalid(format!("{at}: DestinationRule: {err}")))?;
                        destination_rules.push((*path, dr));
                    }
                    "Gateway" => {
                        let gateway: Gateway =
                            typed(document).map_err(|err| invalid(format!("{at}: Gateway: {err}")))?;
                        gateways.push((*path, gateway));
                    }
                    other => {
                        return Err(invalid(format!(
                            "{at}: {other} is not supported by the local routing (it takes VirtualService, DestinationRule and Gateway)"
                        )));
                    }
                }
            }
            if resources == 0 {
                return Err(invalid(
                    "no VirtualService, DestinationRule or Gateway in it, nor an HTTPRoute".to_owned(),
                ));
            }
        }

        let mut routing = Routing::default();
        for (path, dr) in &destination_rules {
            routing.add_destination_rule(path, dr)?;
        }
        let mut gateway_ports = BTreeMap::new();
        for (path, gateway) in &gateways {
            let port = routing.add_gateway(path, gateway)?;
            gateway_ports.insert(gateway.metadata.name.clone(), port);
        }
        for (path, gateway) in &api_gateways {
            let port = routing.add_api_gateway(path, gateway)?;
            gateway_ports.insert(gateway.metadata.name.clone(), port);
        }
        for (path, vs) in &virtual_services {
            routing.add_virtual_service(path, vs, &gateway_ports)?;
        }
        // After the DestinationRules, whose subsets the version Services resolve to.
        let mut ranked = Vec::new();
        for (path, route) in &http_routes {
            routing.add_http_route(path, route, &gateway_ports, &mut ranked)?;
        }
        routing.place_ranked(ranked);
        Ok(routing)
    }

    /// Reads `paths`.
    ///
    /// # Errors
    /// A file that cannot be read, or as [`parse`](Self::parse).
    pub fn load(paths: &[PathBuf]) -> Result<Self, RouteError> {
        let mut files = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(path)
                .map_err(|source| RouteError::Read { path: path.clone(), source })?;
            files.push((path.clone(), text));
        }
        let refs: Vec<(&Path, &str)> = files.iter().map(|(p, t)| (p.as_path(), t.as_str())).collect();
        Self::parse(&refs)
    }

    fn add_destination_rule(&mut self, path: &Path, dr: &DestinationRule) -> Result<(), RouteError> {
        let place = Place { path, at: format!("DestinationRule {}", dr.metadata.name) };
        place.refuse(&dr.spec.other, "host, subsets and trafficPolicy.loadBalancer")?;
        let host = short(&dr.spec.host);
        if let Some(policy) = &dr.spec.traffic_policy {
            let balancer = load_balancer(&place.within(".trafficPolicy"), policy)?;
            if let Some(balancer) = balancer {
                self.load_balancers.insert(host.clone(), balancer);
            }
        }
        for (s, subset) in dr.spec.subsets.iter().enumerate() {
            let place = place.within(format!(", subsets[{s}] ({})", subset.name));
            place.refuse(&subset.other, "name and labels")?;
            if let Some(policy) = &subset.traffic_policy {
                load_balancer(&place.within(".trafficPolicy"), policy)?;
            }
            let version = subset.labels.get("version").ok_or_else(|| {
                place.error("labels: no `version` label (subsets are told apart by version here)")
            })?;
            if let Some(label) = subset.labels.keys().find(|k| k.as_str() != "version") {
                return Err(place.error(format!(
                    "labels: `{label}` is not supported (only `version` tells pods apart here)"
                )));
            }
            self.subsets.entry(host.clone()).or_default().insert(subset.name.clone(), version.clone());
        }
        Ok(())
    }

    fn add_virtual_service(
        &mut self,
        path: &Path,
        vs: &VirtualService,
        gateways: &BTreeMap<String, u16>,
    ) -> Result<(), RouteError> {
        let place = Place { path, at: format!("VirtualService {}", vs.metadata.name) };
        place.refuse(&vs.spec.other, "hosts, gateways and http")?;
        // The port of the first gateway it is bound to: the local gateway has one listener.
        let (mut in_mesh, mut at_gateway) = (vs.spec.gateways.is_empty(), None);
        for gateway in &vs.spec.gateways {
            let name = gateway.rsplit('/').next().unwrap_or(gateway);
            if name == "mesh" {
                in_mesh = true;
            } else if let Some(port) = gateways.get(name) {
                at_gateway = at_gateway.or(Some(*port));
            } else {
                return Err(place.error(format!(
                    "gateways: {gateway} is defined in none of the files (give its Gateway too)"
                )));
            }
        }
        if vs.spec.hosts.is_empty() {
            return Err(place.error("hosts: none"));
        }
        for (r, route) in vs.spec.http.iter().enumerate() {
            let rule = self.compile(&place.within(format!(", http[{r}]")), &vs.metadata.name, route)?;
            if in_mesh {
                for host in &vs.spec.hosts {
                    if host == "*" {
                        return Err(place.error("hosts: `*` applies to the mesh only through a gateway"));
                    }
                    self.services.entry(short(host)).or_default().push(rule.clone());
                }
            }
            if let Some(port) = at_gateway {
                self.gateway.push(GatewayRule { hosts: vs.spec.hosts.clone(), port, rule });
            }
        }
        Ok(())
    }

    /// One HTTP rule of a VirtualService, checked.
    fn compile(
        &mut self,
        place: &Place<'_>,
        virtual_service: &str,
        route: &istio::HttpRoute,
    ) -> Result<Rule, RouteError> {
        place.refuse(&route.other, "name, match, route, fault, timeout and retries")?;
        let matches = route
            .matches
            .iter()
            .enumerate()
            .map(|(m, request)| request_match(&place.within(format!(".match[{m}]")), request))
            .collect::<Result<_, _>>()?;
        let destinations = self.destinations(place, &route.route)?;
        let (mut delay, mut abort) = (None, None);
        if let Some(fault) = &route.fault {
            let place = place.within(".fault");
            place.refuse(&fault.other, "delay and abort")?;
            delay = fault.delay.as_ref().map(|d| self.delay(&place.within(".delay"), d)).transpose()?;
            abort = fault.abort.as_ref().map(|a| self.abort(&place.within(".abort"), a)).transpose()?;
        }
        let timeout = route
            .timeout
            .as_deref()
            .map(|t| parse_duration(t).map_err(|err| place.within(".timeout").error(err)))
            .transpose()?
            .filter(|t| !t.is_zero());
        let retries = match &route.retries {
            None => Retries::Default,
            Some(r) => retries(&place.within(".retries"), r)?,
        };
        Ok(Rule {
            virtual_service: virtual_service.to_owned(),
            name: route.name.clone(),
            matches,
            destinations,
            delay,
            abort,
            timeout,
            retries,
            request_headers: super::HeaderEdits::default(),
        })
    }

    /// A rule's destinations, their weights adding up to 100; a subset no DestinationRule
    /// defines is a warning (calls routed there fail, as in Istio).
    fn destinations(
        &mut self,
        place: &Place<'_>,
        route: &[istio::RouteDestination],
    ) -> Result<Vec<Destination>, RouteError> {
        if route.is_empty() {
            return Err(place.within(".route").error("no destination"));
        }
        let mut destinations = Vec::new();
        let many = route.len() > 1;
        for (d, destination) in route.iter().enumerate() {
            let place = place.within(format!(".route[{d}]"));
            place.refuse(&destination.other, "destination and weight")?;
            place.within(".destination").refuse(&destination.destination.other, "host, subset and port")?;
            if let Some(port) = &destination.destination.port
                && port.number != 9080
            {
                return Err(place.error(format!(
                    "destination.port: {} (every Bookinfo service serves 9080)",
                    port.number
                )));
            }
            let weight = match (destination.weight, many) {
                (None, false) => 100,
                (Some(100), false) => 100,
                (None, true) => 0,
                (Some(w @ 0..=100), true) => w as u32,
                (Some(w), _) => {
                    return Err(place.error(format!("weight: {w} (weights are 0 to 100, and add up to 100)")));
                }
            };
            let host = short(&destination.destination.host);
            if let Some(subset) = &destination.destination.subset
                && self.version_of(&host, subset).is_none()
            {
                self.warnings.push(format!(
                    "{}: {}: subset {subset} of {host} is in no DestinationRule: calls routed there fail with 503, as in Istio",
                    place.path.display(),
                    place.at
                ));
            }
            destinations.push(Destination { host, subset: destination.destination.subset.clone(), weight });
        }
        let total: u32 = destinations.iter().map(|d| d.weight).sum();
        if total != 100 {
            return Err(place.within(".route").error(format!("the weights add up to {total}, not 100")));
        }
        Ok(destinations)
    }

    /// A fault's delay, and its share of requests.
    fn delay(&mut self, place: &Place<'_>, delay: &istio::Delay) -> Result<(Duration, f64), RouteError> {
        place.refuse(&delay.other, "fixedDelay and percentage")?;
        let fixed = delay.fixed_delay.as_deref().ok_or_else(|| place.error("no fixedDelay"))?;
        let duration = parse_duration(fixed).map_err(|err| place.error(format!("fixedDelay: {err}")))?;
        Ok((duration, self.percent(place, delay.percentage.as_ref(), delay.percent)?))
    }

    /// A fault's abort status, and its share of requests.
    fn abort(&mut self, place: &Place<'_>, abort: &istio::Abort) -> Result<(u16, f64), RouteError> {
        place.refuse(&abort.other, "httpStatus and percentage")?;
        let code = abort.http_status.ok_or_else(|| place.error("no httpStatus"))?;
        let status = u16::try_from(code)
            .ok()
            .filter(|c| (200..600).contains(c))
            .ok_or_else(|| place.error(format!("httpStatus: {code} is not a status from 200 to 599")))?;
        Ok((status, self.percent(place, abort.percentage.as_ref(), None)?))
    }

    /// A fault's share of requests; none applies it to no request, as Istio does.
    fn percent(
        &mut self,
        place: &Place<'_>,
        percentage: Option<&istio::Percent>,
        percent: Option<i64>,
    ) -> Result<f64, RouteError> {
        match (percentage, percent) {
            (Some(p), _) if p.value.is_finite() && (0.0..=100.0).contains(&p.value) => Ok(p.value),
            (Some(p), _) => Err(place.error(format!("percentage: {} is not within 0-100", p.value))),
            (None, Some(p)) if (0..=100).contains(&p) => Ok(p as f64),
            (None, Some(p)) => Err(place.error(format!("percent: {p} is not within 0-100"))),
            (None, None) => {
                self.warnings.push(format!(
                    "{}: {}: no percentage, so Istio applies it to no request",
                    place.path.display(),
                    place.at
                ));
                Ok(0.0)
            }
        }
    }
}

/// One `match` of a rule: conditions that must all hold.
fn request_match(place: &Place<'_>, request: &istio::MatchRequest) -> Result<Match, RouteError> {
    place.refuse(&request.other, "name, headers, withoutHeaders, uri and method")?;
    let mut conditions = Vec::new();
    for (negate, field, headers) in
        [(false, "headers", &request.headers), (true, "withoutHeaders", &request.without_headers)]
    {
        for (name, string_match) in headers {
            let matcher = matcher(&place.within(format!(".{field}.{name}")), string_match)?;
            conditions.push(Condition::Header { name: name.to_ascii_lowercase(), matcher, negate });
        }
    }
    if let Some(uri) = &request.uri {
        conditions.push(Condition::Uri(matcher(&place.within(".uri"), uri)?));
    }
    if let Some(method) = &request.method {
        conditions.push(Condition::Method(matcher(&place.within(".method"), method)?));
    }
    Ok(Match { name: request.name.clone(), conditions })
}

/// A rule's `retries`: none with no attempts, at most 100.
fn retries(place: &Place<'_>, retries: &istio::Retries) -> Result<Retries, RouteError> {
    place.refuse(&retries.other, "attempts, perTryTimeout and retryOn")?;
    match retries.attempts {
        Some(0) | None => Ok(Retries::Off),
        Some(n @ 1..=100) => Ok(Retries::Custom {
            attempts: n as u32,
            per_try_timeout: retries
                .per_try_timeout
                .as_deref()
                .map(|t| parse_duration(t).map_err(|err| place.error(format!("perTryTimeout: {err}"))))
                .transpose()?,
            retry_on: retries.retry_on.as_deref().map(|on| retry_on(place, on)).transpose()?,
        }),
        Some(n) => Err(place.error(format!("attempts: {n} (0 to 100)"))),
    }
}

fn retry_on(place: &Place<'_>, text: &str) -> Result<String, RouteError> {
    let tokens: Vec<&str> = text.split(',').map(str::trim).filter(|t| !t.is_empty()).collect();
    for token in &tokens {
        let status = token.parse::<u16>().is_ok_and(|s| (100..600).contains(&s));
        if !status && !RETRY_ON.contains(token) {
            return Err(
                place.error(format!("retryOn: {token:?} is not one of Envoy's retry conditions or a status"))
            );
        }
    }
    if tokens.is_empty() {
        return Err(place.error("retryOn: empty"));
    }
    Ok(tokens.join(","))
}

fn load_balancer(
    place: &Place<'_>,
    policy: &istio::TrafficPolicy,
) -> Result<Option<LoadBalancer>, RouteError> {
    place.refuse(&policy.other, "loadBalancer (mutual TLS and the rest are not part of the local mesh)")?;
    let Some(balancer) = &policy.load_balancer else { return Ok(None) };
    let place = place.within(".loadBalancer");
    place.refuse(&balancer.other, "simple")?;
    match balancer.simple.as_deref() {
        None => Ok(None),
        Some("ROUND_ROBIN") => Ok(Some(LoadBalancer::RoundRobin)),
        Some("RANDOM") => Ok(Some(LoadBalancer::Random)),
        Some("LEAST_REQUEST" | "LEAST_CONN" | "UNSPECIFIED") => Ok(Some(LoadBalancer::LeastRequest)),
        Some(other) => Err(place.error(format!("simple: {other} (ROUND_ROBIN, RANDOM or LEAST_REQUEST)"))),
    }
}

impl Routing {
    /// Checks a Gateway; gives the port of its servers, which its VirtualServices' routes are
    /// named after (the local gateway serves them all on one listener, so the first port
    /// names them, with a warning when there are several).
    fn add_gateway(&mut self, path: &Path, gateway: &Gateway) -> Result<u16, RouteError> {
        let place = Place { path, at: format!("Gateway {}", gateway.metadata.name) };
        place.refuse(&gateway.spec.other, "selector and servers")?;
        let mut ports = Vec::new();
        for (s, server) in gateway.spec.servers.iter().enumerate() {
            let place = place.within(format!(", servers[{s}]"));
            place.refuse(&server.other, "port and hosts (no TLS in the local mesh)")?;
            if let Some(port) = &server.port {
                place.within(".port").refuse(&port.other, "number, name and protocol")?;
                if let Some(protocol) = port.protocol.as_deref().filter(|p| !p.eq_ignore_ascii_case("HTTP")) {
                    return Err(
                        place.error(format!("port.protocol: {protocol} (the local gateway speaks HTTP)"))
                    );
                }
                if let Some(number) = port.number {
                    let number = u16::try_from(number)
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| place.error(format!("port.number: {number} is not a port")))?;
                    if !ports.contains(&number) {
                        ports.push(number);
                    }
                }
            }
        }
        if ports.len() > 1 {
            self.warnings.push(format!(
                "{}: {}: servers on ports {ports:?}: the local gateway serves them on one listener, its routes named after port {}",
                path.display(),
                place.at,
                ports[0]
            ));
        }
        Ok(ports.first().copied().unwrap_or(GATEWAY_PORT))
    }
}

/// A regex both routers take: Envoy's RE2 must take it too (or the mesh would not start),
/// matched against the whole value.
fn regex(place: &Place<'_>, source: &str) -> Result<Matcher, RouteError> {
    if let Some(refusal) = re2::refusal(source) {
        return Err(place.error(format!("{source:?}: {refusal}")));
    }
    RegexBuilder::new(&format!("^(?:{source})$"))
        .size_limit(1 << 20)
        .build()
        .map(|compiled| Matcher::Regex { source: source.to_owned(), compiled })
        .map_err(|err| place.error(format!("{source:?}: {}", re2::one_line(&err))))
}

fn matcher(place: &Place<'_>, string_match: &istio::StringMatch) -> Result<Matcher, RouteError> {
    place.refuse(&string_match.other, "exact, prefix and regex")?;
    match (&string_match.exact, &string_match.prefix, &string_match.regex) {
        (Some(exact), None, None) => Ok(Matcher::Exact(exact.clone())),
        (None, Some(prefix), None) => Ok(Matcher::Prefix(prefix.clone())),
        (None, None, Some(source)) => regex(&place.within(".regex"), source),
        (None, None, None) => Ok(Matcher::Present),
        _ => Err(place.error("exact, prefix and regex are exclusive")),
    }
}
