//! The mesh harness: the tests play the sidecars' part. Requests carry what Envoy sends (B3
//! multi from Istio's Zipkin provider, or W3C only from its OpenTelemetry provider) into a real
//! productpage process whose upstreams are stand-ins recording what they receive, and whose
//! spans go to a real OTLP receiver. Both tracing modes.

use std::time::Duration;

use crate::helpers::{Canned, Capture, answer, client, details_body};
use crate::otlp::{Received, Receiver};
use crate::process::Served;
use crate::spans::{self, FetchSpans};

pub const TRACE: &str = "80f198ee56343ba864fe8b2a57d3eff7";
pub const SPAN: &str = "e457b5a2e4d86bd1";
pub const REQUEST_ID: &str = "6f1c3c9e-3a0e-9d5b-a1f4-0e1d2c3b4a59";

/// The spans productpage alone makes for one page (the stand-ins make none).
pub fn page_spans() -> usize {
    spans::of_service("productpage", "v1", FetchSpans::Off)
}

const REVIEWS_BODY: &str = r#"{"id": "0","podname": "reviews-v1","clustername": "null","reviews": []}"#;

/// What Istio's sidecar adds to a request with the Zipkin provider.
pub fn envoy_b3(sampled: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-request-id", REQUEST_ID.to_owned()),
        ("x-b3-traceid", TRACE.to_owned()),
        ("x-b3-spanid", SPAN.to_owned()),
        ("x-b3-parentspanid", "05e3ac9a4f6e3b90".to_owned()),
        ("x-b3-sampled", sampled.to_owned()),
        ("x-envoy-decorator-operation", "productpage.default.svc.cluster.local:9080/productpage".to_owned()),
        ("x-envoy-attempt-count", "1".to_owned()),
        ("x-forwarded-proto", "http".to_owned()),
        ("user-agent", "curl/8.5.0".to_owned()),
        ("baggage", "team=books".to_owned()),
        ("cookie", "theme=dark".to_owned()),
    ]
}

/// A productpage process in `mode`, between stand-in upstreams and a receiver.
pub struct Harness {
    pub productpage: Served,
    pub details: Capture,
    pub reviews: Capture,
    pub receiver: Receiver,
}

impl Harness {
    pub async fn start(mode: &str, env: &[(&str, &str)]) -> Self {
        Self::with_receiver(mode, env, Receiver::http()).await
    }

    pub async fn with_receiver(mode: &str, env: &[(&str, &str)], receiver: Receiver) -> Self {
        Self::with(mode, env, receiver, Canned::json(&details_body())).await
    }

    /// With details answering `details`.
    pub async fn with(mode: &str, env: &[(&str, &str)], receiver: Receiver, details: Canned) -> Self {
        let details = Capture::start(details);
        let reviews = Capture::start(Canned::json(REVIEWS_BODY));
        let details_port = details.app.addr.port().to_string();
        let reviews_port = reviews.app.addr.port().to_string();
        let mut all = vec![
            ("BOOKINFO_TRACING", mode),
            ("DETAILS_HOSTNAME", "127.0.0.1"),
            ("DETAILS_SERVICE_PORT", &details_port),
            ("REVIEWS_HOSTNAME", "127.0.0.1"),
            ("REVIEWS_SERVICE_PORT", &reviews_port),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
        ];
        all.extend_from_slice(env);
        let productpage = Served::start("productpage", &[], &all).await;
        Self { productpage, details, reviews, receiver }
    }

    /// `GET /productpage` with `headers` (appended, so repeats stay repeats); must answer 200.
    pub async fn page(&self, headers: &[(&str, String)]) {
        let mut request = client().get(self.productpage.url("/productpage"));
        for (name, value) in headers {
            request = request.append_header((*name, value.as_str()));
        }
        let answer = answer(request.send()).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }

    /// Signs in as `user`; the `cookie` header value of the session.
    pub async fn login(&self, user: &str) -> String {
        let request = client()
            .post(self.productpage.url("/login"))
            .insert_header(("content-type", "application/x-www-form-urlencoded"));
        let answer = answer(request.send_body(format!("username={user}"))).await;
        answer.header("set-cookie").unwrap().split(';').next().unwrap().to_owned()
    }

    /// The headers the details and the reviews stand-ins received for the first page.
    pub fn upstream_requests(&self) -> [crate::helpers::Received; 2] {
        [self.details.received()[0].clone(), self.reviews.received()[0].clone()]
    }

    /// Stops productpage (flushing its spans) and returns what it printed.
    pub async fn stop(self) -> (String, Receiver) {
        let (status, output) = self.productpage.stop().await;
        assert!(status.success(), "{status}\n{output}");
        (output, self.receiver)
    }
}

pub fn find<'a>(spans: &'a [Received], kind: &str, name: &str) -> &'a Received {
    spans.iter().find(|s| s.kind() == kind && s.span.name == name).unwrap_or_else(|| {
        panic!("no {kind} {name} in {:#?}", spans.iter().map(|s| &s.span.name).collect::<Vec<_>>())
    })
}

const ALLOWLISTED: [&str; 5] = ["x-request-id", "x-b3-traceid", "user-agent", "baggage", "cookie"];

#[actix_web::test]
async fn propagate_copies_the_allowlist_verbatim_and_makes_no_spans() {
    let harness = Harness::start("propagate", &[]).await;
    let inbound = envoy_b3("1");
    harness.page(&inbound).await;
    for received in harness.upstream_requests() {
        for (name, value) in &inbound {
            let expected = if name.starts_with("x-envoy") || *name == "x-forwarded-proto" {
                None
            } else {
                Some(value.as_str())
            };
            assert_eq!(received.get(name), expected, "{name} on {}", received.path);
        }
        assert_eq!(received.get("traceparent"), None, "nothing is invented");
        assert_eq!(received.get("end-user"), None);
    }
    let (output, receiver) = harness.stop().await;
    assert!(output.contains("tracing: propagate"), "{output}");
    assert!(output.contains(&format!("request_id=\"{REQUEST_ID}\"")), "the access log names the request");
    assert!(!output.contains("trace_id="), "no span, no trace id in the log");
    assert!(receiver.spans().is_empty(), "no spans in propagate mode");
}

#[actix_web::test]
async fn otel_continues_envoys_b3_trace_and_the_next_hop_is_a_child_of_the_client_span() {
    let harness = Harness::start("otel", &[]).await;
    harness.page(&envoy_b3("1")).await;
    let [details, reviews] = harness.upstream_requests();
    let (output, receiver) = harness.stop().await;
    let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await;
    assert_eq!(spans.len(), page_spans(), "{spans:#?}");

    let server = find(&spans, "SERVER", "GET /productpage");
    assert_eq!(server.parent(), SPAN, "the app's span is a child of the sidecar's");
    assert_eq!(server.service(), "productpage");
    assert_eq!(server.attr("http.route").as_deref(), Some("/productpage"));
    assert_eq!(server.attr("http.request.method").as_deref(), Some("GET"));
    assert_eq!(server.attr("url.path").as_deref(), Some("/productpage"));
    assert_eq!(server.attr("url.scheme").as_deref(), Some("http"));
    assert_eq!(server.attr("user_agent.original").as_deref(), Some("curl/8.5.0"));
    assert_eq!(server.attr("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(server.attr_values("http.request.header.x-request-id"), Some(vec![REQUEST_ID.to_owned()]));
    assert_eq!(server.attr("url.query"), None, "no query, no attribute");
    assert_eq!(server.attr("http.request.method_original"), None, "a known method is itself");
    for (upstream, received) in [("details", &details), ("reviews", &reviews)] {
        let call = spans
            .iter()
            .find(|s| s.kind() == "CLIENT" && s.attr("peer.service").as_deref() == Some(upstream))
            .unwrap();
        assert_eq!(call.parent(), server.span_id(), "no span between the request's and its calls'");
        assert_eq!(call.span.name, format!("GET /{upstream}/{{id}}"));
        assert_eq!(call.attr("url.template"), Some(format!("/{upstream}/{{id}}")));
        assert!(call.attr("url.full").unwrap().ends_with(&format!("/{upstream}/0")));
        assert_eq!(call.attr("server.address").as_deref(), Some("127.0.0.1"));
        assert_eq!(call.attr("http.response.status_code").as_deref(), Some("200"));
        // The next sidecar continues from the app's CLIENT span, in both header families.
        assert_eq!(received.get("traceparent"), Some(format!("00-{TRACE}-{}-01", call.span_id()).as_str()));
        assert_eq!(received.get("x-b3-traceid"), Some(TRACE));
        assert_eq!(received.get("x-b3-spanid"), Some(call.span_id().as_str()));
        assert_eq!(received.get("x-b3-sampled"), Some("1"));
        assert_eq!(received.get("x-b3-parentspanid"), None, "the sidecar's ids are not copied on");
        assert_eq!(received.get("baggage"), Some("team=books"));
        assert_eq!(received.get("x-request-id"), Some(REQUEST_ID));
        assert_eq!(received.get("user-agent"), Some("curl/8.5.0"));
        assert_eq!(received.get("cookie"), Some("theme=dark"));
        assert_eq!(received.get("x-envoy-decorator-operation"), None);
    }
    assert_eq!(find(&spans, "INTERNAL", "render productpage").parent(), server.span_id());
    let log = output.lines().find(|l| l.contains("route=\"/productpage\"")).expect("an access-log line");
    assert!(
        log.contains(&format!("trace_id=\"{TRACE}\""))
            && log.contains(&format!("span_id=\"{}\"", server.span_id())),
        "{log}"
    );
    assert!(log.contains(&format!("request_id=\"{REQUEST_ID}\"")) && log.contains("status=200"), "{log}");
}

#[actix_web::test]
async fn an_unknown_method_is_other_and_a_query_is_recorded() {
    let harness = Harness::start("otel", &[]).await;
    let mut request = client().request(
        actix_web::http::Method::from_bytes(b"BREW").unwrap(),
        harness.productpage.url("/productpage?u=normal"),
    );
    request = request.insert_header(("traceparent", format!("00-{TRACE}-{SPAN}-01")));
    let refused = answer(request.send()).await;
    assert!(refused.status >= 400 && refused.status < 500, "{}", refused.status);
    let (_, receiver) = harness.stop().await;
    let server = receiver
        .trace_where(Duration::from_secs(5), |s| s.kind() == "SERVER" && s.trace_id() == TRACE)
        .await
        .expect("the request's SERVER span");
    // A client cannot mint span names: the method is `_OTHER`, the span `HTTP ...`.
    assert!(server.span.name.starts_with("HTTP"), "{}", server.span.name);
    assert_eq!(server.attr("http.request.method").as_deref(), Some("_OTHER"));
    assert_eq!(server.attr("http.request.method_original").as_deref(), Some("BREW"));
    assert_eq!(server.attr("url.query").as_deref(), Some("u=normal"));
}

#[actix_web::test]
async fn fetch_spans_put_an_internal_span_between_the_request_and_each_call_when_asked() {
    let harness = Harness::start("otel", &[("BOOKINFO_FETCH_SPANS", "true")]).await;
    harness.page(&envoy_b3("1")).await;
    let [details, _] = harness.upstream_requests();
    let (_, receiver) = harness.stop().await;
    let expected = spans::of_service("productpage", "v1", FetchSpans::On);
    let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= expected).await;
    assert_eq!(spans.len(), expected, "{spans:#?}");
    let server = find(&spans, "SERVER", "GET /productpage");
    for (internal, upstream) in [("fetch details", "details"), ("fetch reviews", "reviews")] {
        let internal = find(&spans, "INTERNAL", internal);
        assert_eq!(internal.parent(), server.span_id());
        let call = spans
            .iter()
            .find(|s| s.kind() == "CLIENT" && s.attr("peer.service").as_deref() == Some(upstream))
            .unwrap();
        assert_eq!(call.parent(), internal.span_id());
        if upstream == "details" {
            assert_eq!(details.get("x-b3-spanid"), Some(call.span_id().as_str()));
        }
    }
}

#[actix_web::test]
async fn otel_reads_w3c_only_input_and_writes_both_families() {
    let harness = Harness::start("otel", &[]).await;
    harness.page(&[("traceparent", format!("00-{TRACE}-{SPAN}-01"))]).await;
    let [details, _] = harness.upstream_requests();
    let (_, receiver) = harness.stop().await;
    let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await;
    let server = find(&spans, "SERVER", "GET /productpage");
    assert_eq!(server.parent(), SPAN);
    assert!(details.get("traceparent").unwrap().starts_with(&format!("00-{TRACE}-")));
    assert_eq!(details.get("x-b3-traceid"), Some(TRACE));
}

#[actix_web::test]
async fn otel_continues_a_b3_trace_whose_sampled_flag_is_spelt_true() {
    let harness = Harness::start("otel", &[]).await;
    harness.page(&envoy_b3("true")).await;
    let [details, _] = harness.upstream_requests();
    let (_, receiver) = harness.stop().await;
    let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await;
    assert_eq!(find(&spans, "SERVER", "GET /productpage").parent(), SPAN, "not a new root");
    assert_eq!(details.get("x-b3-traceid"), Some(TRACE));
    assert_eq!(details.get("x-b3-sampled"), Some("1"));
}

#[actix_web::test]
async fn an_unsampled_request_exports_nothing_and_passes_the_decision_on() {
    for inbound in [envoy_b3("0"), vec![("traceparent", format!("00-{TRACE}-{SPAN}-00"))]] {
        let harness = Harness::start("otel", &[]).await;
        harness.page(&inbound).await;
        let [details, _] = harness.upstream_requests();
        let (_, receiver) = harness.stop().await;
        assert!(details.get("traceparent").unwrap().ends_with("-00"), "{:?}", details.get("traceparent"));
        assert_eq!(details.get("x-b3-sampled"), Some("0"));
        assert_eq!(details.get("x-b3-traceid"), Some(TRACE));
        assert!(receiver.spans().is_empty(), "unsampled spans were exported");
    }
}

#[actix_web::test]
async fn the_b3_debug_flag_keeps_a_trace_sampled() {
    let harness = Harness::start("otel", &[]).await;
    harness.page(&[("b3", format!("{TRACE}-{SPAN}-d"))]).await;
    let [details, _] = harness.upstream_requests();
    let (_, receiver) = harness.stop().await;
    let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await;
    assert_eq!(find(&spans, "SERVER", "GET /productpage").parent(), SPAN);
    // Debug implies sampled, and is passed on as such.
    assert_eq!(details.get("x-b3-flags"), Some("1"));
    assert!(details.get("traceparent").unwrap().ends_with("-01"));
}

/// Hostile or broken tracing headers, each alone.
fn malformed() -> Vec<Vec<(&'static str, String)>> {
    vec![
        vec![("traceparent", "garbage".to_owned())],
        vec![("traceparent", format!("00-{}-{SPAN}-01", "0".repeat(32)))],
        vec![("traceparent", format!("00-{TRACE}-{}-01", "0".repeat(16)))],
        vec![("traceparent", format!("00-{}-{SPAN}-01", &TRACE[..30]))],
        vec![("traceparent", format!("00-{}-{SPAN}-01", "z".repeat(32)))],
        vec![("b3", "a".repeat(10_000))],
        vec![
            ("x-b3-traceid", "not-hex".to_owned()),
            ("x-b3-spanid", SPAN.to_owned()),
            ("x-b3-sampled", "1".to_owned()),
        ],
        vec![("baggage", "=;;,,=".to_owned())],
        vec![("traceparent", "garbage".to_owned()), ("traceparent", "more garbage".to_owned())],
    ]
}

#[actix_web::test]
async fn otel_starts_a_fresh_trace_on_malformed_headers() {
    let harness = Harness::start("otel", &[]).await;
    let cases = malformed();
    for inbound in &cases {
        harness.page(inbound).await;
    }
    let details = harness.details.received();
    let (_, receiver) = harness.stop().await;
    let roots: Vec<_> = receiver.spans().into_iter().filter(|s| s.kind() == "SERVER").collect();
    assert_eq!(roots.len(), cases.len());
    for root in &roots {
        assert_eq!(root.parent(), "", "a fresh root");
        assert_ne!(root.trace_id(), TRACE);
        assert_ne!(root.trace_id(), "0".repeat(32));
    }
    for received in &details {
        let traceparent = received.get("traceparent").unwrap();
        assert!(
            roots.iter().any(|r| traceparent.starts_with(&format!("00-{}-", r.trace_id()))),
            "{traceparent}"
        );
        assert_eq!(received.all("traceparent").len(), 1);
    }
}

#[actix_web::test]
async fn propagate_forwards_malformed_headers_exactly_as_received() {
    let harness = Harness::start("propagate", &[]).await;
    let cases = malformed();
    for inbound in &cases {
        harness.page(inbound).await;
    }
    let details = harness.details.received();
    for (inbound, received) in cases.iter().zip(&details) {
        for (name, _) in inbound {
            let sent: Vec<&str> =
                inbound.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
            // productpage, the edge, reads baggage (to own its `user` member): a malformed one
            // is dropped there.
            let expected = if *name == "baggage" { Vec::new() } else { sent };
            assert_eq!(received.all(name), expected, "{name}");
        }
        assert_eq!(received.get("traceparent").is_some(), inbound.iter().any(|(n, _)| *n == "traceparent"));
    }
    harness.stop().await;
}

#[actix_web::test]
async fn ids_in_the_log_and_allowlist_hold_in_both_modes() {
    for mode in ["propagate", "otel"] {
        let harness = Harness::start(mode, &[]).await;
        harness.page(&envoy_b3("1")).await;
        for received in harness.upstream_requests() {
            for name in ALLOWLISTED {
                assert!(received.get(name).is_some(), "{mode}: {name} missing on {}", received.path);
            }
            assert_eq!(received.get("x-forwarded-proto"), None);
        }
        harness.stop().await;
    }
}

#[actix_web::test]
async fn the_edge_owns_the_user_member_and_end_user_in_both_modes() {
    for mode in ["propagate", "otel"] {
        let harness = Harness::start(mode, &[]).await;
        let spoof = |cookie: Option<String>| {
            let mut headers = vec![
                ("baggage", "team=books,user=eve".to_owned()),
                ("baggage", "canary=v3;ttl=60".to_owned()),
                ("end-user", "eve".to_owned()),
                ("b3", format!("{TRACE}-{SPAN}-1")),
            ];
            headers.extend(cookie.map(|c| ("cookie", c)));
            headers
        };
        harness.page(&spoof(None)).await;
        let jason = harness.login("jason").await;
        harness.page(&spoof(Some(jason))).await;
        for received in [&harness.details.received(), &harness.reviews.received()] {
            let [anonymous, signed_in] = [&received[0], &received[1]];
            assert_eq!(anonymous.all("baggage"), ["team=books,canary=v3;ttl=60"], "{mode}");
            assert_eq!(anonymous.get("end-user"), None, "{mode}");
            assert_eq!(signed_in.all("baggage"), ["user=jason,team=books,canary=v3;ttl=60"], "{mode}");
            assert_eq!(signed_in.all("end-user"), ["jason"], "{mode}");
        }
        let (_, receiver) = harness.stop().await;
        if mode == "otel" {
            // The routed-for user is on every span of the signed-in request, none of the other.
            let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= 2 * page_spans()).await;
            assert_eq!(spans.len(), 2 * page_spans());
            let tagged = spans.iter().filter(|s| s.attr("baggage.user").as_deref() == Some("jason")).count();
            assert_eq!(tagged, page_spans(), "{spans:#?}");
            assert!(spans.iter().all(|s| s.attr("baggage.user").as_deref() != Some("eve")));
        }
    }
}

#[actix_web::test]
async fn the_signed_in_user_reaches_upstreams_with_baggage_at_the_w3c_limits_in_both_modes() {
    // A client's baggage at the limits: 64 members, then 8192 bytes in 8 members.
    let members: Vec<String> = (0..64).map(|i| format!("k{i}=v")).collect();
    let mut large: Vec<String> = (0..8).map(|i| format!("m{i}={}", "x".repeat(1020))).collect();
    large[7].push('x');
    let sent = [members.join(","), large.join(",")];
    assert_eq!(sent[1].len(), 8192);
    for mode in ["propagate", "otel"] {
        let harness = Harness::start(mode, &[]).await;
        let jason = harness.login("jason").await;
        for baggage in &sent {
            harness.page(&[("baggage", baggage.clone()), ("cookie", jason.clone())]).await;
        }
        for received in [harness.details.received(), harness.reviews.received()] {
            for (request, sent) in received.iter().zip(&sent) {
                let [baggage] = request.all("baggage")[..] else {
                    panic!("{mode}: {:?}", request.all("baggage"))
                };
                let others =
                    baggage.strip_prefix("user=jason,").unwrap_or_else(|| panic!("{mode}: {baggage:.60}"));
                assert!(baggage.len() <= 8192 && baggage.split(',').count() <= 64, "{mode}: {baggage:.60}");
                assert!(sent.starts_with(others), "{mode}: the other members pass in order");
                assert_eq!(request.get("end-user"), Some("jason"), "{mode}");
            }
        }
        harness.stop().await;
    }
}
