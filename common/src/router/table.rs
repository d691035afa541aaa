//! The validated routing table and the routing decision.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::RouteError;
use super::istio::{self, DestinationRule, Other, StringMatch, VirtualService};
use crate::config::parse_duration;

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
    /// A VirtualService exists for the service but no rule matched: Envoy answers 404.
    pub no_route: bool,
}

/// Istio routing rules by service.
#[derive(Debug, Default)]
pub struct RouteTable {
    rules: BTreeMap<String, Vec<Rule>>,
}

#[derive(Debug, Clone)]
struct Rule {
    matches: Vec<Vec<Condition>>,
    destinations: Vec<(Option<String>, u64)>,
    delay: Option<(Duration, f64)>,
    abort: Option<(StatusCode, f64)>,
    timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
enum Condition {
    Header { name: String, matcher: Matcher, negate: bool },
    Uri(Matcher),
    Method(Matcher),
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Prefix(String),
    Regex(Regex),
    Present,
}

impl Matcher {
    fn matches(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(exact) => value == exact,
            Matcher::Prefix(prefix) => value.starts_with(prefix.as_str()),
            Matcher::Regex(regex) => regex.is_match(value),
            Matcher::Present => true,
        }
    }
}

impl Condition {
    fn holds(&self, method: &str, path: &str, headers: &HeaderMap) -> bool {
        match self {
            Condition::Header { name, matcher, negate } => {
                // Envoy matches a repeated header as its values joined by commas.
                let values: Vec<&str> =
                    headers.get_all(name.as_str()).filter_map(|v| v.to_str().ok()).collect();
                let found = !values.is_empty() && matcher.matches(&values.join(","));
                found != *negate
            }
            Condition::Uri(matcher) => matcher.matches(path),
            Condition::Method(matcher) => matcher.matches(method),
        }
    }
}

impl RouteTable {
    /// Reads YAML files (several documents each); returns the table and what is ignored.
    ///
    /// # Errors
    /// Invalid YAML, a resource that does not deserialise, an invalid regex, duration,
    /// percentage or status, naming the file and the place in it.
    pub fn parse(files: &[(&Path, &str)]) -> Result<(Self, Vec<String>), RouteError> {
        let mut services = Vec::new();
        let mut rules = Vec::new();
        let mut notes = Vec::new();
        for (path, text) in files {
            let invalid = |message: String| RouteError::Invalid { path: path.to_path_buf(), message };
            let documents: Vec<Value> =
                serde_saphyr::from_multiple(text).map_err(|err| invalid(format!("not valid YAML: {err}")))?;
            for (index, document) in documents.into_iter().enumerate() {
                if document.is_null() {
                    continue;
                }
                let kind = document.get("kind").and_then(Value::as_str).unwrap_or_default().to_owned();
                let api = document.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
                let at = format!("document {}", index + 1);
                if !api.starts_with("networking.istio.io/") {
                    notes.push(format!(
                        "{}: {at}: {kind} ({api}) is not an Istio networking resource: ignored",
                        path.display()
                    ));
                    continue;
                }
                match kind.as_str() {
                    "VirtualService" => {
                        let vs: VirtualService = serde_json::from_value(document)
                            .map_err(|err| invalid(format!("{at}: VirtualService: {err}")))?;
                        services.push((path.display().to_string(), vs));
                    }
                    "DestinationRule" => {
                        let dr: DestinationRule = serde_json::from_value(document)
                            .map_err(|err| invalid(format!("{at}: DestinationRule: {err}")))?;
                        rules.push((path.display().to_string(), dr));
                    }
                    other => notes.push(format!(
                        "{}: {at}: {other} is not used for local routing: ignored",
                        path.display()
                    )),
                }
            }
        }

        // Subset name -> version label, per service.
        let mut versions: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (file, dr) in &rules {
            let place = format!("{file}: DestinationRule {}", dr.metadata.name);
            ignored(&mut notes, &place, &dr.spec.other);
            let host = short(&dr.spec.host);
            for subset in &dr.spec.subsets {
                ignored(&mut notes, &format!("{place}, subset {}", subset.name), &subset.other);
                match subset.labels.get("version") {
                    Some(version) => {
                        versions
                            .entry(host.clone())
                            .or_default()
                            .insert(subset.name.clone(), version.clone());
                    }
                    None => notes.push(format!(
                        "{place}, subset {}: no version label: not usable locally",
                        subset.name
                    )),
                }
            }
        }

        let mut table = RouteTable::default();
        for (file, vs) in services {
            let place = format!("{file}: VirtualService {}", vs.metadata.name);
            ignored(&mut notes, &place, &vs.spec.other);
            if !vs.spec.gateways.is_empty() && !vs.spec.gateways.iter().any(|g| g == "mesh") {
                notes.push(format!("{place}: applies at gateways {:?} only: ignored", vs.spec.gateways));
                continue;
            }
            for (r, route) in vs.spec.http.iter().enumerate() {
                let at = format!("{place}, http[{r}]");
                let rule = compile(&at, route, &vs.spec.hosts, &versions, &mut notes)
                    .map_err(|message| RouteError::Invalid { path: file.clone().into(), message })?;
                for host in &vs.spec.hosts {
                    table.rules.entry(short(host)).or_default().push(rule.clone());
                }
            }
        }
        Ok((table, notes))
    }

    /// Whether any rule applies to `service`.
    pub fn covers(&self, service: &str) -> bool {
        self.rules.contains_key(service)
    }

    /// Routes one call to `service`, drawing uniform numbers in `[0, 1)` from `draw` for weights
    /// and fault percentages. The first rule whose conditions hold decides.
    pub fn route_with(
        &self,
        service: &str,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        draw: &mut dyn FnMut() -> f64,
    ) -> Decision {
        let Some(rules) = self.rules.get(service) else {
            return Decision::default();
        };
        let path = path.split('?').next().unwrap_or_default();
        let Some(rule) = rules.iter().find(|rule| {
            rule.matches.is_empty()
                || rule.matches.iter().any(|all| all.iter().all(|c| c.holds(method, path, headers)))
        }) else {
            return Decision { no_route: true, ..Decision::default() };
        };
        let total: u64 = rule.destinations.iter().map(|(_, weight)| weight).sum();
        let mut point = draw() * total as f64;
        let version = rule
            .destinations
            .iter()
            .find(|(_, weight)| {
                point -= *weight as f64;
                point < 0.0
            })
            .or(rule.destinations.last())
            .and_then(|(version, _)| version.clone());
        let delay = rule.delay.filter(|(_, percent)| draw() * 100.0 < *percent).map(|(delay, _)| delay);
        let abort = rule.abort.filter(|(_, percent)| draw() * 100.0 < *percent).map(|(status, _)| status);
        Decision { version, delay, abort, timeout: rule.timeout, no_route: false }
    }

    /// [`route_with`](Self::route_with) with the thread's random numbers.
    pub fn route(&self, service: &str, method: &str, path: &str, headers: &HeaderMap) -> Decision {
        self.route_with(service, method, path, headers, &mut || rand::random::<f64>())
    }
}

/// `reviews.default.svc.cluster.local` and `reviews` both name `reviews`.
fn short(host: &str) -> String {
    host.split('.').next().unwrap_or(host).to_owned()
}

fn ignored(notes: &mut Vec<String>, place: &str, other: &Other) {
    for field in other.keys() {
        notes.push(format!("{place}: `{field}` is not applied locally: ignored"));
    }
}

fn compile(
    at: &str,
    route: &istio::HttpRoute,
    hosts: &[String],
    versions: &BTreeMap<String, BTreeMap<String, String>>,
    notes: &mut Vec<String>,
) -> Result<Rule, String> {
    ignored(notes, at, &route.other);
    let mut matches = Vec::new();
    for (m, request) in route.matches.iter().enumerate() {
        let at = format!("{at}.match[{m}]");
        ignored(notes, &at, &request.other);
        let mut all = Vec::new();
        for (negate, field, headers) in
            [(false, "headers", &request.headers), (true, "withoutHeaders", &request.without_headers)]
        {
            for (name, string_match) in headers {
                let matcher = matcher(&format!("{at}.{field}.{name}"), string_match, notes)?;
                all.push(Condition::Header { name: name.to_ascii_lowercase(), matcher, negate });
            }
        }
        if let Some(uri) = &request.uri {
            all.push(Condition::Uri(matcher(&format!("{at}.uri"), uri, notes)?));
        }
        if let Some(method) = &request.method {
            all.push(Condition::Method(matcher(&format!("{at}.method"), method, notes)?));
        }
        matches.push(all);
    }

    if route.route.is_empty() {
        return Err(format!("{at}.route: no destination"));
    }
    let mut destinations = Vec::new();
    for (d, destination) in route.route.iter().enumerate() {
        let at = format!("{at}.route[{d}]");
        ignored(notes, &at, &destination.other);
        ignored(notes, &format!("{at}.destination"), &destination.destination.other);
        let host = short(&destination.destination.host);
        if !hosts.iter().any(|h| short(h) == host) {
            notes.push(format!("{at}: destination {host} is another service: not applied locally"));
        }
        let weight = match (destination.weight, route.route.len()) {
            (None, 1) => 100,
            (None, _) => 0,
            (Some(w), _) if w >= 0 => w as u64,
            (Some(w), _) => return Err(format!("{at}.weight: {w} is negative")),
        };
        let version = destination.destination.subset.as_ref().map(|subset| {
            versions.get(&host).and_then(|v| v.get(subset)).cloned().unwrap_or_else(|| {
                notes.push(format!(
                    "{at}: subset {subset} of {host} is in no DestinationRule: taken as version {subset}"
                ));
                subset.clone()
            })
        });
        destinations.push((version, weight));
    }
    if destinations.iter().all(|(_, weight)| *weight == 0) {
        return Err(format!("{at}.route: every weight is 0"));
    }

    let percent = |at: &str,
                   percentage: &Option<istio::Percent>,
                   percent: Option<i64>,
                   notes: &mut Vec<String>| {
        match (percentage, percent) {
            (Some(p), _) if (0.0..=100.0).contains(&p.value) => Ok(p.value),
            (Some(p), _) => Err(format!("{at}.percentage: {} is not within 0-100", p.value)),
            (None, Some(p)) if (0..=100).contains(&p) => Ok(p as f64),
            (None, Some(p)) => Err(format!("{at}.percent: {p} is not within 0-100")),
            (None, None) => {
                notes.push(format!("{at}: no percentage, so Istio applies it to no request"));
                Ok(0.0)
            }
        }
    };
    let (mut delay, mut abort) = (None, None);
    if let Some(fault) = &route.fault {
        if let Some(d) = &fault.delay {
            let at = format!("{at}.fault.delay");
            ignored(notes, &at, &d.other);
            let fixed = d.fixed_delay.as_deref().ok_or_else(|| format!("{at}: no fixedDelay"))?;
            let duration = parse_duration(fixed)
                .ok_or_else(|| format!("{at}.fixedDelay: {fixed:?} is not a duration"))?;
            delay = Some((duration, percent(&at, &d.percentage, d.percent, notes)?));
        }
        if let Some(a) = &fault.abort {
            let at = format!("{at}.fault.abort");
            ignored(notes, &at, &a.other);
            let code = a.http_status.ok_or_else(|| format!("{at}: no httpStatus"))?;
            let status =
                StatusCode::from_u16(code).map_err(|_| format!("{at}.httpStatus: {code} is not a status"))?;
            abort = Some((status, percent(&at, &a.percentage, None, notes)?));
        }
    }
    let timeout = match &route.timeout {
        None => None,
        Some(t) => Some(parse_duration(t).ok_or_else(|| format!("{at}.timeout: {t:?} is not a duration"))?),
    };
    Ok(Rule { matches, destinations, delay, abort, timeout })
}

fn matcher(at: &str, string_match: &StringMatch, notes: &mut Vec<String>) -> Result<Matcher, String> {
    ignored(notes, at, &string_match.other);
    match (&string_match.exact, &string_match.prefix, &string_match.regex) {
        (Some(exact), None, None) => Ok(Matcher::Exact(exact.clone())),
        (None, Some(prefix), None) => Ok(Matcher::Prefix(prefix.clone())),
        (None, None, Some(regex)) => RegexBuilder::new(&format!("^(?:{regex})$"))
            .size_limit(1 << 20)
            .build()
            .map(Matcher::Regex)
            .map_err(|err| format!("{at}.regex: {err}")),
        (None, None, None) => Ok(Matcher::Present),
        _ => Err(format!("{at}: exact, prefix and regex are exclusive")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    const DESTINATION_RULES: &str = include_str!("../../../k8s/istio/destination-rules.yaml");
    const REVIEWS_BAGGAGE: &str = include_str!("../../../k8s/istio/virtual-service-reviews-baggage.yaml");
    const RATINGS_DELAY: &str = include_str!("../../../k8s/istio/virtual-service-ratings-baggage-delay.yaml");

    fn table(files: &[&str]) -> (RouteTable, Vec<String>) {
        let named: Vec<(&Path, &str)> = files.iter().map(|text| (Path::new("test.yaml"), *text)).collect();
        RouteTable::parse(&named).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn version(table: &RouteTable, service: &str, pairs: &[(&'static str, &str)]) -> Option<String> {
        table.route_with(service, "GET", "/reviews/0", &headers(pairs), &mut || 0.5).version
    }

    #[test]
    fn the_baggage_regex_matches_members_and_nothing_else() {
        let (table, notes) = table(&[DESTINATION_RULES, REVIEWS_BAGGAGE]);
        assert!(notes.is_empty(), "{notes:?}");
        let matching = [
            "user=jason",
            "team=books,user=jason",
            "user = jason",
            "  user=jason ;ttl=60, x=1",
            "a=1,user=jason;p;q=2,b=2",
            "canary=v3,user=jason",
        ];
        for baggage in matching {
            assert_eq!(
                version(&table, "reviews", &[("baggage", baggage)]).as_deref(),
                Some("v2"),
                "{baggage:?}"
            );
        }
        let not_matching = [
            "",
            "xuser=jason",
            "user=jason2",
            "user=jasonx",
            "myuser=jason,team=x",
            "user=json",
            "team=jason",
            "user=eve,note=jason",
            "user=%20jason",
        ];
        for baggage in not_matching {
            assert_eq!(
                version(&table, "reviews", &[("baggage", baggage)]).as_deref(),
                Some("v1"),
                "{baggage:?}"
            );
        }
        assert_eq!(version(&table, "reviews", &[("baggage", "canary=v3")]).as_deref(), Some("v3"));
        assert_eq!(
            version(&table, "reviews", &[("baggage", "team=a , canary = v3;x")]).as_deref(),
            Some("v3")
        );
        assert_eq!(version(&table, "reviews", &[("baggage", "canary=v33")]).as_deref(), Some("v1"));
        assert_eq!(version(&table, "reviews", &[]).as_deref(), Some("v1"));
        assert_eq!(
            version(&table, "reviews", &[("baggage", "team=a"), ("baggage", "user=jason")]).as_deref(),
            Some("v2"),
            "repeated headers are matched joined"
        );
        assert!(!table.covers("details"));
        assert_eq!(table.route("details", "GET", "/details/0", &HeaderMap::new()), Decision::default());
    }

    #[test]
    fn the_delay_applies_to_jason_only() {
        let (table, _) = table(&[DESTINATION_RULES, RATINGS_DELAY]);
        let jason = table.route_with(
            "ratings",
            "GET",
            "/ratings/0",
            &headers(&[("baggage", "user=jason")]),
            &mut || 0.99,
        );
        assert_eq!(jason.delay, Some(Duration::from_secs(7)));
        assert_eq!(jason.version.as_deref(), Some("v1"));
        let other = table.route_with(
            "ratings",
            "GET",
            "/ratings/0",
            &headers(&[("baggage", "user=eve")]),
            &mut || 0.0,
        );
        assert_eq!(other.delay, None);
    }

    #[test]
    fn weights_split_by_the_draw() {
        let split = r"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 80
    - destination: {host: reviews, subset: v2}
      weight: 20
";
        let (table, notes) = table(&[DESTINATION_RULES, split]);
        assert!(notes.is_empty(), "{notes:?}");
        let at = |draw: f64| table.route_with("reviews", "GET", "/", &HeaderMap::new(), &mut || draw).version;
        assert_eq!(at(0.0).as_deref(), Some("v1"));
        assert_eq!(at(0.79).as_deref(), Some("v1"));
        assert_eq!(at(0.8).as_deref(), Some("v2"));
        assert_eq!(at(0.999).as_deref(), Some("v2"));
    }

    #[test]
    fn conditions_cover_exact_prefix_presence_absence_uri_and_method() {
        let rules = r"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers: {end-user: {exact: jason}}
    route: [{destination: {host: reviews, subset: v2}}]
  - match:
    - headers: {x-canary: {}}
      withoutHeaders: {x-stable: {prefix: stable}}
    route: [{destination: {host: reviews, subset: v3}}]
  - match:
    - uri: {prefix: /reviews/1}
      method: {exact: GET}
    route: [{destination: {host: reviews, subset: v1}}]
    timeout: 0.5s
";
        let (table, _) = table(&[DESTINATION_RULES, rules]);
        let decide = |path: &str, pairs: &[(&'static str, &str)]| {
            table.route_with("reviews", "GET", path, &headers(pairs), &mut || 0.5)
        };
        assert_eq!(decide("/reviews/0", &[("end-user", "jason")]).version.as_deref(), Some("v2"));
        assert!(decide("/reviews/0", &[("end-user", "jasonx")]).no_route);
        assert_eq!(decide("/reviews/0", &[("x-canary", "")]).version.as_deref(), Some("v3"));
        assert!(decide("/reviews/0", &[("x-canary", "1"), ("x-stable", "stable-1")]).no_route);
        let by_path = decide("/reviews/12?x=1", &[]);
        assert_eq!(
            (by_path.version.as_deref(), by_path.timeout),
            (Some("v1"), Some(Duration::from_millis(500)))
        );
    }

    #[test]
    fn istio_fault_samples_load_and_abort() {
        let abort = r"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    fault: {abort: {percentage: {value: 100.0}, httpStatus: 500}}
    route: [{destination: {host: ratings, subset: v1}}]
  - route: [{destination: {host: ratings, subset: v1}}]
";
        let (table, _) = table(&[DESTINATION_RULES, abort]);
        let jason = table.route_with("ratings", "GET", "/", &headers(&[("end-user", "jason")]), &mut || 0.5);
        assert_eq!(jason.abort, Some(StatusCode::INTERNAL_SERVER_ERROR));
        assert_eq!(table.route_with("ratings", "GET", "/", &HeaderMap::new(), &mut || 0.5).abort, None);
    }

    #[test]
    fn what_is_not_applied_locally_is_reported() {
        let text = r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec: {}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: ['*']
  gateways: [bookinfo-gateway]
  http: [{route: [{destination: {host: productpage}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - retries: {attempts: 3}
    match: [{queryParams: {u: {exact: test}}}]
    route: [{destination: {host: reviews, subset: v4}}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews}
";
        let (_, notes) = table(&[text]);
        let expected = [
            "Gateway is not used",
            "gateways",
            "`retries`",
            "`queryParams`",
            "subset v4",
            "not an Istio networking resource",
        ];
        for expected in expected {
            assert!(notes.iter().any(|n| n.contains(expected)), "no note about {expected}: {notes:#?}");
        }
    }

    #[test]
    fn invalid_files_are_errors_naming_the_place() {
        let cases = [
            ("a: [unclosed", "not valid YAML"),
            (
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: 3}",
                "VirtualService",
            ),
            (
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - match: [{headers: {baggage: {regex: '(unclosed'}}}]\n    route: [{destination: {host: r}}]",
                "http[0].match[0].headers.baggage.regex",
            ),
            (
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - fault: {delay: {fixedDelay: soon, percentage: {value: 10}}}\n    route: [{destination: {host: r}}]",
                "fixedDelay",
            ),
            (
                "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http: [{route: []}]",
                "no destination",
            ),
        ];
        for (text, expected) in cases {
            let err = RouteTable::parse(&[(Path::new("bad.yaml"), text)]).unwrap_err().to_string();
            assert!(err.starts_with("bad.yaml: ") && err.contains(expected), "{err}");
        }
    }

    #[test]
    fn istios_own_networking_samples_load() {
        let dir =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/istio-samples/networking");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            eprintln!("note: {} not found; skipping", dir.display());
            return;
        };
        let mut loaded = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(err) = RouteTable::parse(&[(path.as_path(), text.as_str())]) {
                panic!("{err}");
            }
            loaded += 1;
        }
        assert!(loaded >= 10);
        let test_v2 = std::fs::read_to_string(dir.join("virtual-service-reviews-test-v2.yaml")).unwrap();
        let (table, _) = table(&[DESTINATION_RULES, &test_v2]);
        assert_eq!(version(&table, "reviews", &[("end-user", "jason")]).as_deref(), Some("v2"));
        assert_eq!(version(&table, "reviews", &[("end-user", "eve")]).as_deref(), Some("v1"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};
    use proptest::prelude::*;

    const RULES: &str = include_str!("../../../k8s/istio/destination-rules.yaml");
    const REVIEWS: &str = include_str!("../../../k8s/istio/virtual-service-reviews-baggage.yaml");

    fn table() -> RouteTable {
        RouteTable::parse(&[(Path::new("rules"), RULES), (Path::new("reviews"), REVIEWS)]).unwrap().0
    }

    proptest! {
        /// Any text as a routing file: an error or a table, never a panic.
        #[test]
        fn any_text_is_an_error_or_a_table(text in ".{0,400}") {
            let _ = RouteTable::parse(&[(Path::new("any.yaml"), text.as_str())]);
        }

        /// Any baggage: routed somewhere, never a panic.
        #[test]
        fn any_header_value_is_routed(value in "[ -~]{0,300}") {
            let table = table();
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static("baggage"), value);
            }
            let decision = table.route("reviews", "GET", "/reviews/0", &headers);
            prop_assert!(decision.version.is_some());
        }

        /// `user=jason` among any other members (and spaces, properties) picks v2; the same
        /// list without it never does.
        #[test]
        fn jason_is_found_among_any_members(
            before in proptest::collection::vec("[a-t]{1,6}=[a-z0-9]{0,6}", 0..4),
            after in proptest::collection::vec("[a-t]{1,6}=[a-z0-9]{0,6}(;[a-z]{1,3})?", 0..4),
            spaces in " {0,2}",
        ) {
            let table = table();
            let route = |list: &[String]| {
                let mut headers = HeaderMap::new();
                headers.insert(HeaderName::from_static("baggage"), HeaderValue::from_str(&list.join(",")).unwrap());
                table.route("reviews", "GET", "/reviews/0", &headers).version
            };
            let mut with = before.clone();
            with.push(format!("{spaces}user{spaces}={spaces}jason{spaces};p=1"));
            with.extend(after.iter().cloned());
            prop_assert_eq!(route(&with), Some("v2".to_owned()));
            let without: Vec<String> = before.into_iter().chain(after).collect();
            prop_assert_eq!(route(&without), Some("v1".to_owned()));
        }
    }
}
