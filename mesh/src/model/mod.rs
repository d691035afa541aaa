//! Istio routing, read and checked: the rules of every VirtualService, the subsets of every
//! DestinationRule, the ingress gateway's routes; the Gateway API's HTTPRoutes read into the
//! same rules. Both routers work from it: the in-app one ([`crate::decide`]) and Envoy's
//! ([`crate::envoy`]).
//!
//! What either router cannot do is refused when the files are read ([`Routing::parse`], in
//! `parse.rs`), by name, with its file and place: a routing file either means what it says on
//! both, or does not load.

mod parse;
pub(crate) mod re2;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use regex::Regex;

use bookinfo_propagation::baggage::{Baggage, USER};

/// Every routing resource of a set of files.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// Rules of mesh-bound VirtualServices, by service (short name), in file order; then those
    /// of HTTPRoutes attached to the service, in the Gateway API's precedence.
    pub services: BTreeMap<String, Vec<Rule>>,
    /// Rules of VirtualServices bound to the ingress gateway, in file order.
    pub gateway: Vec<GatewayRule>,
    /// Subsets by service: subset name to its `version` label.
    pub subsets: BTreeMap<String, BTreeMap<String, String>>,
    /// Load balancing by service, where a DestinationRule says.
    pub load_balancers: BTreeMap<String, LoadBalancer>,
    /// What applies, but perhaps not as the author thought (a subset no DestinationRule
    /// defines answers 503, as in Istio).
    pub warnings: Vec<String>,
}

/// One HTTP rule of a VirtualService.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The VirtualService's name, or the HTTPRoute's (Istio names multi-destination routes
    /// after it).
    pub virtual_service: String,
    /// The rule's name.
    pub name: Option<String>,
    /// Conditions, any of which selects the rule; none selects every request.
    pub matches: Vec<Match>,
    /// Where requests go; weights add up to 100.
    pub destinations: Vec<Destination>,
    /// Fault: wait this long, for this share (0-100) of requests.
    pub delay: Option<(Duration, f64)>,
    /// Fault: answer this status, for this share (0-100) of requests.
    pub abort: Option<(u16, f64)>,
    /// The route's deadline (none: no deadline, as Istio's default).
    pub timeout: Option<Duration>,
    /// Retries.
    pub retries: Retries,
    /// Changes to the request's headers before it is sent.
    pub request_headers: HeaderEdits,
}

/// Changes to a request's headers (an HTTPRoute's `RequestHeaderModifier`): each header named
/// once across the three, so their order does not matter. Names and values are parsed when the
/// files are read, so a call applies them as they are.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderEdits {
    /// Headers given this value, replacing any.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Headers given this value besides any.
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// Headers taken out.
    pub remove: Vec<HeaderName>,
}

impl HeaderEdits {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }
}

/// The port of the sample Gateway's server (`bookinfo-gateway`: the ingress gateway pod's
/// HTTP port), where no Gateway says otherwise.
pub const GATEWAY_PORT: u16 = 8080;

/// A VirtualService rule at the ingress gateway, with the hosts it serves.
#[derive(Debug, Clone)]
pub struct GatewayRule {
    /// The VirtualService's hosts (`*` for any).
    pub hosts: Vec<String>,
    /// The port of the Gateway server it is bound to, which names its virtual host and the
    /// spans of its routes to several destinations.
    pub port: u16,
    /// The rule.
    pub rule: Rule,
}

/// Conditions that must all hold.
#[derive(Debug, Clone)]
pub struct Match {
    /// Its name (Istio appends it to the rule's).
    pub name: Option<String>,
    /// The conditions.
    pub conditions: Vec<Condition>,
}

/// One condition on a request.
#[derive(Debug, Clone)]
pub enum Condition {
    /// On a header (lower case); `negate` for `withoutHeaders`.
    Header {
        /// The header.
        name: String,
        /// How its value must look.
        matcher: Matcher,
        /// The condition holds when the header does not match.
        negate: bool,
    },
    /// On the path (without the query).
    Uri(Matcher),
    /// On the method.
    Method(Matcher),
}

/// How a value must look.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// Equal to it.
    Exact(String),
    /// Starting with it.
    Prefix(String),
    /// Matching it as a whole (RE2 syntax, Envoy's full-match semantics).
    Regex {
        /// The expression as written.
        source: String,
        /// Compiled, anchored at both ends.
        compiled: Regex,
    },
    /// Present, whatever the value.
    Present,
}

impl Matcher {
    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(exact) => value == exact,
            Matcher::Prefix(prefix) => value.starts_with(prefix.as_str()),
            Matcher::Regex { compiled, .. } => compiled.is_match(value),
            Matcher::Present => true,
        }
    }
}

/// A destination and its share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The service (short name).
    pub host: String,
    /// The subset, if any.
    pub subset: Option<String>,
    /// Share of requests, 0-100.
    pub weight: u32,
}

/// Retries of a route.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Retries {
    /// Istio's default: 2 retries on connection failures and refused streams.
    #[default]
    Default,
    /// `attempts: 0`: none.
    Off,
    /// As the VirtualService says.
    Custom {
        /// Retries at most.
        attempts: u32,
        /// Deadline of each try.
        per_try_timeout: Option<Duration>,
        /// Envoy's retry conditions, and status codes (Istio's default when unset).
        retry_on: Option<String>,
    },
}

/// Load balancing of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadBalancer {
    /// In turn (Istio's default is least request; either spreads evenly here).
    RoundRobin,
    /// At random.
    Random,
    /// To the endpoint with the fewest requests in flight.
    LeastRequest,
}

/// The short name of a service: `reviews.default.svc.cluster.local` and `reviews` are both
/// `reviews`.
pub fn short(host: &str) -> String {
    host.split('.').next().unwrap_or(host).to_owned()
}

impl Routing {
    /// Whether any mesh rule applies to `service`.
    pub fn covers(&self, service: &str) -> bool {
        self.services.contains_key(service)
    }

    /// The signed-in users some rule tells apart, by the `end-user` header or the `user`
    /// baggage member productpage sends for them: what the page can suggest signing in as.
    ///
    /// Candidates are the words written in the rules' own matchers, each kept only if the
    /// matcher accepts the headers productpage sends for that user; a matcher that accepts
    /// any user (a presence test, `.+`) names nobody.
    pub fn routed_users(&self) -> Vec<String> {
        let rules = self.services.values().flatten().chain(self.gateway.iter().map(|g| &g.rule));
        let mut users = BTreeSet::new();
        for condition in rules.flat_map(|r| &r.matches).flat_map(|m| &m.conditions) {
            let Condition::Header { name, matcher, negate: false } = condition else { continue };
            let sent: fn(&str) -> Option<String> = match name.as_str() {
                "end-user" => |user| Some(user.to_owned()),
                "baggage" => |user| {
                    let mut baggage = Baggage::default();
                    baggage.set_user(Some(user));
                    baggage.to_header()
                },
                _ => continue,
            };
            // Accepting a name written nowhere means accepting everybody.
            if sent("no-such-user-0").is_some_and(|value| matcher.matches(&value)) {
                continue;
            }
            let written = match matcher {
                Matcher::Exact(text) | Matcher::Prefix(text) | Matcher::Regex { source: text, .. } => text,
                Matcher::Present => continue,
            };
            let words = written.split(|c: char| !(c.is_alphanumeric() || "_.-".contains(c)));
            for word in words.filter(|w| !w.is_empty() && *w != USER) {
                if sent(word).is_some_and(|value| matcher.matches(&value)) {
                    users.insert(word.to_owned());
                }
            }
        }
        users.into_iter().collect()
    }

    /// The `version` label of `subset` of `service`, if a DestinationRule defines it.
    pub fn version_of(&self, service: &str, subset: &str) -> Option<&str> {
        self.subsets.get(service)?.get(subset).map(String::as_str)
    }
}
