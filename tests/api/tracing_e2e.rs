//! The whole local stack in `otel` mode, exporting to a real OTLP receiver in the test (over
//! HTTP and over gRPC): one connected trace per request, no orphan span, and the span count per
//! service and kind of `spans.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::{answer, client};
use crate::otlp::{Received, Receiver};
use crate::spans::{FetchSpans, per_service_kind_with};
use crate::stack::Up;

fn counts(spans: &[Received]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for span in spans {
        *counts.entry((span.service(), span.kind().to_owned())).or_default() += 1;
    }
    counts
}

async fn one_trace_per_request(receiver: Receiver, protocol: &str, fetch: FetchSpans) {
    let endpoint = receiver.endpoint.clone();
    let fetch_spans = if fetch == FetchSpans::On { "true" } else { "false" };
    let mut up = Up::start(
        &["--tracing", "otel"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("BOOKINFO_FETCH_SPANS", fetch_spans),
        ],
    )
    .await;
    let page = format!("http://{}/productpage", up.addr("productpage"));
    let mut seen = BTreeMap::new();
    for i in 0..9u32 {
        // Every other request arrives with a sidecar's context; the others start a trace here.
        let inbound_span = format!("{:016x}", 0xabc0 + i);
        let trace_id = format!("{:032x}", 0x5eed_0000 + i);
        let mut request = client().get(&page).insert_header(("x-request-id", format!("e2e-{i}")));
        if i % 2 == 0 {
            request = request.insert_header(("traceparent", format!("00-{trace_id}-{inbound_span}-01")));
        }
        let answer = answer(request.send()).await;
        assert_eq!(answer.status, 200);
        let version = ["v1", "v2", "v3"]
            .into_iter()
            .find(|v| answer.body.contains(&format!("Reviews served by: reviews-{v}")))
            .expect("a reviews version");
        let parent = (i % 2 == 0).then_some(inbound_span);
        seen.insert(format!("e2e-{i}"), (version, parent));
    }

    for (request_id, (version, inbound_parent)) in &seen {
        let expected: BTreeMap<(String, String), usize> = per_service_kind_with(version, fetch)
            .into_iter()
            .map(|((service, kind), n)| ((service.to_owned(), kind.to_owned()), n))
            .collect();
        let total: usize = expected.values().sum();
        // Find the trace through the request id the SERVER span records.
        let root = receiver
            .trace_where(Duration::from_secs(10), |s| {
                s.kind() == "SERVER"
                    && s.attr_values("http.request.header.x-request-id") == Some(vec![request_id.to_owned()])
            })
            .await
            .unwrap_or_else(|| panic!("no span for {request_id}"));
        let spans = receiver.trace(&root.trace_id(), Duration::from_secs(10), |s| s.len() >= total).await;
        assert_eq!(counts(&spans), expected, "{protocol} {request_id} ({version})");

        let ids: Vec<String> = spans.iter().map(Received::span_id).collect();
        let roots: Vec<&Received> = spans.iter().filter(|s| !ids.contains(&s.parent())).collect();
        assert_eq!(roots.len(), 1, "orphans in {request_id}: {roots:#?}");
        assert_eq!(roots[0].span.name, "GET /productpage");
        assert_eq!(roots[0].parent(), inbound_parent.clone().unwrap_or_default());
        for span in spans.iter().filter(|s| s.service() == "reviews") {
            assert_eq!(span.resource_attr("service.version").as_deref(), Some(*version));
        }
        // Each service's SERVER span is the child of its caller's CLIENT span.
        for server in spans.iter().filter(|s| s.kind() == "SERVER" && s.service() != "productpage") {
            let caller = spans.iter().find(|s| s.span_id() == server.parent()).unwrap();
            assert_eq!(caller.kind(), "CLIENT", "{}", server.span.name);
            assert_eq!(caller.attr("peer.service"), Some(server.service()));
        }
        // Each CLIENT span is the child of its fetch's INTERNAL span, or of its service's
        // SERVER span when there are none.
        for call in spans.iter().filter(|s| s.kind() == "CLIENT") {
            let parent = spans.iter().find(|s| s.span_id() == call.parent()).unwrap();
            assert_eq!(parent.service(), call.service());
            match fetch {
                FetchSpans::On => assert!(parent.span.name.starts_with("fetch "), "{}", parent.span.name),
                FetchSpans::Off => assert_eq!(parent.kind(), "SERVER"),
            }
        }
    }
    up.proc.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success());
}

#[actix_web::test]
async fn the_stack_makes_one_connected_trace_per_request_over_otlp_http() {
    one_trace_per_request(Receiver::http(), "http/protobuf", FetchSpans::Off).await;
}

#[actix_web::test]
async fn the_stack_makes_one_connected_trace_per_request_over_otlp_grpc() {
    // With the INTERNAL fetch spans, the shape BOOKINFO_FETCH_SPANS=true asks for.
    one_trace_per_request(Receiver::grpc().await, "grpc", FetchSpans::On).await;
}
