//! The trace store's contract, from the outside: a span it answers 200 for is written to the
//! run's file, or counted and reported at once (standard error, `/api/bookinfo/stats`); what it
//! cannot take now it refuses with 429 and a Retry-After, which exporters retry. A new stack
//! never prunes a running one's run, nor leaves a failed start as the latest run. The store and
//! the readers of its files stay within bounded memory whatever they are sent or given.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::Value;

use crate::helpers::{Answer, answer, client, get};
use crate::process::Proc;
use crate::stack::Up;
use crate::wait::{eventually, peak_rss};

/// `bookinfo up`'s memory ceiling at its default settings, as the README states it (a debug
/// build idles at 22 MiB and peaks at 43 MiB through the burst below, 32 MiB through the held
/// bodies: memory does not grow with a machine's load, only time does).
const CEILING: u64 = 64 * 1024 * 1024;

/// One span to send: its trace, its id, its attributes.
struct Sent {
    trace: [u8; 16],
    id: u64,
    attributes: Vec<(&'static str, String)>,
}

impl Sent {
    /// Span `id` of trace `trace`, with no attributes.
    fn of(trace: [u8; 16], id: u64) -> Self {
        Self { trace, id, attributes: Vec::new() }
    }
}

/// Trace id `n` of a family: `family` then `n`'s bytes, never all zeros.
fn trace_id(family: u8, n: u32) -> [u8; 16] {
    let mut id = [family; 16];
    id[12..].copy_from_slice(&n.to_be_bytes());
    id
}

fn hex(id: [u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP protobuf export request of `service` holding `spans`.
fn export(service: &str, spans: impl IntoIterator<Item = Sent>) -> Vec<u8> {
    let text = |key: &str, value: String| KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value)) }),
        ..KeyValue::default()
    };
    let spans = spans
        .into_iter()
        .map(|sent| Span {
            trace_id: sent.trace.to_vec(),
            span_id: sent.id.to_be_bytes().to_vec(),
            name: format!("step {}", sent.id),
            kind: 1,
            start_time_unix_nano: 1_000_000 + sent.id * 1000,
            end_time_unix_nano: 2_000_000 + sent.id * 1000,
            attributes: sent.attributes.into_iter().map(|(k, v)| text(k, v)).collect(),
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", service.to_owned())],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

async fn post(url: &str, body: Vec<u8>) -> Answer {
    let request = client().post(url).insert_header(("content-type", "application/x-protobuf"));
    answer(request.send_body(body)).await
}

/// OTLP's `google.rpc.Status`: what a refusal's body holds.
#[derive(Clone, PartialEq, Message)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// What an exporter that follows the OTLP specification saw sending one export.
struct Exported {
    /// The last answer.
    answer: Answer,
    /// The 429s before it.
    throttled: u32,
}

/// Sends `body` to `url` as an OTLP exporter does: a 429 is retried after the Retry-After it
/// must carry (its body a `google.rpc.Status` saying why).
async fn export_retrying(url: &str, body: Vec<u8>) -> Exported {
    let mut throttled = 0;
    loop {
        let answer = post(url, body.clone()).await;
        if answer.status != 429 {
            return Exported { answer, throttled };
        }
        throttled += 1;
        let status = Status::decode(answer.body.as_bytes()).expect("a google.rpc.Status");
        assert!(status.message.contains("--trace-memory"), "{}", status.message);
        let wait: u64 = answer.header("retry-after").and_then(|s| s.parse().ok()).expect("a Retry-After");
        assert!((1..=5).contains(&wait), "Retry-After: {wait}");
        // A minute of refusals in a row would be a store that never makes room.
        assert!(throttled < 60, "still refused after {throttled} tries");
        actix_web::rt::time::sleep(Duration::from_secs(wait)).await;
    }
}

/// What a trace file (and its rotated-out part) holds: its trace ids, its spans, its lines'
/// lengths.
struct Written {
    traces: HashSet<String>,
    spans: usize,
    longest_line: usize,
    text: String,
}

fn written(file: &Path) -> Written {
    let rotated = file.with_file_name("traces.1.jsonl");
    let mut text = std::fs::read_to_string(file).unwrap_or_default();
    text.push_str(&std::fs::read_to_string(rotated).unwrap_or_default());
    let mut traces = HashSet::new();
    for (at, _) in text.match_indices("\"traceId\":\"") {
        traces.insert(text[at + 11..at + 43].to_owned());
    }
    let spans = text.matches("\"spanId\":\"").count();
    let longest_line = text.lines().map(str::len).max().unwrap_or(0);
    Written { traces, spans, longest_line, text }
}

/// The store's `/api/bookinfo/stats`.
async fn stats(up: &Up) -> Value {
    get(&format!("{}/api/bookinfo/stats", up.store.viewer())).await.json()
}

/// Waits until the store's file holds `spans` spans (its writer's count): seconds at most
/// here, a minute for a loaded machine.
async fn all_written(up: &Up, spans: u64) {
    eventually(
        Duration::from_secs(60),
        || format!("{spans} spans written:\n{}", up.proc.output()),
        || async {
            let stats = stats(up).await;
            (stats["writer"]["spans_written"].as_u64() >= Some(spans)).then_some(())
        },
    )
    .await;
}

/// Stops `up` with SIGTERM, waits for it, and answers what it wrote.
async fn stop(up: &mut Up) -> Written {
    up.proc.signal(Signal::SIGTERM);
    let status = up.proc.wait(Duration::from_secs(60)).await;
    assert!(status.success(), "{status}: {}", up.proc.output());
    written(up.store.file.as_deref().expect("the stack prints its trace file"))
}

/// The numbers of the lines of `output` that say `what` (`bookinfo: traces: N what`), summed.
fn reported(output: &str, what: &str) -> u64 {
    output
        .lines()
        .filter_map(|line| line.strip_prefix("bookinfo: traces: ")?.split_once(what))
        .filter_map(|(count, _)| count.trim().parse::<u64>().ok())
        .sum()
}

#[actix_web::test]
async fn a_burst_of_one_span_traces_is_written_whole_within_the_memory_ceiling() {
    let mut up = Up::start(&[], &[("RUST_LOG", "warn")]).await;
    let url = format!("{}/v1/traces", up.store.otlp());
    // 100 exports of 1000 traces of one span each, sent back to back: more than the store holds
    // (16 MiB) and faster than a second of quiet lets it write them.
    let mut throttled = 0;
    for export_n in 0..100u32 {
        let spans = (0..1000).map(|n| Sent::of(trace_id(0xb0, export_n * 1000 + n), 1));
        let exported = export_retrying(&url, export("burst", spans)).await;
        assert_eq!(exported.answer.status, 200, "{}", exported.answer.body);
        throttled += exported.throttled;
    }
    all_written(&up, 100_000).await;
    let peak = peak_rss(up.proc.pid());
    eprintln!("100 000 traces: {throttled} exports throttled, bookinfo up peaked at {} MiB", peak >> 20);
    let file = stop(&mut up).await;
    assert_eq!((file.traces.len(), file.spans), (100_000, 100_000), "every span answered 200 is written");
    assert!(peak < CEILING, "bookinfo up peaked at {} MiB", peak >> 20);
    assert_eq!(reported(&up.proc.output(), "spans not written"), 0, "{}", up.proc.output());
}

#[actix_web::test]
async fn values_too_long_are_cut_and_reported_and_every_trace_is_shown_and_written() {
    let mut up = Up::start(&[], &[("RUST_LOG", "warn")]).await;
    let url = format!("{}/v1/traces", up.store.otlp());
    // Ten traces of one span with a 3 MiB attribute: under the body limit, nearly the store's
    // whole memory together.
    let huge = "x".repeat(3 << 20);
    let ids: Vec<[u8; 16]> = (0..10).map(|n| trace_id(0xa0, n)).collect();
    for id in &ids {
        let span = Sent { attributes: vec![("blob", huge.clone())], ..Sent::of(*id, 1) };
        let sent = post(&url, export("huge", [span])).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
    }
    // Said at once (within a second; ten allowed a loaded machine), while the stack runs: on
    // standard error and in the stats.
    eventually(
        Duration::from_secs(10),
        || format!("ten values cut, said:\n{}", up.proc.output()),
        || async { (reported(&up.proc.output(), "attribute values cut") == 10).then_some(()) },
    )
    .await;
    let stats = stats(&up).await;
    assert_eq!(stats["intake"]["values_cut"], 10, "{stats}");
    // Shown: each trace's tree printed (at most ten a second: the rest would be counted), a
    // second after it came (ten allowed a loaded machine).
    let output = eventually(
        Duration::from_secs(10),
        || format!("ten trees printed:\n{}", up.proc.output()),
        || async {
            let output = up.proc.output();
            let shown = ids.iter().filter(|id| output.contains(&format!("trace {}", hex(**id)))).count();
            (shown as u64 + reported(&output, "more traces") == 10).then_some(output)
        },
    )
    .await;
    assert!(output.contains("step 1"), "{output}");
    all_written(&up, 10).await;
    let file = stop(&mut up).await;
    for id in &ids {
        assert!(file.traces.contains(&hex(*id)), "trace {} not written", hex(*id));
    }
    // Each value cut to the text a span may hold, and marked so.
    let value = file.text.split("\"blob\",\"value\":{\"stringValue\":\"").nth(1).expect("the blob written");
    let value = value.split('"').next().unwrap();
    assert!(value.len() <= 64 * 1024 && value.len() > 60 * 1024, "{} bytes", value.len());
    assert!(value.ends_with('…'), "{}", &value[value.len() - 10..]);
}

#[actix_web::test]
async fn a_trace_larger_than_a_line_is_written_over_lines_that_read_back() {
    let mut up = Up::start(&["--quiet-traces"], &[("RUST_LOG", "warn")]).await;
    let url = format!("{}/v1/traces", up.store.otlp());
    // 1000 spans with 3000 control characters each, which JSON writes as six bytes apiece:
    // 18 MB of JSON for 3 MB sent.
    let id = trace_id(0xc0, 1);
    let value = "\u{1}".repeat(3000);
    for chunk in 0..4 {
        let spans = (1..=250)
            .map(|n| Sent { attributes: vec![("control", value.clone())], ..Sent::of(id, chunk * 250 + n) });
        let sent = post(&url, export("wide", spans)).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
    }
    all_written(&up, 1000).await;
    let file = stop(&mut up).await;
    assert_eq!(file.spans, 1000, "every span written");
    assert!(file.longest_line <= 4 << 20, "a line of {} bytes", file.longest_line);
    // `traces show` joins the lines again.
    let path = up.store.file.clone().unwrap();
    let mut show =
        Proc::start(&["traces", "show", "--file", path.to_str().unwrap(), "--trace", &hex(id)], &[]);
    assert!(show.wait(Duration::from_secs(60)).await.success(), "{}", show.output());
    assert!(show.output().contains("  1000 spans  wide"), "{}", show.output());
}

/// A fresh runs directory for test `name`.
fn runs_root(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("bookinfo-contract-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    root
}

fn runs(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One line of a trace file: a span of trace `id` of `service`.
fn file_line(service: &str, id: [u8; 16]) -> String {
    serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": [{"traceId": hex(id), "spanId": "0000000000000001", "name": "GET /saved", "kind": 2,
        "startTimeUnixNano": "1000", "endTimeUnixNano": "2000"}]}]}]})
    .to_string()
        + "\n"
}

/// `bookinfo up` whose services cannot start (each is `/bin/false`): it fails after its trace
/// store started, with `root` as its runs directory.
async fn failed_start(root: &Path) -> String {
    let mut up = Proc::start(
        &["up", "--base-port", "0", "--exe", "/bin/false"],
        &[("BOOKINFO_RUNS_DIR", root.to_str().unwrap())],
    );
    let status = up.wait(Duration::from_secs(60)).await;
    assert_eq!(status.code(), Some(1), "{}", up.output());
    up.output()
}

#[actix_web::test]
async fn new_stacks_never_prune_a_running_stacks_run() {
    let root = runs_root("prune");
    let root_env = root.to_str().unwrap();
    let mut running = Up::start(&["--quiet-traces"], &[("BOOKINFO_RUNS_DIR", root_env)]).await;
    let file = running.store.file.clone().unwrap();
    let run = file.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
    // Ten finished runs, all newer than the running one (their names sort after it), so that
    // the next start finds the running one the oldest of eleven.
    for n in 0..10 {
        let dir = root.join(format!("{run}-{n:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("traces.jsonl"), file_line("finished", trace_id(0xd0, n))).unwrap();
    }
    failed_start(&root).await;
    assert!(file.exists(), "the running stack's file was removed; runs left: {:?}", runs(&root));
    let left = runs(&root);
    assert!(
        left.len() <= 10 && !left.contains(&format!("{run}-00")),
        "the oldest finished runs go: {left:?}"
    );

    // The running stack goes on writing there.
    let url = format!("{}/v1/traces", running.store.otlp());
    let sent = post(&url, export("still-running", [Sent::of(trace_id(0xd1, 1), 1)])).await;
    assert_eq!(sent.status, 200);
    all_written(&running, 1).await;
    let written = stop(&mut running).await;
    assert!(written.traces.contains(&hex(trace_id(0xd1, 1))), "{}", written.text);
    std::fs::remove_dir_all(root).unwrap();
}

#[actix_web::test]
async fn a_failed_start_leaves_the_last_runs_traces_the_latest() {
    let root = runs_root("failed");
    let finished = root.join("2026-01-01T000000Z-1");
    std::fs::create_dir_all(&finished).unwrap();
    std::fs::write(finished.join("traces.jsonl"), file_line("before", trace_id(0x5a, 1))).unwrap();
    failed_start(&root).await;
    assert_eq!(runs(&root), ["2026-01-01T000000Z-1"], "the failed start left its run behind");
    let mut show = Proc::start(&["traces", "show"], &[("BOOKINFO_RUNS_DIR", root.to_str().unwrap())]);
    assert!(show.wait(Duration::from_secs(30)).await.success(), "{}", show.output());
    assert!(show.output().contains("before SERVER GET /saved"), "{}", show.output());
    std::fs::remove_dir_all(root).unwrap();
}

#[actix_web::test]
async fn an_endless_trace_is_shown_once_it_ends_with_every_span_past_its_cap_counted() {
    let up = Up::start(&["--trace-spans", "1000"], &[("RUST_LOG", "warn")]).await;
    let url = format!("{}/v1/traces", up.store.otlp());
    let id = trace_id(0xe0, 1);
    let header = format!("trace {}", hex(id));
    // Spans of one trace back to back for four seconds, past its cap of 1000 within the first
    // exports: it is not finished while they come, however few of them it keeps. Each export
    // takes some milliseconds, far from the second of quiet after which a trace is shown.
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(4) {
        let spans = (1..=200).map(|n| Sent::of(id, sent + n));
        let answer = post(&url, export("endless", spans)).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        sent += 200;
        assert!(
            !up.proc.output().contains(&header),
            "shown {:?} into the stream:\n{}",
            started.elapsed(),
            up.proc.output()
        );
    }
    // Shown a second after the stream ends (ten allowed a loaded machine).
    let output = eventually(
        Duration::from_secs(10),
        || format!("the endless trace shown:\n{}", up.proc.output()),
        || async { Some(up.proc.output()).filter(|o| o.contains(&header)) },
    )
    .await;
    let dropped = format!("… {} more spans arrived past the store's cap and were not kept", sent - 1000);
    assert!(output.contains(&dropped), "{sent} sent:\n{output}");
    assert_eq!(output.matches(&header).count(), 1, "shown once:\n{output}");
    // Said at once too: the trace reached its cap.
    assert_eq!(reported(&output, "trace reached its cap"), 1, "{output}");
    let stats = stats(&up).await;
    assert_eq!(stats["store"]["dropped"], sent - 1000, "{stats}");
}

/// A process's resident memory now and at its peak, if it still runs.
fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[actix_web::test]
async fn bodies_held_open_stay_within_the_memory_ceiling_and_the_rest_are_refused() {
    let up = Up::start(&["--quiet-traces"], &[("RUST_LOG", "warn")]).await;
    let addr = up.store.otlp().trim_start_matches("http://").to_owned();
    // 80 connections, each sending the head of a 4 MiB export (just under the body limit) and
    // all of its body but the last KiB, then waiting for an answer.
    let length = (4 << 20) - 1024;
    let clients: Vec<_> = (0..80)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || -> String {
                let mut stream = TcpStream::connect(&addr).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let head = format!(
                    "POST /v1/traces HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-protobuf\r\ncontent-length: {length}\r\n\r\n"
                );
                // A store that answers before the body ends may close as it does: the answer counts.
                let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&vec![0u8; length - 1024]));
                let mut answer = [0u8; 12];
                match stream.read_exact(&mut answer) {
                    Ok(()) => String::from_utf8_lossy(&answer[9..12]).into_owned(),
                    Err(err) => format!("no answer: {err}"),
                }
            })
        })
        .collect();
    // The store keeps receiving bodies for what its memory allows and refuses the rest at once
    // (320 MiB sent over loopback: seconds here, a minute for a loaded machine).
    let refused = eventually(
        Duration::from_secs(60),
        || format!("the held bodies refused:\n{}", up.proc.output()),
        || async {
            let stats = stats(&up).await;
            let refused = stats["intake"]["throttled"].as_u64()?;
            (refused >= 70).then_some(refused)
        },
    )
    .await;
    let pid = up.proc.pid() as u32;
    let (_, peak) = memory(pid).unwrap();
    eprintln!("80 bodies held: {refused} refused, bookinfo up peaked at {} MiB", peak >> 20);
    assert!(peak < CEILING, "bookinfo up peaked at {} MiB", peak >> 20);
    // An exporter still gets through: at once, or once the held bodies time out.
    let url = format!("{}/v1/traces", up.store.otlp());
    let exported = export_retrying(&url, export("after", [Sent::of(trace_id(0xf0, 1), 1)])).await;
    assert_eq!(exported.answer.status, 200);
    let answers: Vec<String> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let throttled = answers.iter().filter(|a| *a == "429").count();
    assert!(throttled >= 70, "{answers:?}");
    assert!(answers.iter().all(|a| a == "429" || a == "408"), "{answers:?}");
    assert!(peak_rss(up.proc.pid()) < CEILING);
}

#[actix_web::test]
async fn reading_a_file_that_never_ends_its_line_gives_up_within_bounded_memory() {
    for args in [
        &["traces", "show", "--file", "/dev/zero"][..],
        &["traces", "show", "--file", "/dev/zero", "--trace", &"ab".repeat(16)],
        &["traces", "serve", "--file", "/dev/zero", "--port", "0"],
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bookinfo"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A reader that holds the line grows by a gigabyte a second or so: it is stopped long
        // before it hurts the machine. One that gives up does so within a second, given ten
        // for a loaded machine.
        let started = Instant::now();
        let mut peak = 0;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if let Some((_, hwm)) = memory(child.id()) {
                peak = peak.max(hwm);
            }
            if peak > 256 << 20 || started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{args:?}: {} MiB after {:?}", peak >> 20, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("/dev/zero: a line longer than 4 MiB"), "{args:?}: {stderr}");
        eprintln!("{args:?}: gave up after {:?}, {} MiB at most", started.elapsed(), peak >> 20);
    }
}

#[actix_web::test]
async fn a_full_store_refuses_with_429_and_keeps_every_span_it_took() {
    let mut up = Up::start(&["--quiet-traces", "--trace-memory", "1MiB"], &[("RUST_LOG", "warn")]).await;
    let url = format!("{}/v1/traces", up.store.otlp());
    // Four exporters at once, each 25 exports of 500 traces: a megabyte of spans fills within
    // the second of quiet before the first of them would be written.
    let exporters: Vec<_> = (0..4u32)
        .map(|exporter| {
            let url = url.clone();
            actix_web::rt::spawn(async move {
                let mut throttled = 0;
                for export_n in 0..25u32 {
                    let first = (exporter * 25 + export_n) * 500;
                    let spans = (first..first + 500).map(|n| Sent::of(trace_id(0x90, n), 1));
                    let exported = export_retrying(&url, export("busy", spans)).await;
                    assert_eq!(exported.answer.status, 200, "{}", exported.answer.body);
                    throttled += exported.throttled;
                }
                throttled
            })
        })
        .collect();
    let mut throttled = 0;
    for exporter in exporters {
        throttled += exporter.await.unwrap();
    }
    assert!(throttled > 0, "the store never refused");
    all_written(&up, 50_000).await;
    let stats = stats(&up).await;
    assert_eq!(stats["intake"]["throttled"], throttled, "{stats}");
    // Said within a second of each refusal (ten allowed a loaded machine).
    eventually(
        Duration::from_secs(10),
        || format!("{throttled} refusals said:\n{}", up.proc.output()),
        || async {
            (reported(&up.proc.output(), "exports refused with 429") == u64::from(throttled)).then_some(())
        },
    )
    .await;
    let file = stop(&mut up).await;
    assert_eq!((file.traces.len(), file.spans), (50_000, 50_000));
}
