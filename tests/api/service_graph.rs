//! The service graph of `bookinfo up`'s trace store, `/api/dependencies`: a run of synthetic
//! Bookinfo traces, sent as OTLP protobuf the way the services send theirs, gives exactly the
//! calls they hold, in Jaeger's shape, with the database as a node and failures counted; a run
//! of real pages gives the calls the pages made.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{answer, client, get};
use crate::stack::Up;
use crate::wait::eventually;

/// Spans in one synthetic page.
pub const SPANS_PER_PAGE: usize = 8;

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// One page as the services' OTLP exports carry it, started at `start` (ns): productpage calls
/// details and reviews, reviews calls ratings, ratings queries MySQL. With `details_fails`,
/// details' SERVER span has an error status.
pub fn page(trace: u32, start: u64, details_fails: bool) -> Vec<u8> {
    let trace_id: Vec<u8> = [trace.to_be_bytes().as_slice(), &[0x5e; 12]].concat();
    let span = |id: u64, parent: Option<u64>, kind: i32, name: &str, attributes: Vec<KeyValue>| Span {
        trace_id: trace_id.clone(),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
        name: name.into(),
        kind,
        start_time_unix_nano: start + id * 1_000_000,
        end_time_unix_nano: start + 20_000_000 - id * 1_000_000,
        attributes,
        ..Span::default()
    };
    let (server, client) = (2, 3);
    let mut details = span(3, Some(2), server, "GET /details/{id}", vec![]);
    if details_fails {
        details.status = Some(Status { code: status::StatusCode::Error.into(), ..Status::default() });
    }
    let services = [
        (
            "productpage",
            vec![
                span(1, None, server, "GET /productpage", vec![text("http.route", "/productpage")]),
                span(2, Some(1), client, "GET /details/{id}", vec![text("peer.service", "details")]),
                span(4, Some(1), client, "GET /reviews/{id}", vec![text("peer.service", "reviews")]),
            ],
        ),
        ("details", vec![details]),
        (
            "reviews",
            vec![
                span(5, Some(4), server, "GET /reviews/{id}", vec![]),
                span(6, Some(5), client, "GET /ratings/{id}", vec![text("peer.service", "ratings")]),
            ],
        ),
        (
            "ratings",
            vec![
                span(7, Some(6), server, "GET /ratings/{id}", vec![]),
                span(
                    8,
                    Some(7),
                    client,
                    "SELECT test.ratings",
                    vec![
                        text("db.system.name", "mysql"),
                        text("db.namespace", "test"),
                        text("server.address", "127.0.0.1"),
                    ],
                ),
            ],
        ),
    ];
    ExportTraceServiceRequest {
        resource_spans: services
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![text("service.name", service)],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
                ..ResourceSpans::default()
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Sends `pages` pages to the stack's OTLP receiver, the first with details failing, and one
/// more page two days old; waits until the store holds them all.
pub async fn send_pages(up: &Up, pages: u32) {
    let now = now_ns();
    let old = now - 2 * 24 * 3600 * 1_000_000_000;
    for (trace, start, fails) in
        (0..pages).map(|n| (n + 1, now - 60_000_000_000, n == 0)).chain([(9999, old, false)])
    {
        let sent = answer(
            client()
                .post(format!("{}/v1/traces", up.store.otlp()))
                .insert_header(("content-type", "application/x-protobuf"))
                .send_body(page(trace, start, fails)),
        )
        .await;
        assert_eq!(sent.status, 200, "{}", sent.body);
    }
    let stats = format!("{}/api/bookinfo/stats", up.store.viewer());
    let wanted = (pages as u64 + 1) * SPANS_PER_PAGE as u64;
    eventually(
        Duration::from_secs(10),
        || format!("{wanted} spans in the store"),
        || async { (get(&stats).await.json()["store"]["spans"].as_u64() == Some(wanted)).then_some(()) },
    )
    .await;
}

/// The links `/api/dependencies` answers with `query`.
async fn links(up: &Up, query: &str) -> Value {
    let answer = get(&format!("{}/api/dependencies{query}", up.store.viewer())).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body = answer.json();
    assert_eq!(body["errors"], Value::Null, "{body}");
    body["data"].clone()
}

/// Opens `pages` pages at `url`; answers how many of them reviews served with ratings (v2, v3).
pub async fn open_pages(url: &str, pages: u64) -> u64 {
    let mut rated = 0;
    for _ in 0..pages {
        let page = get(url).await;
        assert_eq!(page.status, 200);
        rated += u64::from(!page.body.contains("reviews-v1"));
    }
    rated
}

/// Waits until `/api/dependencies` of `viewer` answers `expected` (spans arrive in batches).
pub async fn wait_for_links(viewer: &str, expected: &Value) {
    let url = format!("{viewer}/api/dependencies");
    let last = std::cell::RefCell::new(Value::Null);
    eventually(
        Duration::from_secs(20),
        || format!("the links {expected}; last answer {}", last.borrow()),
        || async {
            let links = get(&url).await.json()["data"].clone();
            let found = (links == *expected).then_some(());
            *last.borrow_mut() = links;
            found
        },
    )
    .await;
}

#[actix_web::test]
async fn the_plain_stack_in_otel_gives_the_calls_its_pages_made() {
    let up = Up::start(&["--quiet-traces"], &[]).await;
    let pages = 6;
    let rated = open_pages(&format!("http://{}/productpage", up.addr("productpage")), pages).await;
    let expected = json!([
        {"parent": "productpage", "child": "details", "callCount": pages, "errorCount": 0},
        {"parent": "productpage", "child": "reviews", "callCount": pages, "errorCount": 0},
        {"parent": "reviews", "child": "ratings", "callCount": rated, "errorCount": 0},
    ]);
    // v1 alone calls no ratings: with no page rated, there is no such edge at all.
    let expected =
        Value::Array(expected.as_array().unwrap().iter().filter(|l| l["callCount"] != 0).cloned().collect());
    wait_for_links(up.store.viewer(), &expected).await;
}

#[actix_web::test]
async fn a_run_of_pages_gives_each_call_once_with_the_database_as_a_node() {
    // The services trace nothing (`--tracing none`): the store holds only what the test sends.
    let up = Up::start(&["--quiet-traces", "--tracing", "none"], &[]).await;
    let pages = 5;
    send_pages(&up, pages).await;

    // Jaeger's defaults: now, and a day back (the two-day-old page is not counted).
    let n = u64::from(pages);
    let expected = json!([
        {"parent": "productpage", "child": "details", "callCount": n, "errorCount": 1},
        {"parent": "productpage", "child": "reviews", "callCount": n, "errorCount": 0},
        {"parent": "ratings", "child": "mysql", "callCount": n, "errorCount": 0},
        {"parent": "reviews", "child": "ratings", "callCount": n, "errorCount": 0},
    ]);
    assert_eq!(links(&up, "").await, expected);

    // A window of three days holds the old page too; one ending before the pages holds none.
    let now_ms = now_ns() / 1_000_000;
    let all = links(&up, &format!("?endTs={now_ms}&lookback={}", 3 * 24 * 3600 * 1000)).await;
    assert!(all.as_array().unwrap().iter().all(|l| l["callCount"] == n + 1), "{all}");
    let before = links(&up, &format!("?endTs={}&lookback=3600000", now_ms - 3_600_000)).await;
    assert_eq!(before, json!([]));

    // Malformed: 400, in Jaeger's query API v1 error shape.
    let bad = get(&format!("{}/api/dependencies?endTs=yesterday", up.store.viewer())).await;
    assert_eq!(bad.status, 400);
    let body = bad.json();
    assert_eq!(body["errors"][0]["code"], 400, "{body}");
    assert!(body["errors"][0]["msg"].as_str().unwrap().contains("endTs"), "{body}");
}
