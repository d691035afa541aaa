//! The standard `OTEL_*` variables, each seen from outside a real productpage process, and
//! export never hurting serving: a dead, black-holed or slow collector, a full queue, SIGTERM.

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use crate::helpers::{Canned, Capture};
use crate::mesh::{Harness, REQUEST_ID, SPAN, TRACE, envoy_b3, find, page_spans};
use crate::otlp::Receiver;

fn b3_single(sampled: &str) -> Vec<(&'static str, String)> {
    vec![("b3", format!("{TRACE}-{SPAN}-{sampled}"))]
}

#[actix_web::test]
async fn otel_sdk_disabled_forwards_like_propagate_and_makes_no_spans() {
    let harness = Harness::start("otel", &[("OTEL_SDK_DISABLED", "true")]).await;
    harness.page(&envoy_b3("1")).await;
    let [details, _] = harness.upstream_requests();
    let (output, receiver) = harness.stop().await;
    assert_eq!(details.get("x-b3-spanid"), Some(SPAN), "copied verbatim");
    assert_eq!(details.get("x-b3-parentspanid"), Some("05e3ac9a4f6e3b90"));
    assert_eq!(details.get("traceparent"), None);
    assert!(output.contains("OTEL_SDK_DISABLED=true"), "{output}");
    assert!(receiver.spans().is_empty());
}

#[actix_web::test]
async fn otel_propagators_choose_what_is_read_and_written() {
    // b3: the single header, read from either form.
    let harness = Harness::start("otel", &[("OTEL_PROPAGATORS", "b3")]).await;
    harness.page(&envoy_b3("1")).await;
    let [details, _] = harness.upstream_requests();
    harness.stop().await;
    let b3 = details.get("b3").unwrap();
    assert!(b3.starts_with(&format!("{TRACE}-")) && b3.ends_with("-1"), "{b3}");
    assert_eq!((details.get("x-b3-traceid"), details.get("traceparent")), (None, None));

    // tracecontext only: Envoy's B3 is not read (a new trace), and not passed on either: each
    // call is a new span, so a received context would be stale, and the next hop could take
    // its parent from it.
    let harness = Harness::start("otel", &[("OTEL_PROPAGATORS", "tracecontext")]).await;
    harness.page(&envoy_b3("1")).await;
    let [details, _] = harness.upstream_requests();
    harness.stop().await;
    assert!(!details.get("traceparent").unwrap().contains(TRACE));
    assert_eq!((details.get("x-b3-spanid"), details.get("x-b3-traceid")), (None, None));
    assert_eq!(details.get("x-request-id"), Some(REQUEST_ID), "the rest of the allowlist still goes");

    // jaeger: uber-trace-id in and out.
    let harness = Harness::start("otel", &[("OTEL_PROPAGATORS", "jaeger")]).await;
    harness.page(&[("uber-trace-id", format!("{TRACE}:{SPAN}:0:1"))]).await;
    let [details, _] = harness.upstream_requests();
    let (_, receiver) = harness.stop().await;
    let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await;
    assert_eq!(find(&spans, "SERVER", "GET /productpage").parent(), SPAN);
    let uber = details.get("uber-trace-id").unwrap();
    assert!(uber.starts_with(&format!("{TRACE}:")) && uber.ends_with(":0:1"), "{uber}");

    // none: nothing read or written; the allowlist still goes through.
    let harness = Harness::start("otel", &[("OTEL_PROPAGATORS", "none")]).await;
    harness.page(&envoy_b3("1")).await;
    let [details, _] = harness.upstream_requests();
    harness.stop().await;
    assert_eq!(details.get("traceparent"), None);
    assert_eq!(details.get("x-b3-spanid"), Some(SPAN));
}

#[actix_web::test]
async fn otel_traces_exporter_console_prints_spans_and_none_exports_nothing() {
    let harness = Harness::start("otel", &[("OTEL_TRACES_EXPORTER", "console")]).await;
    harness.page(&b3_single("1")).await;
    let (output, receiver) = harness.stop().await;
    assert!(
        output.contains(&format!("span productpage SERVER \"GET /productpage\" trace={TRACE}")),
        "{output}"
    );
    assert!(receiver.spans().is_empty(), "console only");

    let harness = Harness::start("otel", &[("OTEL_TRACES_EXPORTER", "none")]).await;
    harness.page(&b3_single("1")).await;
    let [details, _] = harness.upstream_requests();
    let (_, receiver) = harness.stop().await;
    assert!(receiver.spans().is_empty());
    assert!(details.get("traceparent").unwrap().contains(TRACE), "the trace still goes on");
}

#[actix_web::test]
async fn otel_traces_sampler_and_its_argument_are_honoured() {
    // Nothing is recorded, and the decision is passed on.
    let harness = Harness::start("otel", &[("OTEL_TRACES_SAMPLER", "always_off")]).await;
    harness.page(&[]).await;
    let [details, _] = harness.upstream_requests();
    let (_, receiver) = harness.stop().await;
    assert!(receiver.spans().is_empty());
    assert!(details.get("traceparent").unwrap().ends_with("-00"));

    // A ratio of 0 records no new trace, yet follows a caller that sampled.
    let harness = Harness::start(
        "otel",
        &[("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0")],
    )
    .await;
    harness.page(&[]).await;
    harness.page(&b3_single("1")).await;
    let (_, receiver) = harness.stop().await;
    let spans = receiver.spans();
    assert!(!spans.is_empty() && spans.iter().all(|s| s.trace_id() == TRACE), "only the caller's trace");
}

#[actix_web::test]
async fn otel_exporter_otlp_traces_endpoint_wins_over_the_base_endpoint() {
    let receiver = Receiver::http();
    let traces = format!("{}/v1/traces", receiver.endpoint);
    let dead = crate::helpers::dead_upstream().url("");
    let env = [("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces.as_str())];
    let harness = Harness::with_receiver("otel", &env, receiver.announced_at(dead)).await;
    harness.page(&b3_single("1")).await;
    let (_, receiver) = harness.stop().await;
    assert_eq!(
        receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await.len(),
        page_spans()
    );
}

#[actix_web::test]
async fn otel_exporter_otlp_headers_and_gzip_compression_reach_the_collector() {
    let env = [
        ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20t0ken,x-tenant=bookinfo"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
    ];
    let harness = Harness::with_receiver("otel", &env, Receiver::http()).await;
    harness.page(&b3_single("1")).await;
    let (_, receiver) = harness.stop().await;
    // The receiver inflates gzip bodies only when told to: whole spans prove both ends agree.
    let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await;
    assert_eq!(spans.len(), page_spans());
    let exports = receiver.exports();
    assert!(!exports.is_empty());
    for headers in exports {
        assert_eq!(headers.get("content-encoding").unwrap(), "gzip");
        assert_eq!(headers.get("authorization").unwrap(), "Bearer t0ken");
        assert_eq!(headers.get("x-tenant").unwrap(), "bookinfo");
    }
}

#[actix_web::test]
async fn otel_exporter_otlp_compression_gzip_works_over_grpc_too() {
    let env = [("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")];
    let harness = Harness::with_receiver("otel", &env, Receiver::grpc().await).await;
    harness.page(&b3_single("1")).await;
    let (_, receiver) = harness.stop().await;
    let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await;
    assert_eq!(spans.len(), page_spans());
}

#[actix_web::test]
async fn otel_service_name_and_resource_attributes_reach_the_resource() {
    let env = [
        ("OTEL_SERVICE_NAME", "productpage-custom"),
        ("OTEL_RESOURCE_ATTRIBUTES", "k8s.pod.name=productpage-v1-abc,k8s.namespace.name=bookinfo-otel"),
    ];
    let harness = Harness::start("otel", &env).await;
    harness.page(&b3_single("1")).await;
    let (_, receiver) = harness.stop().await;
    let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await;
    let server = find(&spans, "SERVER", "GET /productpage");
    assert_eq!(server.service(), "productpage-custom");
    assert_eq!(server.resource_attr("k8s.pod.name").as_deref(), Some("productpage-v1-abc"));
    assert_eq!(server.resource_attr("k8s.namespace.name").as_deref(), Some("bookinfo-otel"));
    assert_eq!(server.resource_attr("service.version").as_deref(), Some("v1"));
}

#[actix_web::test]
async fn a_health_probe_starts_no_trace_but_one_within_a_trace_is_part_of_it() {
    let harness = Harness::start("otel", &[]).await;
    let probe = |headers: Vec<(&'static str, String)>| {
        let mut request = crate::helpers::client().get(harness.productpage.url("/health"));
        for (name, value) in headers {
            request = request.insert_header((name, value));
        }
        crate::helpers::answer(request.send())
    };
    for _ in 0..3 {
        assert_eq!(probe(vec![("user-agent", "kube-probe/1.31".to_owned())]).await.status, 200);
    }
    assert_eq!(probe(b3_single("1")).await.status, 200);
    harness.page(&[]).await;
    let (_, receiver) = harness.stop().await;
    let health: Vec<_> = receiver.spans().into_iter().filter(|s| s.span.name == "GET /health").collect();
    assert_eq!(health.len(), 1, "only the probe that came in a trace: {health:?}");
    assert_eq!((health[0].trace_id(), health[0].parent()), (TRACE.to_owned(), SPAN.to_owned()));
    assert!(receiver.spans().iter().any(|s| s.span.name == "GET /productpage"), "pages are traced");
}

#[actix_web::test]
async fn sigterm_flushes_spans_still_waiting_for_their_batch() {
    let harness = Harness::start("otel", &[("OTEL_BSP_SCHEDULE_DELAY", "60000")]).await;
    harness.page(&b3_single("1")).await;
    // Not a wait for an event: the time an export that ignored the schedule would have had.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(harness.receiver.spans().is_empty(), "nothing before the batch is due");
    let (output, receiver) = harness.stop().await;
    assert_eq!(receiver.spans().len(), page_spans(), "{output}");
    assert!(output.contains("spans flushed"));
}

#[actix_web::test]
async fn invalid_values_are_reported_and_replaced_by_defaults() {
    let env = [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots"),
        ("OTEL_PROPAGATORS", "xray"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
    ];
    let harness = Harness::start("otel", &env).await;
    harness.page(&envoy_b3("1")).await;
    let [details, _] = harness.upstream_requests();
    let (output, receiver) = harness.stop().await;
    for name in [
        "OTEL_TRACES_SAMPLER=\"sometimes\"",
        "OTEL_BSP_MAX_QUEUE_SIZE=\"lots\"",
        "OTEL_PROPAGATORS=\"xray\"",
        "OTEL_EXPORTER_OTLP_PROTOCOL=\"carrier-pigeon\"",
    ] {
        assert!(
            output.lines().any(|l| l.contains("WARN") && l.contains(name)),
            "no warning for {name}:\n{output}"
        );
    }
    assert!(details.get("traceparent").unwrap().contains(TRACE), "default propagators");
    assert_eq!(
        receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await.len(),
        page_spans()
    );
}

#[actix_web::test]
async fn a_failed_call_marks_the_client_span_but_not_the_page() {
    let harness = Harness::with("otel", &[], Receiver::http(), Canned::status(503)).await;
    harness.page(&b3_single("1")).await;
    let (_, receiver) = harness.stop().await;
    let spans = receiver.trace(TRACE, Duration::from_secs(5), |s| s.len() >= page_spans()).await;
    let call = spans
        .iter()
        .find(|s| s.kind() == "CLIENT" && s.attr("peer.service").as_deref() == Some("details"))
        .unwrap();
    assert!(call.is_error());
    assert_eq!(call.attr("http.response.status_code").as_deref(), Some("503"));
    assert_eq!(call.attr("error.type").as_deref(), Some("503"));
    let server = find(&spans, "SERVER", "GET /productpage");
    assert!(!server.is_error(), "the page itself answered 200");
    // What productpage logged about it is an event of the request's span.
    let event = server.span.events.iter().find(|e| e.name == "upstream call failed");
    assert!(event.is_some(), "{:#?}", server.span.events);
}

/// Page latencies with spans going to `collector`: none may wait on export.
async fn pages_with_collector(endpoint: &str, extra: &[(&str, &str)]) -> (Vec<Duration>, Duration, String) {
    let mut env = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint), ("OTEL_BSP_SCHEDULE_DELAY", "20")];
    env.extend_from_slice(extra);
    let harness = Harness::with_receiver("otel", &env, Receiver::http()).await;
    let mut latencies = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        harness.page(&b3_single("1")).await;
        latencies.push(start.elapsed());
        // Pages spread over several export rounds (one every 20 ms), not one burst.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let start = Instant::now();
    let (output, _) = harness.stop().await;
    (latencies, start.elapsed(), output)
}

fn assert_unhurt(name: &str, latencies: &[Duration], stop: Duration) {
    let worst = latencies.iter().max().unwrap();
    // A page that waited on an export would wait for the collector: 2 s at the least (the full
    // queue's deadline), 3 s for the slow one, 30 s for the black hole. A page takes a few ms;
    // the bound leaves room for a loaded machine.
    assert!(*worst < Duration::from_secs(1), "{name}: a page took {worst:?}");
    // Shutdown waits at most 5 s for the last spans, where the black hole's export would hold
    // it 30 s; the rest of the bound is for a loaded machine.
    assert!(stop < Duration::from_secs(15), "{name}: stopping took {stop:?}");
}

#[actix_web::test]
async fn a_dead_collector_neither_slows_nor_fails_requests() {
    let dead = crate::helpers::dead_upstream().url("");
    let (latencies, stop, _) = pages_with_collector(&dead, &[]).await;
    assert_unhurt("dead", &latencies, stop);
}

#[actix_web::test]
async fn a_black_holed_collector_neither_slows_nor_fails_requests() {
    // Accepts connections (the kernel's backlog) and never answers.
    let hole = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let endpoint = format!("http://{}", hole.local_addr().unwrap());
    let (latencies, stop, _) =
        pages_with_collector(&endpoint, &[("OTEL_EXPORTER_OTLP_TIMEOUT", "30000")]).await;
    assert_unhurt("black hole", &latencies, stop);
    drop(hole);
}

#[actix_web::test]
async fn a_slow_collector_neither_slows_nor_fails_requests() {
    let slow = Capture::start(Canned::status(200).after(Duration::from_secs(3)));
    let (latencies, stop, _) = pages_with_collector(&slow.app.url(""), &[]).await;
    assert_unhurt("slow", &latencies, stop);
}

#[actix_web::test]
async fn a_collector_answering_errors_neither_slows_nor_fails_requests() {
    let failing = Capture::start(Canned::status(500));
    let (latencies, stop, _) = pages_with_collector(&failing.app.url(""), &[]).await;
    assert_unhurt("failing", &latencies, stop);
    assert!(!failing.received().is_empty(), "exports were attempted");
}

#[actix_web::test]
async fn a_full_queue_drops_and_counts_spans_instead_of_growing() {
    let hole = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let endpoint = format!("http://{}", hole.local_addr().unwrap());
    let limits = [("OTEL_BSP_MAX_QUEUE_SIZE", "4"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")];
    let (latencies, stop, output) = pages_with_collector(&endpoint, &limits).await;
    assert_unhurt("full queue", &latencies, stop);
    assert!(output.contains("dropped"), "{output}");
    drop(hole);
}
