//! The per-request header work of each tracing mode: what a service does with the headers of
//! one inbound request to send them on with one outbound call.
//!
//! - propagate: copy the allowlist;
//! - otel: extract the context (W3C, B3, baggage), copy the rest of the allowlist, inject the
//!   context afresh.
//!
//! `cargo bench -p bookinfo-http --bench headers` prints nanoseconds per request (median of
//! 30 batches) and the ratio to propagate. Span creation and export are not included: the stack
//! benchmark (`bench/run`) measures those end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use bookinfo_http::headers::{Read, Write};
use bookinfo_propagation::{ForwardedHeaders, PropagatorKind, Propagators};

/// What a request carries after Istio's sidecar (Zipkin provider) and a browser.
fn inbound() -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "productpage:9080"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"),
        ("accept", "text/html,application/xhtml+xml"),
        ("cookie", "session=u1.jason; theme=dark"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "6f1c3c9e-3a0e-9d5b-a1f4-0e1d2c3b4a59"),
        ("x-envoy-attempt-count", "1"),
        ("x-envoy-decorator-operation", "productpage.default.svc.cluster.local:9080/productpage"),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
        ("x-b3-sampled", "1"),
        ("baggage", "team=books,canary=v3;ttl=60"),
    ] {
        headers.append(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    headers
}

fn send_on(forwarded: &ForwardedHeaders) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in forwarded.iter() {
        out.append(name.clone(), value.clone());
    }
    out
}

/// Median nanoseconds per call of `work`.
fn measure(mut work: impl FnMut() -> HeaderMap) -> f64 {
    const BATCH: u32 = 20_000;
    for _ in 0..BATCH {
        black_box(work());
    }
    let mut batches: Vec<f64> = (0..30)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..BATCH {
                black_box(work());
            }
            start.elapsed().as_nanos() as f64 / f64::from(BATCH)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[batches.len() / 2]
}

fn main() {
    let inbound = inbound();
    let propagators = Propagators::new(&PropagatorKind::DEFAULT);

    let propagate = measure(|| send_on(&ForwardedHeaders::capture(&Read(black_box(&inbound)))));
    let otel = measure(|| {
        let inbound = black_box(&inbound);
        let cx = propagators.extract(&Read(inbound));
        let mut out =
            send_on(&ForwardedHeaders::capture_except(&Read(inbound), |name| propagators.owns(name)));
        propagators.inject(&cx, &mut Write(&mut out));
        out
    });

    println!("per-request header work (one inbound request, one outbound call)");
    println!("{:<10} {:>10} {:>14}", "mode", "ns", "vs propagate");
    println!("{:<10} {:>10.0} {:>14.2}", "propagate", propagate, 1.0);
    println!("{:<10} {:>10.0} {:>14.2}", "otel", otel, otel / propagate);
}
