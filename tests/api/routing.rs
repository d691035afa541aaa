//! Baggage-driven routing on the local stack, with the Istio files of `k8s/istio/`: the member
//! set at the edge picks the reviews version and reaches ratings, in both tracing modes.

use std::time::{Duration, Instant};

use crate::helpers::{Canned, Capture, answer, client, served_by, sign_in, spawn_productpage, spawn_reviews};
use crate::otlp::Receiver;
use crate::stack::Up;

const DESTINATION_RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/istio/destination-rules.yaml");
const REVIEWS_BAGGAGE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/k8s/istio/virtual-service-reviews-baggage.yaml");

async fn login(page: &str, user: &str) -> String {
    sign_in(page.trim_end_matches("/productpage"), user).await
}

/// `n` pages with `headers`; the versions that served them.
async fn pages(page: &str, headers: &[(&str, &str)], n: usize) -> Vec<&'static str> {
    let mut versions = Vec::with_capacity(n);
    for _ in 0..n {
        let mut request = client().get(page);
        for (name, value) in headers {
            request = request.append_header((*name, *value));
        }
        let answer = answer(request.send()).await;
        assert_eq!(answer.status, 200);
        versions.push(served_by(&answer.body).unwrap_or("none"));
    }
    versions
}

async fn baggage_routes_reviews(mode: &str) {
    let receiver = Receiver::http();
    let routes = format!("{DESTINATION_RULES},{REVIEWS_BAGGAGE}");
    let env =
        [("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let mut up = Up::start(&["--tracing", mode, "--routes", &routes], &env).await;
    let page = format!("http://{}/productpage", up.addr("productpage"));
    let form = crate::helpers::get(&page).await.body;
    assert!(form.contains("Sign in as <b>jason</b> to see"), "{mode}: the form names the routed user");
    let jason = login(&page, "jason").await;

    assert_eq!(pages(&page, &[("cookie", &jason)], 50).await, ["v2"; 50], "{mode}: jason");
    assert_eq!(pages(&page, &[], 50).await, ["v1"; 50], "{mode}: anonymous");
    let spoof = [("baggage", "user=jason")];
    assert_eq!(pages(&page, &spoof, 20).await, ["v1"; 20], "{mode}: a client's own user member");
    let canary = [("baggage", "team=books, canary=v3;ttl=1")];
    assert_eq!(pages(&page, &canary, 20).await, ["v3"; 20], "{mode}: canary");

    if mode == "otel" {
        // The member productpage set is on ratings' own span: it crossed reviews.
        let ratings = receiver
            .trace_where(Duration::from_secs(10), |s| {
                s.service() == "ratings"
                    && s.kind() == "SERVER"
                    && s.attr("baggage.user").as_deref() == Some("jason")
            })
            .await;
        assert!(ratings.is_some(), "no ratings span with baggage.user=jason");
    }
    up.proc.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success());
}

#[actix_web::test]
async fn baggage_routes_reviews_in_propagate_mode() {
    baggage_routes_reviews("propagate").await;
}

#[actix_web::test]
async fn baggage_routes_reviews_in_otel_mode() {
    baggage_routes_reviews("otel").await;
}

/// A rule deeper in the graph, on reviews' call to ratings, keyed on the same member.
const RATINGS_DELAY: &str = r"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match:
    - headers:
        baggage: {regex: '(.*,)?\s*user\s*=\s*jason\s*(;[^,]*)?(,.*)?'}
    fault: {delay: {fixedDelay: 1s, percentage: {value: 100}}}
    route: [{destination: {host: ratings, subset: v1}}]
  - route: [{destination: {host: ratings, subset: v1}}]
";

async fn a_rule_on_reviews_call_to_ratings_sees_the_member(mode: &str) {
    let dir = std::env::temp_dir().join(format!("bookinfo-routing-{mode}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let delay = dir.join("ratings-delay.yaml");
    std::fs::write(&delay, RATINGS_DELAY).unwrap();
    let routes = format!("{DESTINATION_RULES},{REVIEWS_BAGGAGE},{}", delay.display());
    let mut up = Up::start(&["--tracing", mode, "--routes", &routes], &[]).await;
    let page = format!("http://{}/productpage", up.addr("productpage"));
    let jason = login(&page, "jason").await;
    let timed = |headers: Vec<(&'static str, String)>| {
        let page = page.clone();
        async move {
            let start = Instant::now();
            let mut request = client().get(page);
            for (name, value) in headers {
                request = request.insert_header((name, value));
            }
            let answer = answer(request.send()).await;
            (start.elapsed(), answer.count("glyphicon glyphicon-star"))
        }
    };
    let (slow, stars) = timed(vec![("cookie", jason)]).await;
    assert!(slow >= Duration::from_secs(1), "{mode}: jason's ratings call was not delayed ({slow:?})");
    assert_eq!(stars, 9, "v2 waits up to 10 s for ratings");
    // Every page of another user would take the 1 s delay at least; a loaded machine can hold
    // one page up as long, so the fastest of three counts.
    let mut fast = Duration::MAX;
    for _ in 0..3 {
        fast = fast.min(timed(vec![("baggage", "canary=v3".to_owned())]).await.0);
    }
    assert!(fast < Duration::from_secs(1), "{mode}: others are not delayed ({fast:?} at best)");
    up.proc.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success());
    std::fs::remove_dir_all(dir).unwrap();
}

#[actix_web::test]
async fn a_rule_on_reviews_call_to_ratings_sees_the_member_in_propagate_mode() {
    a_rule_on_reviews_call_to_ratings_sees_the_member("propagate").await;
}

#[actix_web::test]
async fn a_rule_on_reviews_call_to_ratings_sees_the_member_in_otel_mode() {
    a_rule_on_reviews_call_to_ratings_sees_the_member("otel").await;
}

#[actix_web::test]
async fn the_member_set_at_the_edge_arrives_at_ratings_in_propagate_mode() {
    let ratings = Capture::start(Canned::json(r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#));
    let reviews = spawn_reviews("v2", Some(&ratings.app), &[]);
    let productpage = spawn_productpage(None, Some(&reviews), None, &[]);
    let page = productpage.url("/productpage");
    let jason = login(&page, "jason").await;
    let request = client()
        .get(&page)
        .insert_header(("cookie", jason))
        .insert_header(("baggage", "user=eve,team=books"))
        .insert_header(("end-user", "eve"));
    assert_eq!(answer(request.send()).await.status, 200);
    let received = &ratings.received()[0];
    assert_eq!(received.all("baggage"), ["user=jason,team=books"]);
    assert_eq!(received.all("end-user"), ["jason"]);
}

#[actix_web::test]
async fn a_routes_file_that_is_not_istio_yaml_stops_the_stack_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("bookinfo-bad-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec: {hosts: [r], http: [{route: []}]}\n").unwrap();
    let mut up =
        crate::process::Proc::start(&["up", "--base-port", "0", "--routes", &bad.display().to_string()], &[]);
    let status = up.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(64));
    let output = up.output();
    assert!(output.contains("bad.yaml") && output.contains("http[0].route: no destination"), "{output}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// The ambient overlays' routes (Gateway API: a Gateway of class istio, HTTPRoutes bound to it
/// and to the reviews Service) are routes the local stack takes too: jason gets reviews v2.
#[actix_web::test]
async fn the_ambient_overlays_gateway_api_routes_route_the_local_stack() {
    let routes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("k8s/components/ambient/routes.yaml");
    let mut up = Up::start(&["--routes", routes.to_str().unwrap(), "--tracing", "propagate"], &[]).await;
    let page = format!("http://{}/productpage", up.addr("productpage"));
    let cookie = login(&page, "jason").await;
    let served = pages(&page, &[("cookie", cookie.as_str())], 5).await;
    assert!(served.iter().all(|v| *v == "v2"), "{served:?}");
    let served = pages(&page, &[], 5).await;
    assert!(served.iter().all(|v| *v == "v1"), "{served:?}");
    up.proc.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success(), "{}", up.proc.output());
}
