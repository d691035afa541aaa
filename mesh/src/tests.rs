//! The routing model and the in-app router, on the files of `k8s/istio/`, Istio's own samples
//! and hostile input.

use std::path::Path;
use std::time::Duration;

use crate::sidecar::Decision;
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::Routing;
use crate::model::Retries;

const DESTINATION_RULES: &str = include_str!("../../k8s/istio/destination-rules.yaml");
const REVIEWS_BAGGAGE: &str = include_str!("../../k8s/istio/virtual-service-reviews-baggage.yaml");
const RATINGS_DELAY: &str = include_str!("../../k8s/istio/virtual-service-ratings-baggage-delay.yaml");
const GATEWAY: &str = include_str!("../../k8s/istio/gateway.yaml");

fn routing(files: &[&str]) -> Routing {
    let named: Vec<(&Path, &str)> = files.iter().map(|text| (Path::new("test.yaml"), *text)).collect();
    Routing::parse(&named).unwrap()
}

fn error(text: &str) -> String {
    Routing::parse(&[(Path::new("bad.yaml"), text)]).unwrap_err().to_string()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
    }
    map
}

fn decide(routing: &Routing, service: &str, pairs: &[(&'static str, &str)], draw: f64) -> Decision {
    routing.decide(service, "GET", "/reviews/0", &headers(pairs), &mut || draw)
}

fn version(routing: &Routing, service: &str, pairs: &[(&'static str, &str)]) -> Option<String> {
    decide(routing, service, pairs, 0.5).version
}

#[test]
fn the_baggage_regex_matches_members_and_nothing_else() {
    let routing = routing(&[DESTINATION_RULES, REVIEWS_BAGGAGE]);
    assert!(routing.warnings.is_empty(), "{:?}", routing.warnings);
    let matching = [
        "user=jason",
        "team=books,user=jason",
        "user = jason",
        "  user=jason ;ttl=60, x=1",
        "a=1,user=jason;p;q=2,b=2",
        "canary=v3,user=jason",
    ];
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
        "k=v;user=jason",
    ];
    for (baggages, expected) in [(&matching[..], "v2"), (&not_matching[..], "v1")] {
        for baggage in baggages {
            let routed = version(&routing, "reviews", &[("baggage", baggage)]);
            assert_eq!(routed.as_deref(), Some(expected), "{baggage:?}");
        }
    }
    assert_eq!(version(&routing, "reviews", &[("baggage", "canary=v3")]).as_deref(), Some("v3"));
    assert_eq!(version(&routing, "reviews", &[("baggage", "team=a , canary = v3;x")]).as_deref(), Some("v3"));
    assert_eq!(version(&routing, "reviews", &[("baggage", "canary=v33")]).as_deref(), Some("v1"));
    assert_eq!(version(&routing, "reviews", &[]).as_deref(), Some("v1"));
    assert_eq!(
        version(&routing, "reviews", &[("baggage", "team=a"), ("baggage", "user=jason")]).as_deref(),
        Some("v2"),
        "repeated headers are matched joined"
    );
    assert!(!routing.covers("details"));
    assert_eq!(decide(&routing, "details", &[], 0.5), Decision::default());
}

#[test]
fn the_delay_applies_to_jason_only_and_routes_retry_as_istio_does() {
    let routing = routing(&[DESTINATION_RULES, RATINGS_DELAY]);
    let jason = decide(&routing, "ratings", &[("baggage", "user=jason")], 0.99);
    assert_eq!((jason.delay, jason.version.as_deref()), (Some(Duration::from_secs(7)), Some("v1")));
    assert_eq!(jason.retries.attempts, 2, "Istio's default: two retries on connection failures");
    assert_eq!(decide(&routing, "ratings", &[("baggage", "user=eve")], 0.0).delay, None);
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
    let routing = routing(&[DESTINATION_RULES, split]);
    let at = |draw: f64| decide(&routing, "reviews", &[], draw).version;
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
    retries: {attempts: 3, perTryTimeout: 100ms, retryOn: 'gateway-error,503,connect-failure'}
";
    let routing = routing(&[DESTINATION_RULES, rules]);
    let at = |path: &str, pairs: &[(&'static str, &str)]| {
        routing.decide("reviews", "GET", path, &headers(pairs), &mut || 0.5)
    };
    assert_eq!(at("/reviews/0", &[("end-user", "jason")]).version.as_deref(), Some("v2"));
    assert_eq!(at("/reviews/0", &[("end-user", "jasonx")]).refusal, Some(StatusCode::NOT_FOUND));
    assert_eq!(at("/reviews/0", &[("x-canary", "")]).version.as_deref(), Some("v3"));
    assert_eq!(
        at("/reviews/0", &[("x-canary", "1"), ("x-stable", "stable-1")]).refusal,
        Some(StatusCode::NOT_FOUND)
    );
    let by_path = at("/reviews/12?x=1", &[]);
    assert_eq!((by_path.version.as_deref(), by_path.timeout), (Some("v1"), Some(Duration::from_millis(500))));
    assert_eq!(by_path.retries.attempts, 3);
    assert_eq!(by_path.retries.per_try_timeout, Some(Duration::from_millis(100)));
    assert!(by_path.retries.statuses.contains(&503) && by_path.retries.statuses.contains(&504));
}

#[test]
fn faults_abort_and_a_subset_without_a_destination_rule_answers_503() {
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
  - route: [{destination: {host: ratings, subset: v9}}]
";
    let routing = routing(&[DESTINATION_RULES, abort]);
    assert_eq!(
        decide(&routing, "ratings", &[("end-user", "jason")], 0.5).abort,
        Some(StatusCode::INTERNAL_SERVER_ERROR)
    );
    assert_eq!(decide(&routing, "ratings", &[], 0.5).refusal, Some(StatusCode::SERVICE_UNAVAILABLE));
    assert!(
        routing.warnings.iter().any(|w| w.contains("subset v9 of ratings is in no DestinationRule")),
        "{:?}",
        routing.warnings
    );
}

#[test]
fn gateway_routes_are_kept_apart_from_the_mesh() {
    let routing = routing(&[GATEWAY]);
    assert!(routing.services.is_empty());
    assert_eq!(routing.gateway.len(), 1);
    assert_eq!(routing.gateway[0].hosts, ["*"]);
    assert_eq!(routing.gateway[0].rule.matches.len(), 5);
    assert_eq!(routing.gateway[0].port, 8080, "the port of the Gateway's server");

    let two_ports = GATEWAY.replace(
        "    hosts:\n    - \"*\"\n",
        "    hosts: [\"*\"]\n  - port: {number: 9090, name: http-2, protocol: HTTP}\n    hosts: [\"*\"]\n",
    );
    let routing = self::routing(&[&two_ports]);
    assert_eq!(routing.gateway[0].port, 8080, "the first server's");
    assert!(
        routing.warnings.iter().any(|w| w.contains("servers on ports [8080, 9090]")),
        "{:?}",
        routing.warnings
    );
}

#[test]
fn what_neither_router_does_is_an_error_naming_the_field_and_the_file() {
    let vs = |http: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r}}\nspec:\n  hosts: [reviews]\n  http:\n{http}"
        )
    };
    let cases = [
        ("a: [unclosed", "not valid YAML".to_owned()),
        ("", "no VirtualService, DestinationRule or Gateway".to_owned()),
        ("---\n", "no VirtualService, DestinationRule or Gateway".to_owned()),
        (
            "apiVersion: v1\nkind: Service\nmetadata: {name: reviews}",
            "not an Istio networking resource".to_owned(),
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec: {}",
            "ServiceEntry is not supported".to_owned(),
        ),
        (
            &vs("  - mirror: {host: reviews}\n    route: [{destination: {host: reviews}}]"),
            "http[0]: `mirror` is not supported".to_owned(),
        ),
        (
            &vs("  - match: [{queryParams: {u: {exact: t}}}]\n    route: [{destination: {host: reviews}}]"),
            "match[0]: `queryParams` is not supported".to_owned(),
        ),
        (
            &vs(
                "  - match: [{headers: {baggage: {regex: '(unclosed'}}}]\n    route: [{destination: {host: reviews}}]",
            ),
            "http[0].match[0].headers.baggage.regex".to_owned(),
        ),
        (
            &vs(
                "  - fault: {delay: {fixedDelay: soon, percentage: {value: 10}}}\n    route: [{destination: {host: reviews}}]",
            ),
            "fixedDelay".to_owned(),
        ),
        (&vs("  - route: []"), "no destination".to_owned()),
        (
            &vs(
                "  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 4294967296\n    - destination: {host: reviews, subset: v2}\n      weight: 1",
            ),
            "weight: 4294967296".to_owned(),
        ),
        (
            &vs(
                "  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 60\n    - destination: {host: reviews, subset: v2}\n      weight: 60",
            ),
            "add up to 120".to_owned(),
        ),
        (
            &vs(
                "  - fault: {abort: {httpStatus: 999, percentage: {value: 1}}}\n    route: [{destination: {host: reviews}}]",
            ),
            "httpStatus: 999".to_owned(),
        ),
        (
            &vs(
                "  - retries: {attempts: 2, retryOn: sometimes}\n    route: [{destination: {host: reviews}}]",
            ),
            "retryOn".to_owned(),
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: details\n  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}",
            "`tls` is not supported".to_owned(),
        ),
        (
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: b}\nspec:\n  hosts: ['*']\n  gateways: [nowhere]\n  http: [{route: [{destination: {host: productpage}}]}]",
            "gateways: nowhere is defined in none of the files".to_owned(),
        ),
    ];
    for (text, expected) in &cases {
        let err = error(text);
        assert!(
            err.starts_with("bad.yaml: ") && err.contains(expected.as_str()),
            "{err}\n  expected {expected:?}"
        );
    }
}

#[test]
fn retries_read_as_istio_defines_them() {
    let routing = routing(&[REVIEWS_BAGGAGE]);
    assert_eq!(routing.services["reviews"][0].retries, Retries::Default);
    let off = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [reviews]\n  http: [{retries: {attempts: 0}, route: [{destination: {host: reviews}}]}]";
    assert_eq!(self::routing(&[off]).services["reviews"][0].retries, Retries::Off);
}

#[test]
#[ignore = "needs Istio's samples in ../shared/reference/istio-samples: .ci/run runs it"]
fn istios_own_networking_samples_load_or_say_what_they_need() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/istio-samples/networking");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
    let mut loaded = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match Routing::parse(&[(path.as_path(), text.as_str())]) {
            Ok(_) => loaded += 1,
            // Mutual TLS, egress and TLS gateways are not part of the local mesh.
            Err(err) => {
                let err = err.to_string();
                let known =
                    [("mtls", "`tls`"), ("egress", "ServiceEntry"), ("certmanager", "destination.port")];
                assert!(
                    known.iter().any(|(file, why)| name.contains(file) && err.contains(why)),
                    "{name}: {err}"
                );
            }
        }
    }
    assert!(loaded >= 15, "{loaded}");
    let test_v2 = std::fs::read_to_string(dir.join("virtual-service-reviews-test-v2.yaml")).unwrap();
    let routing = routing(&[DESTINATION_RULES, &test_v2]);
    assert_eq!(version(&routing, "reviews", &[("end-user", "jason")]).as_deref(), Some("v2"));
    assert_eq!(version(&routing, "reviews", &[("end-user", "eve")]).as_deref(), Some("v1"));
    assert_eq!(routing.routed_users(), ["jason"]);
}

#[test]
fn the_users_routing_tells_apart_are_those_its_matchers_accept() {
    assert_eq!(routing(&[DESTINATION_RULES, REVIEWS_BAGGAGE, RATINGS_DELAY]).routed_users(), ["jason"]);
    assert!(routing(&[DESTINATION_RULES]).routed_users().is_empty());
    let vs = |header: &str, matcher: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: r}}\nspec:\n  hosts: [reviews]\n  http:\n  - match: [{{headers: {{{header}: {matcher}}}}}]\n    route: [{{destination: {{host: reviews}}}}]"
        )
    };
    let users = |header: &str, matcher: &str| routing(&[&vs(header, matcher)]).routed_users();
    assert_eq!(users("end-user", "{exact: eve}"), ["eve"]);
    assert_eq!(users("end-user", "{regex: '(mallory|eve)'}"), ["eve", "mallory"]);
    assert_eq!(users("baggage", "{regex: '(.*,)?user=(trent|peggy)(,.*)?'}"), ["peggy", "trent"]);
    assert_eq!(users("baggage", "{exact: user=victor}"), ["victor"]);
    // Matchers that name no one: any value, another member, another header.
    assert!(users("end-user", "{regex: '.+'}").is_empty());
    assert!(users("baggage", "{regex: '(.*,)?canary=v3(,.*)?'}").is_empty());
    assert!(users("x-user", "{exact: jason}").is_empty());
    let without = vs("end-user", "{exact: jason}").replace("match: [{headers:", "match: [{withoutHeaders:");
    assert!(routing(&[&without]).routed_users().is_empty());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn routing() -> Routing {
        super::routing(&[DESTINATION_RULES, REVIEWS_BAGGAGE])
    }

    proptest! {
        /// Any text as a routing file: an error or a routing, never a panic.
        #[test]
        fn any_text_is_an_error_or_a_routing(text in ".{0,400}") {
            let _ = Routing::parse(&[(Path::new("any.yaml"), text.as_str())]);
        }

        /// Any baggage: routed somewhere, never a panic.
        #[test]
        fn any_header_value_is_routed(value in "[ -~]{0,300}") {
            let routing = routing();
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static("baggage"), value);
            }
            let decision = routing.decide("reviews", "GET", "/reviews/0", &headers, &mut || 0.5);
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
            let routing = routing();
            let route = |list: &[String]| {
                let mut headers = HeaderMap::new();
                headers.insert(HeaderName::from_static("baggage"), HeaderValue::from_str(&list.join(",")).unwrap());
                routing.decide("reviews", "GET", "/reviews/0", &headers, &mut || 0.5).version
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
