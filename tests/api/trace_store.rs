//! The trace store of `bookinfo up`, run as the real binary: its receivers (OTLP protobuf and
//! JSON, gzip, Zipkin v2, chunked), its refusals, its bounds under hostile shapes, its
//! Jaeger-compatible query API, its files and `bookinfo traces` over them.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{Answer, answer, client, get};
use crate::process::Proc;
use crate::stack::Up;
use crate::wait::{eventually, peak_rss};

/// One span to send: its id, its parent's, its name.
type Spec<'a> = (u64, Option<u64>, &'a str);

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..KeyValue::default()
    }
}

/// An OTLP export request of `service` with `spans` of trace `trace` (16 bytes, all `trace`).
fn otlp(service: &str, trace: u8, spans: impl IntoIterator<Item = (u64, Option<u64>, String)>) -> Vec<u8> {
    let spans = spans
        .into_iter()
        .map(|(id, parent, name)| Span {
            trace_id: vec![trace; 16],
            span_id: id.to_be_bytes().to_vec(),
            parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
            name,
            kind: 2,
            start_time_unix_nano: 1_000_000 + id * 1000,
            end_time_unix_nano: 2_000_000 + id * 1000,
            attributes: vec![attribute("http.route", "/stress")],
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", service)],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

fn specs(list: &[Spec<'_>]) -> Vec<(u64, Option<u64>, String)> {
    list.iter().map(|(id, parent, name)| (*id, *parent, (*name).to_owned())).collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn post(url: &str, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> Answer {
    let mut request = client().post(url).insert_header(("content-type", content_type));
    if let Some(encoding) = encoding {
        request = request.insert_header(("content-encoding", encoding));
    }
    answer(request.send_body(body)).await
}

async fn post_otlp(up: &Up, body: Vec<u8>) -> Answer {
    post(&format!("{}/v1/traces", up.store.otlp()), "application/x-protobuf", None, body).await
}

/// The Jaeger answer for trace `id`, once it holds `spans` spans.
async fn trace_with(up: &Up, id: &str, spans: usize) -> Value {
    let url = format!("{}/api/v3/traces/{id}", up.store.viewer());
    eventually(
        Duration::from_secs(10),
        || format!("trace {id} with {spans} spans"),
        || async {
            let answer = get(&url).await;
            let json = (answer.status == 200).then(|| answer.json())?;
            let count: usize = json["result"]["resourceSpans"]
                .as_array()?
                .iter()
                .map(|rs| rs["scopeSpans"][0]["spans"].as_array().map_or(0, Vec::len))
                .sum();
            (count == spans).then_some(json)
        },
    )
    .await
}

#[actix_web::test]
async fn the_receivers_take_otlp_protobuf_json_gzip_and_zipkin_chunked() {
    let up = Up::start(&["--quiet-traces"], &[]).await;

    let proto = otlp("by-protobuf", 0x11, specs(&[(1, None, "GET /a"), (2, Some(1), "GET")]));
    assert_eq!(post_otlp(&up, proto.clone()).await.status, 200);
    let gzipped = otlp("by-gzip", 0x22, specs(&[(1, None, "GET /b")]));
    let zipped = post(
        &format!("{}/v1/traces", up.store.otlp()),
        "application/x-protobuf",
        Some("gzip"),
        gzip(&gzipped),
    )
    .await;
    assert_eq!(zipped.status, 200, "{}", zipped.body);
    let json = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "by-json"}}]},
        "scopeSpans": [{"spans": [{"traceId": "33".repeat(16), "spanId": "0000000000000001", "name": "GET /c", "kind": 2,
        "startTimeUnixNano": "1000", "endTimeUnixNano": "2000"}]}]}]});
    let by_json = post(
        &format!("{}/v1/traces", up.store.otlp()),
        "application/json",
        None,
        json.to_string().into_bytes(),
    )
    .await;
    assert_eq!((by_json.status, by_json.body.as_str()), (200, "{}"));

    // What Envoy's Zipkin tracer posts: chunked, no Content-Length.
    let zipkin = json!([{"traceId": "44".repeat(16), "id": "0000000000000001", "name": "productpage.default.svc.cluster.local:9080/*",
        "kind": "SERVER", "timestamp": 1_795_433_848_658_585u64, "duration": 1200,
        "localEndpoint": {"serviceName": "productpage.default"}, "tags": {"component": "proxy", "node_id": "sidecar~x"}}]);
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        zipkin.to_string().into_bytes().chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    let sent = client()
        .post(format!("{}/api/v2/spans", up.store.zipkin()))
        .insert_header(("content-type", "application/json"))
        .send_stream(futures_util::stream::iter(chunks));
    let accepted = answer(sent).await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);

    trace_with(&up, &"11".repeat(16), 2).await;
    trace_with(&up, &"22".repeat(16), 1).await;
    trace_with(&up, &"33".repeat(16), 1).await;
    let envoy = trace_with(&up, &"44".repeat(16), 1).await;
    let span = &envoy["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["kind"], 2);
    assert_eq!(span["startTimeUnixNano"], "1795433848658585000");

    // The Jaeger API lists services and searches them, as Jaeger does.
    let services = get(&format!("{}/api/v3/services", up.store.viewer())).await.json();
    for service in ["by-protobuf", "by-gzip", "by-json", "productpage.default"] {
        assert!(services["services"].as_array().unwrap().iter().any(|s| s == service), "{services}");
    }
    let found = get(&format!("{}/api/v3/traces?query.service_name=by-gzip", up.store.viewer())).await.json();
    assert_eq!(found["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"], "GET /b");
    let missing = get(&format!("{}/api/v3/traces/{}", up.store.viewer(), "55".repeat(16))).await;
    assert_eq!((missing.status, missing.json()["error"]["httpCode"].as_u64()), (404, Some(404)));
    let bad = get(&format!("{}/api/v3/traces?query.start_time_min=yesterday", up.store.viewer())).await;
    assert_eq!(bad.status, 400, "{}", bad.body);
}

#[actix_web::test]
async fn garbage_bombs_and_oversized_bodies_are_refused_and_the_stack_goes_on() {
    let up = Up::start(&["--quiet-traces", "--trace-body-limit", "1MiB"], &[]).await;
    let otlp_url = format!("{}/v1/traces", up.store.otlp());
    let garbage = post(&otlp_url, "application/x-protobuf", None, b"\xff\xff\xff\xff garbage".to_vec()).await;
    assert_eq!(garbage.status, 400, "{}", garbage.body);
    let not_json = post(&otlp_url, "application/json", None, b"{\"resourceSpans\": [".to_vec()).await;
    assert_eq!(not_json.status, 400);
    let not_gzip = post(&otlp_url, "application/x-protobuf", Some("gzip"), b"plain".to_vec()).await;
    assert_eq!(not_gzip.status, 400);
    let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
    assert!(bomb.len() < 512 * 1024);
    let refused = post(&otlp_url, "application/x-protobuf", Some("gzip"), bomb).await;
    assert_eq!(refused.status, 413, "{}", refused.body);
    let oversized = post(&otlp_url, "application/x-protobuf", None, vec![0u8; 2 * 1024 * 1024]).await;
    assert_eq!(oversized.status, 413);
    let brotli = post(&otlp_url, "application/x-protobuf", Some("br"), b"x".to_vec()).await;
    assert_eq!(brotli.status, 415);
    let zipkin_url = format!("{}/api/v2/spans", up.store.zipkin());
    assert_eq!(post(&zipkin_url, "application/json", None, b"{}".to_vec()).await.status, 400);
    assert_eq!(post(&zipkin_url, "application/x-thrift", None, b"x".to_vec()).await.status, 415);

    let page = get(&format!("http://{}/productpage", up.addr("productpage"))).await;
    assert_eq!(page.status, 200);
    assert!(!up.proc.output().contains(" ERROR "), "refusals are not errors of ours:\n{}", up.proc.output());
}

/// Sends `count` spans of one trace in batches of `batch`, each span naming its parent as
/// `parent(id)`.
async fn send_trace(up: &Up, trace: u8, count: u64, batch: u64, parent: impl Fn(u64) -> Option<u64>) {
    let mut id = 1;
    while id <= count {
        let end = (id + batch).min(count + 1);
        let spans = (id..end).map(|i| (i, parent(i), format!("step {i}")));
        let sent = post_otlp(up, otlp("stress", trace, spans)).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        id = end;
    }
}

#[actix_web::test]
async fn the_store_stays_bounded_and_fast_under_hostile_shapes() {
    // Printing stays on: a huge trace must not flood the terminal either.
    let up = Up::start(&[], &[("RUST_LOG", "warn")]).await;
    let pid = up.proc.pid();
    let viewer = up.store.viewer().to_owned();

    // One trace that never ends: far more spans than a trace may keep.
    send_trace(&up, 0xe1, 120_000, 5000, |i| (i > 1).then_some(1)).await;
    // 50 000 spans wide, 20 000 deep, a cycle, duplicates.
    send_trace(&up, 0xa1, 50_000, 5000, |i| (i > 1).then_some(1)).await;
    send_trace(&up, 0xd1, 20_000, 5000, |i| (i > 1).then(|| i - 1)).await;
    send_trace(&up, 0xc1, 1_000, 1000, |i| Some(if i == 1 { 1000 } else { i - 1 })).await;
    for _ in 0..20 {
        send_trace(&up, 0xdd, 1_000, 1000, |i| (i > 1).then_some(1)).await;
    }

    let stats = get(&format!("{viewer}/api/bookinfo/stats")).await.json();
    let store = &stats["store"];
    assert!(store["bytes"].as_u64().unwrap() <= store["limit"].as_u64().unwrap(), "{stats}");
    assert!(store["dropped"].as_u64().unwrap() >= 150_000, "every trace is capped: {stats}");
    assert!(store["duplicates"].as_u64().unwrap() >= 19_000, "{stats}");

    // Whole traces are assembled and drawn in under a second, whatever their shape (about a
    // tenth of that here). The fastest of three draws counts, so that a moment's load on a
    // machine shared with the rest of the suite does not.
    for (trace, spans) in [("e1", 10_000), ("a1", 10_000), ("d1", 10_000), ("c1", 1_000), ("dd", 1_000)] {
        let mut fastest = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            let view = get(&format!("{viewer}/api/bookinfo/traces/{}", trace.repeat(16))).await;
            fastest = fastest.min(started.elapsed());
            assert_eq!(view.status, 200, "{}", view.body);
            let json = view.json();
            assert_eq!(json["summary"]["spans"], spans, "trace {trace}: {}", json["summary"]);
        }
        assert!(fastest < Duration::from_secs(1), "trace {trace} took {fastest:?} at best");
    }
    let cycle = get(&format!("{viewer}/api/bookinfo/traces/{}", "c1".repeat(16))).await.json();
    let drawn = cycle["rows"].as_array().unwrap().len() as u64;
    assert_eq!(drawn + cycle["hidden"].as_u64().unwrap(), 1000, "no span of the cycle is lost");
    assert_eq!(cycle["rows"][0]["detached"], "cycle");

    let peak = peak_rss(pid);
    eprintln!("bookinfo up peaked at {} MiB", peak >> 20);
    assert!(peak < 64 * 1024 * 1024, "bookinfo up peaked at {} MiB", peak >> 20);
    let page = get(&format!("http://{}/productpage", up.addr("productpage"))).await;
    assert_eq!(page.status, 200);
    // The terminal got bounded trees, with what was left out counted.
    let output = eventually(
        Duration::from_secs(10),
        || "the wide trace printed".to_owned(),
        || async { Some(up.proc.output()).filter(|o| o.contains(&format!("trace {}", "a1".repeat(16)))) },
    )
    .await;
    assert!(output.contains("more spans not drawn"), "{output}");
    assert!(output.len() < 4 * 1024 * 1024, "{} bytes printed", output.len());
}

#[actix_web::test]
async fn up_notices_a_dead_child_while_the_store_is_flooded() {
    let up = Up::start(&["--quiet-traces"], &[("RUST_LOG", "warn")]).await;
    let otlp_url = format!("{}/v1/traces", up.store.otlp());
    let body = otlp("flood", 0xf1, (1..=5000).map(|i| (i, (i > 1).then_some(1), format!("s{i}"))));
    // The flood goes on until the test ends, so a supervisor that waited on the store would
    // not report the death at all.
    let stored = Arc::new(AtomicUsize::new(0));
    let flooding: Vec<_> = (0..3)
        .map(|_| {
            let (url, body, stored) = (otlp_url.clone(), body.clone(), stored.clone());
            actix_web::rt::spawn(async move {
                loop {
                    let sent = client()
                        .post(&url)
                        .insert_header(("content-type", "application/x-protobuf"))
                        .send_body(body.clone())
                        .await;
                    if sent.is_ok_and(|r| r.status().is_success()) {
                        stored.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    eventually(
        Duration::from_secs(30),
        || "the store taking the flood".to_owned(),
        || async { (stored.load(Ordering::Relaxed) >= 3).then_some(()) },
    )
    .await;
    let killed = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(up.pid("details")), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    // Some 20 ms on two idle cores; the deadline leaves room for a machine shared with the
    // rest of the suite.
    eventually(
        Duration::from_secs(5),
        || format!("the death of details reported:\n{}", up.proc.output()),
        || async { up.proc.output().contains("details exited").then_some(()) },
    )
    .await;
    eprintln!("the death of details reported after {:?}", killed.elapsed());
    for task in flooding {
        task.abort();
    }
}

/// A runs directory of its own, with `runs` (name, file text) in it.
fn runs_dir(name: &str, runs: &[(&str, String)]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("bookinfo-runs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for (run, text) in runs {
        std::fs::create_dir_all(root.join(run)).unwrap();
        std::fs::write(root.join(run).join("traces.jsonl"), text).unwrap();
    }
    root
}

/// One OTLP JSON line of a trace file: a span of `service` that started a second ago.
fn line(service: &str, trace: &str, name: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    let (start, end) = (now - 1_000_000_000, now - 998_000_000);
    json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{"traceId": trace, "spanId": "0000000000000001", "name": name, "kind": 2,
        "startTimeUnixNano": start.to_string(), "endTimeUnixNano": end.to_string(),
        "attributes": [{"key": "http.response.status_code", "value": {"intValue": "200"}}]}]}]}]})
    .to_string()
        + "\n"
}

/// `file`: `gap` bytes of nothing (sparse on disk), then 50 traces, a line each.
fn tail_after_a_gap(file: &std::path::Path, gap: u64) -> PathBuf {
    std::fs::File::create(file).unwrap().set_len(gap).unwrap();
    let mut appending = std::fs::OpenOptions::new().append(true).open(file).unwrap();
    for n in 0..50u8 {
        appending
            .write_all(format!("\n{}", line("tail", &format!("{n:02x}").repeat(16), "GET /tail")).as_bytes())
            .unwrap();
    }
    file.to_owned()
}

#[actix_web::test]
async fn traces_show_reads_the_latest_run_the_end_of_a_huge_file_and_a_closed_pipe() {
    let root = runs_dir(
        "latest",
        &[
            ("2026-11-26T100000Z-1", line("old", &"01".repeat(16), "GET /old")),
            ("2026-11-27T100000Z-2", line("new", &"02".repeat(16), "GET /new")),
        ],
    );
    let root_env = root.to_str().unwrap();
    let mut proc = Proc::start(&["traces", "show", "--attributes"], &[("BOOKINFO_RUNS_DIR", root_env)]);
    assert!(proc.wait(Duration::from_secs(30)).await.success(), "{}", proc.output());
    let out = proc.output();
    assert!(out.contains("new SERVER GET /new") && !out.contains("GET /old"), "{out}");
    assert!(out.contains("http.response.status_code=200"), "{out}");
    assert!(out.contains("legend: ~ made by Envoy"), "{out}");

    // 64 GiB of something else (sparse on disk), then the latest traces at its end: reading it
    // whole would take 13 s at the least here (`wc -l` reads it in 13 to 44 s), its end takes
    // 0.2 s, so the bound can leave room for a loaded machine.
    let huge = tail_after_a_gap(&root.join("huge.jsonl"), 64 << 30);
    let started = Instant::now();
    let mut proc = Proc::start(&["traces", "show", "--file", huge.to_str().unwrap(), "--limit", "3"], &[]);
    assert!(proc.wait(Duration::from_secs(30)).await.success(), "{}", proc.output());
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert_eq!(proc.output().matches("tail SERVER GET /tail").count(), 3, "{}", proc.output());

    // Into a pipe that closes early: no panic, a quiet end. Asked for every trace of the file,
    // the command reads all of it: 1 GiB, this time.
    let big = tail_after_a_gap(&root.join("big.jsonl"), 1 << 30);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bookinfo"))
        .args(["traces", "show", "--file", big.to_str().unwrap(), "--limit", "50"])
        .env("BOOKINFO_RUNS_DIR", root_env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(matches!(output.status.code(), Some(0 | 141)), "{:?} {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::remove_dir_all(root).unwrap();
}

#[actix_web::test]
async fn traces_serve_shows_a_saved_file_in_the_viewer_and_jaeger_clients_read_it() {
    let text: String =
        (1..=5u8).map(|n| line("saved", &format!("{n:02x}").repeat(16), "GET /saved")).collect();
    let root = runs_dir("serve", &[("2026-11-27T100000Z-3", text)]);
    let file = root.join("2026-11-27T100000Z-3/traces.jsonl");
    let proc = Proc::start(&["traces", "serve", "--file", file.to_str().unwrap(), "--port", "0"], &[]);
    let viewer: String = proc
        .wait_for(Duration::from_secs(30), |l| {
            let rest = l.strip_prefix("Serving 5 traces of ")?;
            Some(rest.split(" on ").nth(1)?.split(';').next()?.to_owned())
        })
        .await;
    let list = get(&format!("{viewer}/api/bookinfo/traces")).await.json();
    assert_eq!(list["traces"].as_array().unwrap().len(), 5, "{list}");
    let page = get(&format!("{viewer}/")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<title>Bookinfo traces</title>"));
    assert_eq!(page.header("content-security-policy"), Some("default-src 'self'; img-src 'self' data:"));

    let mut show =
        Proc::start(&["traces", "show", "--jaeger", &viewer, "--service", "saved", "--limit", "2"], &[]);
    assert!(show.wait(Duration::from_secs(30)).await.success(), "{}", show.output());
    assert_eq!(show.output().matches("saved SERVER GET /saved").count(), 2, "{}", show.output());
    let latest = "latest:saved";
    let mut compare = Proc::start(&["traces", "compare", "--jaeger", &viewer, latest, &"01".repeat(16)], &[]);
    assert!(compare.wait(Duration::from_secs(30)).await.success(), "{}", compare.output());
    assert!(compare.output().contains("hop by hop"), "{}", compare.output());
    std::fs::remove_dir_all(root).unwrap();
}
