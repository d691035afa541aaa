//! The application spans one `/productpage` request makes in `otel` mode: the one place the
//! tests take these counts from.
//!
//! By default (`BOOKINFO_FETCH_SPANS` unset) a page makes, per service and kind:
//!
//! | service | SERVER | INTERNAL | CLIENT |
//! |---|---:|---:|---:|
//! | productpage | 1 | 1 (`render productpage`) | 2 (details, reviews) |
//! | details | 1 | | |
//! | reviews | 1 | | 1 with v2/v3 (ratings) |
//! | ratings (v2/v3 only) | 1 | | |
//!
//! 6 spans with reviews v1, 8 with v2 or v3. [`FetchSpans::On`] (`BOOKINFO_FETCH_SPANS=true`)
//! adds an INTERNAL span around each fetch (`fetch details`, `fetch reviews` in productpage,
//! `fetch ratings` in reviews): 8 and 11. The recorded fixtures under `tests/fixtures/traces`
//! were made with those spans on.
//!
//! A trace through a mesh adds its sidecars' spans to these ([`sidecar_spans`]: 7 with v1, 9
//! with v2 or v3, in both tracing modes): compare `sidecar_spans(v) + app_spans(v)` with what an
//! `otel` trace holds. Under ambient, the proxies' spans are the gateway's two
//! ([`GATEWAY_SPANS`]) and, with a waypoint, one per call inside the mesh ([`waypoint_spans`]:
//! 4 with v1, 5 with v2 or v3).
//!
//! | data plane | proxies' spans, v1 | v2/v3 | with `otel` apps, v1 | v2/v3 |
//! |---|---:|---:|---:|---:|
//! | sidecar | 7 | 9 | 13 | 17 |
//! | ambient, waypoint | 4 | 5 | 10 | 13 |
//! | ambient, no waypoint | 2 | 2 | 8 | 10 |
#![allow(dead_code)]

use std::collections::BTreeMap;

/// Whether the stack was asked for the INTERNAL span around each upstream fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FetchSpans {
    /// The default: no span between a handler's span and its calls' CLIENT spans.
    #[default]
    Off,
    /// `BOOKINFO_FETCH_SPANS=true`.
    On,
}

/// The spans of one `/productpage` trace per `(service, kind)` (kind as OTLP names it:
/// `SERVER`, `INTERNAL`, `CLIENT`), served by reviews `version` (`v1`, `v2`, `v3`), in the
/// default shape.
pub fn per_service_kind(version: &str) -> BTreeMap<(&'static str, &'static str), usize> {
    per_service_kind_with(version, FetchSpans::Off)
}

/// [`per_service_kind`] for the given shape.
pub fn per_service_kind_with(
    version: &str,
    fetch: FetchSpans,
) -> BTreeMap<(&'static str, &'static str), usize> {
    let ratings = match version {
        "v1" => false,
        "v2" | "v3" => true,
        other => panic!("no reviews version {other:?}"),
    };
    let fetches = usize::from(fetch == FetchSpans::On);
    let mut counts = BTreeMap::from([
        // The request; render (+ fetch details, fetch reviews); one call to each upstream.
        (("productpage", "SERVER"), 1),
        (("productpage", "INTERNAL"), 1 + 2 * fetches),
        (("productpage", "CLIENT"), 2),
        (("details", "SERVER"), 1),
        (("reviews", "SERVER"), 1),
    ]);
    if ratings {
        // (fetch ratings around) one call to ratings.
        if fetches > 0 {
            counts.insert(("reviews", "INTERNAL"), fetches);
        }
        counts.insert(("reviews", "CLIENT"), 1);
        counts.insert(("ratings", "SERVER"), 1);
    }
    counts
}

/// The application spans of one `/productpage` trace with reviews `version`, in all (6 with
/// v1, 8 with v2 or v3).
pub fn app_spans(version: &str) -> usize {
    app_spans_with(version, FetchSpans::Off)
}

/// [`app_spans`] for the given shape (8 and 11 with [`FetchSpans::On`]).
pub fn app_spans_with(version: &str, fetch: FetchSpans) -> usize {
    per_service_kind_with(version, fetch).values().sum()
}

/// The spans `service` alone makes for one `/productpage` request (productpage: 4, or 6 with
/// [`FetchSpans::On`]; reviews counts with `version`).
pub fn of_service(service: &str, version: &str, fetch: FetchSpans) -> usize {
    per_service_kind_with(version, fetch).iter().filter(|((s, _), _)| *s == service).map(|(_, n)| n).sum()
}

/// The proxies' spans of one `/productpage` trace through the mesh, in either tracing mode: the
/// gateway's SERVER and CLIENT spans, productpage's inbound SERVER span, then per call a CLIENT
/// span in the caller's sidecar and a SERVER span in the callee's (productpage calls details and
/// reviews; reviews v2 and v3 call ratings).
pub fn sidecar_spans(version: &str) -> usize {
    GATEWAY_SPANS + 1 + 2 * mesh_calls(version)
}

/// The calls inside the mesh one `/productpage` request makes: productpage's to details and
/// reviews, and reviews v2's or v3's to ratings.
pub fn mesh_calls(version: &str) -> usize {
    if per_service_kind(version).contains_key(&("ratings", "SERVER")) { 3 } else { 2 }
}

/// The ingress gateway's spans of one request: its SERVER span and the upstream (CLIENT) span
/// it spawns, in every data plane.
pub const GATEWAY_SPANS: usize = 2;

/// The proxies' spans of one `/productpage` trace through an ambient mesh with a waypoint: the
/// gateway's, and the waypoint's one SERVER span per call (ztunnel makes none).
pub fn waypoint_spans(version: &str) -> usize {
    GATEWAY_SPANS + mesh_calls(version)
}

#[test]
fn a_page_makes_6_spans_with_v1_and_8_otherwise_or_8_and_11_with_fetch_spans() {
    assert_eq!([app_spans("v1"), app_spans("v2"), app_spans("v3")], [6, 8, 8]);
    assert_eq!([app_spans_with("v1", FetchSpans::On), app_spans_with("v3", FetchSpans::On)], [8, 11]);
    assert_eq!(of_service("productpage", "v1", FetchSpans::Off), 4);
    assert_eq!(of_service("productpage", "v2", FetchSpans::On), 6);
    assert_eq!(of_service("reviews", "v2", FetchSpans::On), 3);
}

#[test]
fn the_mesh_adds_7_sidecar_spans_with_v1_and_9_otherwise() {
    assert_eq!([sidecar_spans("v1"), sidecar_spans("v2"), sidecar_spans("v3")], [7, 9, 9]);
}

#[test]
fn ambient_adds_the_gateways_2_and_with_a_waypoint_one_per_call() {
    assert_eq!([waypoint_spans("v1"), waypoint_spans("v2"), waypoint_spans("v3")], [4, 5, 5]);
    assert_eq!([mesh_calls("v1"), mesh_calls("v3")], [2, 3]);
    // The table above.
    assert_eq!([sidecar_spans("v1") + app_spans("v1"), sidecar_spans("v2") + app_spans("v2")], [13, 17]);
    assert_eq!([waypoint_spans("v1") + app_spans("v1"), waypoint_spans("v2") + app_spans("v2")], [10, 13]);
    assert_eq!([GATEWAY_SPANS + app_spans("v1"), GATEWAY_SPANS + app_spans("v2")], [8, 10]);
}
