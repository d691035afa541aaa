//! Gateway API `HTTPRoute`s read into the same [`Routing`] as VirtualServices, so that both
//! routers act on them alike.
//!
//! - A parent of kind `Service` (GAMMA) makes the route apply to calls to that service, as a
//!   mesh-bound VirtualService for that host; a parent of kind `Gateway` binds it to the
//!   ingress gateway, for its `hostnames` (any host without).
//! - A backend Service `<service>-<version>` (as Istio's `bookinfo-versions.yaml` defines
//!   them: `reviews-v2` selects the pods of `reviews` labelled `version: v2`) is the subset
//!   of `<service>` whose `version` label is `<version>`: a DestinationRule's subset when one
//!   has that label, else a subset named `<version>` added for it. Any other backend name is
//!   the service itself.
//! - Weights are relative: they become percentages by the largest remainder (each gets its
//!   share of 100 rounded down, the points left over go to the largest fractions, the first
//!   written on a tie), so that they add up to 100 as the model's do.
//! - A `RequestHeaderModifier` filter becomes the rule's header changes; other filters are
//!   refused.
//! - Rules are tried in the Gateway API's precedence, not as written: each match becomes a
//!   rule of its own, ordered as istiod orders them (an exact path first, then path prefixes
//!   longest first, then regexes; then a method; then the most header conditions); a tie
//!   keeps the order of the files.

use std::path::Path;

use actix_web::http::header::{HeaderName, HeaderValue};

use super::{Place, regex};
use crate::gateway_api::{BackendRef, Filter, Gateway, HttpRoute, RouteMatch, RouteRule};
use crate::model::{
    Condition, Destination, GATEWAY_PORT, GatewayRule, HeaderEdits, Match, Matcher, Retries, Routing, Rule,
    short,
};
use crate::{RouteError, parse_duration};

/// The port every Bookinfo service serves.
const SERVICE_PORT: i64 = 9080;

/// Where a route applies.
#[derive(Clone)]
pub(super) enum Parent {
    /// Calls to this service.
    Service(String),
    /// The ingress gateway, for these hosts, its routes named after this port.
    Gateway(Vec<String>, u16),
}

/// The precedence of a match (greater first), as istiod sorts the routes of HTTPRoutes: the
/// kind of path condition (exact 3, prefix 2, regex 1), its length, a method, the number of
/// header conditions. No path is the prefix `/` (the default the API server fills in).
type Rank = (u8, usize, bool, usize);

/// A rule, where it applies and the precedence of its one match.
pub(super) type Ranked = (Rank, Parent, Rule);

impl Routing {
    /// Checks a Gateway of the Gateway API: the port its routes are named after.
    pub(super) fn add_api_gateway(&mut self, path: &Path, gateway: &Gateway) -> Result<u16, RouteError> {
        let place = Place { path, at: format!("Gateway {}", gateway.metadata.name) };
        place.refuse(&gateway.spec.other, "gatewayClassName and listeners")?;
        if let Some(class) = gateway.spec.gateway_class_name.as_deref().filter(|c| *c != "istio") {
            return Err(place.error(format!("gatewayClassName: {class} (the local gateway is `istio`)")));
        }
        let mut port = None;
        for (l, listener) in gateway.spec.listeners.iter().enumerate() {
            let place = place.within(format!(", listeners[{l}]"));
            place.refuse(
                &listener.other,
                "name, port, protocol and allowedRoutes (no TLS in the local mesh)",
            )?;
            if let Some(protocol) = listener.protocol.as_deref().filter(|p| *p != "HTTP") {
                return Err(place.error(format!("protocol: {protocol} (the local gateway speaks HTTP)")));
            }
            if let Some(number) = listener.port {
                let number = u16::try_from(number)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| place.error(format!("port: {number} is not a port")))?;
                port = port.or(Some(number));
            }
        }
        Ok(port.unwrap_or(GATEWAY_PORT))
    }

    /// An HTTPRoute's rules, for each of its parents, in the Gateway API's precedence among
    /// the rules of `ranked` (those of earlier HTTPRoutes for the same parents).
    pub(super) fn add_http_route(
        &mut self,
        path: &Path,
        route: &HttpRoute,
        gateways: &std::collections::BTreeMap<String, u16>,
        ranked: &mut Vec<Ranked>,
    ) -> Result<(), RouteError> {
        let place = Place { path, at: format!("HTTPRoute {}", route.metadata.name) };
        place.refuse(&route.spec.other, "parentRefs, hostnames and rules")?;
        let mut parents = Vec::new();
        for (p, parent) in route.spec.parent_refs.iter().enumerate() {
            let place = place.within(format!(", parentRefs[{p}]"));
            place.refuse(&parent.other, "group, kind, name and port (one namespace locally)")?;
            match (parent.kind.as_deref().unwrap_or("Gateway"), parent.group.as_deref()) {
                ("Service", None | Some("")) => {
                    if let Some(port) = parent.port.filter(|p| *p != SERVICE_PORT) {
                        return Err(place.error(format!("port: {port} (every Bookinfo service serves 9080)")));
                    }
                    if !route.spec.hostnames.is_empty() {
                        return Err(place.error(
                            "hostnames: a route for a Service applies to its calls, whatever the host",
                        ));
                    }
                    parents.push(Parent::Service(short(&parent.name)));
                }
                ("Gateway", None | Some("gateway.networking.k8s.io")) => {
                    if parent.port.is_some() {
                        return Err(place.error("port: the local gateway has one listener"));
                    }
                    let port = gateways.get(&parent.name).ok_or_else(|| {
                        place.error(format!(
                            "name: Gateway {} is defined in none of the files (give it too)",
                            parent.name
                        ))
                    })?;
                    let hosts = match route.spec.hostnames.as_slice() {
                        [] => vec!["*".to_owned()],
                        named => named.to_vec(),
                    };
                    parents.push(Parent::Gateway(hosts, *port));
                }
                (kind, group) => {
                    return Err(place.error(format!(
                        "kind: {kind} (group {:?}): a route attaches to a Service or a Gateway here",
                        group.unwrap_or_default()
                    )));
                }
            }
        }
        if parents.is_empty() {
            return Err(place.error("parentRefs: none (name the Service or the Gateway it applies to)"));
        }
        let mut rules = Vec::new();
        for (r, rule) in route.spec.rules.iter().enumerate() {
            rules.extend(self.api_rule(
                &place.within(format!(", rules[{r}]")),
                &route.metadata.name,
                rule,
            )?);
        }
        for parent in &parents {
            ranked.extend(rules.iter().map(|(rank, rule)| (*rank, parent.clone(), rule.clone())));
        }
        Ok(())
    }

    /// Puts the HTTPRoutes' rules in place, each parent's in the Gateway API's precedence.
    pub(super) fn place_ranked(&mut self, mut ranked: Vec<Ranked>) {
        // Stable: a tie keeps the order of the files.
        ranked.sort_by_key(|(rank, _, _)| std::cmp::Reverse(*rank));
        for (_, parent, rule) in ranked {
            match parent {
                Parent::Service(service) => self.services.entry(service).or_default().push(rule),
                Parent::Gateway(hosts, port) => self.gateway.push(GatewayRule { hosts, port, rule }),
            }
        }
    }

    /// One rule of an HTTPRoute: a model rule per match, with its precedence.
    fn api_rule(
        &mut self,
        place: &Place<'_>,
        route: &str,
        rule: &RouteRule,
    ) -> Result<Vec<(Rank, Rule)>, RouteError> {
        place.refuse(&rule.other, "name, matches, backendRefs, timeouts.request and filters")?;
        let request_headers = header_edits(place, &rule.filters)?;
        let destinations = self.backends(place, &rule.backend_refs)?;
        let timeout = match &rule.timeouts {
            None => None,
            Some(timeouts) => {
                let place = place.within(".timeouts");
                place.refuse(&timeouts.other, "request")?;
                timeouts
                    .request
                    .as_deref()
                    .map(|t| parse_duration(t).map_err(|err| place.within(".request").error(err)))
                    .transpose()?
                    .filter(|t| !t.is_zero())
            }
        };
        let template = |matches: Vec<Match>| Rule {
            virtual_service: route.to_owned(),
            name: rule.name.clone(),
            matches,
            destinations: destinations.clone(),
            delay: None,
            abort: None,
            timeout,
            // Istio applies its default retries to an HTTPRoute without `retry`.
            retries: Retries::Default,
            request_headers: request_headers.clone(),
        };
        if rule.matches.is_empty() {
            // No match is a path prefix of `/`: every request.
            return Ok(vec![((2, 1, false, 0), template(Vec::new()))]);
        }
        let mut rules = Vec::new();
        for (m, request) in rule.matches.iter().enumerate() {
            let (rank, conditions) = api_match(&place.within(format!(".matches[{m}]")), request)?;
            rules.push((rank, template(vec![Match { name: None, conditions }])));
        }
        Ok(rules)
    }

    /// A rule's backends as destinations, their relative weights as percentages.
    fn backends(
        &mut self,
        place: &Place<'_>,
        backends: &[BackendRef],
    ) -> Result<Vec<Destination>, RouteError> {
        if backends.is_empty() {
            return Err(place.within(".backendRefs").error("no backend"));
        }
        let mut destinations = Vec::new();
        let mut weights = Vec::new();
        for (b, backend) in backends.iter().enumerate() {
            let place = place.within(format!(".backendRefs[{b}]"));
            place.refuse(&backend.other, "name, port and weight")?;
            if backend.kind.as_deref().is_some_and(|k| k != "Service")
                || backend.group.as_deref().is_some_and(|g| !g.is_empty())
            {
                return Err(place.error("kind: backends are Services here"));
            }
            if let Some(port) = backend.port.filter(|p| *p != SERVICE_PORT) {
                return Err(place.error(format!("port: {port} (every Bookinfo service serves 9080)")));
            }
            let weight = backend.weight.unwrap_or(1);
            if !(0..=1_000_000).contains(&weight) {
                return Err(place.error(format!("weight: {weight} (0 to 1000000)")));
            }
            weights.push(weight as u64);
            let (host, subset) = self.version_service(&place, &backend.name)?;
            destinations.push(Destination { host, subset, weight: 0 });
        }
        let percents = percentages(&weights).ok_or_else(|| {
            place.within(".backendRefs").error("every weight is 0: no request could be routed")
        })?;
        for (destination, percent) in destinations.iter_mut().zip(percents) {
            destination.weight = percent;
        }
        Ok(destinations)
    }

    /// The service and subset of a backend Service name (see the module's comment).
    fn version_service(
        &mut self,
        place: &Place<'_>,
        name: &str,
    ) -> Result<(String, Option<String>), RouteError> {
        let name = short(name);
        let Some((service, version)) = name.rsplit_once('-').filter(|(s, v)| {
            !s.is_empty() && v.len() > 1 && v.starts_with('v') && v[1..].bytes().all(|b| b.is_ascii_digit())
        }) else {
            return Ok((name, None));
        };
        let subsets = self.subsets.entry(service.to_owned()).or_default();
        if let Some((subset, _)) = subsets.iter().find(|(_, v)| v.as_str() == version) {
            return Ok((service.to_owned(), Some(subset.clone())));
        }
        if let Some(other) = subsets.get(version) {
            return Err(place.error(format!(
                "name: {name} selects version {version} of {service}, but its subset {version} is version {other}"
            )));
        }
        subsets.insert(version.to_owned(), version.to_owned());
        Ok((service.to_owned(), Some(version.to_owned())))
    }
}

/// A rule's filters: `RequestHeaderModifier`s, each header named once among them all.
fn header_edits(place: &Place<'_>, filters: &[Filter]) -> Result<HeaderEdits, RouteError> {
    let mut edits = HeaderEdits::default();
    let mut named = Vec::new();
    let mut name = |place: &Place<'_>, name: &str| {
        let lower = name.to_ascii_lowercase();
        let Ok(parsed) = HeaderName::from_bytes(lower.as_bytes()) else {
            return Err(place.error(format!("name: {name:?} is not a header name")));
        };
        if lower.starts_with(':') || lower == "host" || named.contains(&parsed) {
            return Err(
                place.error(format!("name: {name} (each header once, and not host or a pseudo-header)"))
            );
        }
        named.push(parsed.clone());
        Ok(parsed)
    };
    for (f, filter) in filters.iter().enumerate() {
        let place = place.within(format!(".filters[{f}]"));
        let modifier = match (filter.kind.as_str(), &filter.request_header_modifier) {
            ("RequestHeaderModifier", Some(modifier)) => modifier,
            ("RequestHeaderModifier", None) => return Err(place.error("no requestHeaderModifier")),
            (other, _) => {
                return Err(place.error(format!(
                    "type {other}: not supported by the local routing (of the filters it takes RequestHeaderModifier); leave it out or use another file"
                )));
            }
        };
        place.refuse(&filter.other, "type and requestHeaderModifier")?;
        let place = place.within(".requestHeaderModifier");
        place.refuse(&modifier.other, "set, add and remove")?;
        for (field, headers, into) in
            [("set", &modifier.set, &mut edits.set), ("add", &modifier.add, &mut edits.add)]
        {
            for (h, header) in headers.iter().enumerate() {
                let place = place.within(format!(".{field}[{h}]"));
                place.refuse(&header.other, "name and value")?;
                let parsed = name(&place, &header.name)?;
                let Ok(value) = HeaderValue::from_str(&header.value) else {
                    return Err(place.error(format!("value: {:?} is not a header value", header.value)));
                };
                into.push((parsed, value));
            }
        }
        for (h, header) in modifier.remove.iter().enumerate() {
            edits.remove.push(name(&place.within(format!(".remove[{h}]")), header)?);
        }
    }
    Ok(edits)
}

/// Relative weights as percentages adding up to 100, by the largest remainder; none when
/// every weight is 0.
fn percentages(weights: &[u64]) -> Option<Vec<u32>> {
    let total: u64 = weights.iter().sum();
    if total == 0 {
        return None;
    }
    let mut percents: Vec<u32> = weights.iter().map(|w| (w * 100 / total) as u32).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Largest fraction first; `sort_by_key` is stable, so the first written wins a tie.
    order.sort_by_key(|&i| std::cmp::Reverse(weights[i] * 100 % total));
    let left = 100 - percents.iter().sum::<u32>();
    for &i in order.iter().take(left as usize) {
        percents[i] += 1;
    }
    Some(percents)
}

/// A match's conditions, and its precedence.
fn api_match(place: &Place<'_>, request: &RouteMatch) -> Result<(Rank, Vec<Condition>), RouteError> {
    place.refuse(&request.other, "path, headers and method")?;
    let mut conditions = Vec::new();
    let mut uri = (2, 1);
    if let Some(path) = &request.path {
        let place = place.within(".path");
        place.refuse(&path.other, "type and value")?;
        let value = path.value.clone().unwrap_or_else(|| "/".to_owned());
        match path.kind.as_deref().unwrap_or("PathPrefix") {
            "Exact" => {
                uri = (3, value.len());
                conditions.push(Condition::Uri(Matcher::Exact(value)));
            }
            "PathPrefix" => {
                // A prefix matches whole segments: `/static` takes `/static/x`, not `/staticx`.
                let trimmed = value.trim_end_matches('/');
                uri = (2, trimmed.len().max(1));
                if !trimmed.is_empty() {
                    let source = format!("{}(/.*)?", regex::escape(trimmed));
                    conditions.push(Condition::Uri(regex(&place.within(".value"), &source)?));
                }
            }
            "RegularExpression" => {
                uri = (1, value.len());
                conditions.push(Condition::Uri(regex(&place.within(".value"), &value)?));
            }
            other => {
                return Err(place.error(format!("type: {other} (Exact, PathPrefix or RegularExpression)")));
            }
        }
    }
    for (h, header) in request.headers.iter().enumerate() {
        let place = place.within(format!(".headers[{h}]"));
        place.refuse(&header.other, "type, name and value")?;
        let matcher = match header.kind.as_deref().unwrap_or("Exact") {
            "Exact" => Matcher::Exact(header.value.clone()),
            "RegularExpression" => regex(&place.within(".value"), &header.value)?,
            other => return Err(place.error(format!("type: {other} (Exact or RegularExpression)"))),
        };
        conditions.push(Condition::Header { name: header.name.to_ascii_lowercase(), matcher, negate: false });
    }
    if let Some(method) = &request.method {
        conditions.push(Condition::Method(Matcher::Exact(method.clone())));
    }
    Ok(((uri.0, uri.1, request.method.is_some(), request.headers.len()), conditions))
}
