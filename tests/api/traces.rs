//! `bookinfo traces` and the local stack's trace sink, against fixtures recorded from this
//! project's stack and hand-made traces shaped as Istio's sidecars make them, served by a local
//! fake of Jaeger's `/api/v3`.

use std::path::PathBuf;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::web::{self, Query};
use serde_json::Value;

use crate::helpers::{answer, client, dead_upstream, get, stub};
use crate::process::Proc;
use crate::spans::{FetchSpans, app_spans_with, per_service_kind_with, sidecar_spans};
use crate::stack::Up;

/// The fixtures were recorded with the INTERNAL fetch spans on (`BOOKINFO_FETCH_SPANS=true`).
const RECORDED: FetchSpans = FetchSpans::On;
/// The sidecars' spans of the Istio-shaped otel fixture, a v1 page.
fn istio_otel_sidecar_spans() -> usize {
    sidecar_spans("v1")
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/traces").join(name)
}

fn load(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// Whether a Jaeger document holds a span of `service`, or of trace `id`.
fn holds(document: &Value, service: Option<&str>, id: Option<&str>) -> bool {
    document["result"]["resourceSpans"].as_array().unwrap().iter().any(|rs| {
        let name = rs["resource"]["attributes"][0]["value"]["stringValue"].as_str().unwrap();
        let trace = rs["scopeSpans"][0]["spans"][0]["traceId"].as_str().unwrap();
        service.is_none_or(|s| s == name) && id.is_none_or(|i| i == trace)
    })
}

/// A fake Jaeger v2 query service under Istio's `/jaeger` base path, serving the Istio-shaped
/// fixtures; `failing` makes every answer a 503.
fn fake_jaeger(failing: bool) -> String {
    let documents: Vec<Value> =
        ["istio-propagate.json", "istio-otel.json", "istio-broken.json"].map(load).to_vec();
    let addr = stub(move |app| {
        let by_id = documents.clone();
        let by_service = documents.clone();
        app.route(
            "/jaeger/api/v3/traces/{id}",
            web::get().to(move |id: web::Path<String>| {
                let found = by_id.iter().find(|d| holds(d, None, Some(&id))).cloned();
                async move {
                    match (failing, found) {
                        (true, _) => HttpResponse::ServiceUnavailable().body("storage is down"),
                        (false, Some(document)) => HttpResponse::Ok().json(document),
                        (false, None) => HttpResponse::NotFound().json(
                            serde_json::json!({"error": {"httpCode": 404, "message": "trace not found"}}),
                        ),
                    }
                }
            }),
        )
        .route(
            "/jaeger/api/v3/traces",
            web::get().to(move |query: Query<std::collections::HashMap<String, String>>| {
                let service = query.get("query.service_name").cloned().unwrap_or_default();
                let timed =
                    query.contains_key("query.start_time_min") && query.contains_key("query.start_time_max");
                let found: Vec<Value> =
                    by_service.iter().filter(|d| holds(d, Some(&service), None)).cloned().collect();
                async move {
                    if failing {
                        return HttpResponse::ServiceUnavailable().body("storage is down");
                    }
                    if !timed {
                        return HttpResponse::BadRequest()
                            .body("query.start_time_min and query.start_time_max are required");
                    }
                    if found.is_empty() {
                        return HttpResponse::NotFound().json(
                            serde_json::json!({"error": {"httpCode": 404, "message": "No traces found"}}),
                        );
                    }
                    let resource_spans: Vec<Value> = found
                        .iter()
                        .flat_map(|d| d["result"]["resourceSpans"].as_array().unwrap().clone())
                        .collect();
                    HttpResponse::Ok().json(serde_json::json!({"result": {"resourceSpans": resource_spans}}))
                }
            }),
        )
        // What Istio's addon answers outside its base path.
        .default_service(web::to(|| async {
            HttpResponse::NotFound().content_type("text/html").body("<html>404</html>")
        }));
    });
    format!("http://{addr}")
}

async fn traces(args: &[&str]) -> (i32, String) {
    let mut all = vec!["traces"];
    all.extend_from_slice(args);
    let mut proc = Proc::start(&all, &[]);
    let status = proc.wait(Duration::from_secs(30)).await;
    (status.code().unwrap_or(-1), proc.output())
}

fn row<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
    text.lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no row {label} in\n{text}"))
        .trim_start()
        .strip_prefix(label)
        .unwrap()
        .split_whitespace()
        .collect()
}

#[actix_web::test]
async fn show_prints_trees_from_the_stacks_file() {
    let file = fixture("local-otel.jsonl");
    let file = file.to_str().unwrap();
    let (code, out) = traces(&["show", "--file", file, "--service", "ratings"]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.matches("\ntrace ").count() + usize::from(out.starts_with("trace ")),
        1,
        "only the v3 trace has ratings:\n{out}"
    );
    assert!(out.contains(&format!("{} spans", app_spans_with("v3", RECORDED))), "{out}");
    let (code, out) = traces(&["show", "--file", file, "--trace", "4BF92F3577B34DA6A3CE929D0E0E4736"]).await;
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("trace 4bf92f3577b34da6a3ce929d0e0e4736 ")
            && lines[0].contains(&format!("{} spans", app_spans_with("v1", RECORDED))),
        "{out}"
    );
    assert!(
        lines[1].starts_with("productpage SERVER GET /productpage (parent 00f067aa0ba902b7 missing)"),
        "{out}"
    );
    assert!(lines[2].starts_with("  productpage INTERNAL fetch details"), "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with("      details SERVER GET /details/{id}") && l.ends_with('|')),
        "{out}"
    );
    let (code, out) = traces(&["show", "--file", file, "--trace", "ffffffffffffffffffffffffffffffff"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("trace ffffffffffffffffffffffffffffffff not found"));
}

#[actix_web::test]
async fn a_saved_jaeger_answer_is_a_trace_file_too() {
    let (code, out) = traces(&["show", "--file", fixture("istio-otel.json").to_str().unwrap()]).await;
    assert_eq!(code, 0, "{out}");
    let spans = istio_otel_sidecar_spans() + app_spans_with("v1", RECORDED);
    assert!(
        out.starts_with("trace 4bf92f3577b34da6a3ce929d0e0e4736 ") && out.contains(&format!("{spans} spans")),
        "{out}"
    );
}

#[actix_web::test]
async fn compare_puts_an_istio_propagate_trace_beside_an_otel_one() {
    let jaeger = fake_jaeger(false);
    let (code, out) = traces(&[
        "compare",
        "--jaeger",
        &jaeger,
        "latest:productpage.bookinfo-propagate",
        "latest:productpage.bookinfo-otel",
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    let app = app_spans_with("v1", RECORDED);
    let total = (istio_otel_sidecar_spans() + app).to_string();
    assert_eq!(row(&out, "spans "), ["9", &total]);
    assert_eq!(row(&out, "sidecar (Envoy)"), ["9", &istio_otel_sidecar_spans().to_string()]);
    assert_eq!(row(&out, "application"), ["0", &app.to_string()]);
    assert_eq!(row(&out, "orphans"), ["0", "0"]);
    let internal = per_service_kind_with("v1", RECORDED)[&("productpage", "INTERNAL")];
    assert_eq!(row(&out, "productpage INTERNAL"), ["0", &internal.to_string()]);
    assert_eq!(row(&out, "ratings.bookinfo-propagate SERVER"), ["1", "0"]);
    assert!(out.contains("\nA: trace 80f198ee56343ba864fe8b2a57d3eff7"));
    assert!(out.contains("\nB: trace 4bf92f3577b34da6a3ce929d0e0e4736"));
    assert!(out.contains(
        "  istio-ingressgateway.istio-system CLIENT productpage.bookinfo-otel.svc.cluster.local:9080/"
    ));

    let (code, out) = traces(&[
        "compare",
        "--json",
        "--jaeger",
        &jaeger,
        "80f198ee56343ba864fe8b2a57d3eff7",
        "4bf92f3577b34da6a3ce929d0e0e4736",
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((json["a"]["spans"].as_u64(), json["a"]["application_spans"].as_u64()), (Some(9), Some(0)));
    let sidecar = istio_otel_sidecar_spans() as u64;
    assert_eq!((json["b"]["sidecar_spans"].as_u64(), json["b"]["depth"].as_u64()), (Some(sidecar), Some(9)));
}

#[actix_web::test]
async fn a_trace_with_a_lost_hop_and_a_skewed_clock_still_reads() {
    let jaeger = fake_jaeger(false);
    let (code, out) = traces(&[
        "compare",
        "--jaeger",
        &jaeger,
        "80f198ee56343ba864fe8b2a57d3eff7",
        "0123456789abcdef0123456789abcdef",
    ])
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(row(&out, "orphans"), ["0", "1"]);
    let orphan = out
        .lines()
        .find(|l| l.starts_with("ratings.bookinfo-propagate SERVER "))
        .expect("the orphan is a root");
    assert!(orphan.contains("(parent f000000000000006 missing)"), "{orphan}");
    for line in out.lines().filter(|l| l.ends_with('|')) {
        assert_eq!(line.rsplit('|').nth(1).unwrap().chars().count(), 30, "{line}");
    }
}

#[actix_web::test]
async fn jaeger_failures_are_clear_errors() {
    let failing = fake_jaeger(true);
    let (code, out) = traces(&["show", "--jaeger", &failing, "--service", "productpage.bookinfo-otel"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("answered 503: storage is down"), "{out}");

    let dead = dead_upstream().url("");
    let id = "80f198ee56343ba864fe8b2a57d3eff7";
    let (code, out) = traces(&["compare", "--jaeger", &dead, id, id]).await;
    assert_eq!(code, 1);
    assert!(out.contains("cannot reach Jaeger at"), "{out}");
    let (code, out) = traces(&["compare", "--jaeger", &dead, "a", id]).await;
    assert_eq!(code, 1);
    assert!(out.contains("\"a\" is not a trace id"), "{out}");

    let jaeger = fake_jaeger(false);
    let (code, out) = traces(&["show", "--jaeger", &jaeger, "--service", "nobody"]).await;
    assert_eq!((code, out.trim()), (0, "no traces with a span of nobody"));
    let (code, out) = traces(&["show", "--jaeger", &jaeger]).await;
    assert_eq!(code, 1);
    assert!(out.contains("--service is needed"), "{out}");
}

#[actix_web::test]
async fn up_prints_the_tree_of_a_page_and_keeps_it_in_its_runs_file() {
    let mut up = Up::start(&[], &[]).await;
    let sink = up.store.otlp().to_owned();
    let file = up.store.file.clone().expect("the run's file is printed");
    assert!(file.starts_with(crate::process::test_runs_dir()), "{}", file.display());
    let page = get(&format!("http://{}/productpage", up.addr("productpage"))).await;
    assert_eq!(page.status, 200);
    let tree = up
        .proc
        .wait_for(Duration::from_secs(15), |l| {
            l.starts_with("productpage SERVER GET /productpage ").then(|| l.to_owned())
        })
        .await;
    assert!(tree.ends_with("|##############################|"), "{tree}");
    // The calls hang right under the request's span, each with its upstream's span under it.
    let output = up.proc.output();
    assert!(output.contains("\n  productpage CLIENT GET "), "{output}");
    assert!(output.contains("\n    details SERVER GET /details/{id} "), "{output}");

    // The sink takes OTLP JSON as well as protobuf.
    let export = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "by-hand"}}]},
        "scopeSpans": [{"spans": [{"traceId": "5eed".repeat(8), "spanId": "0000000000000001", "name": "hand-made", "kind": 2,
        "startTimeUnixNano": "1000000", "endTimeUnixNano": "3000000"}]}]}]});
    let posted = answer(client().post(format!("{sink}/v1/traces")).send_json(&export)).await;
    assert_eq!(posted.status, 200);
    up.proc
        .wait_for(Duration::from_secs(10), |l| l.starts_with("by-hand SERVER hand-made ").then_some(()))
        .await;

    up.proc.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success());
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(written.lines().any(|l| l.contains("GET /productpage")), "{written}");
    assert!(written.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));

    let (code, out) = traces(&["show", "--file", file.to_str().unwrap(), "--service", "by-hand"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("by-hand SERVER hand-made"), "{out}");
}

/// Two runs of the stack, reviews routed to v2 in the first and to v1 in the second, and a
/// trace of each compared: `@1:` names the run before the newest, a run's name names it too,
/// and `traces runs` lists both.
#[actix_web::test]
async fn traces_of_two_runs_are_compared_by_naming_their_runs() {
    let runs = std::env::temp_dir().join(format!("bookinfo-two-runs-{}", std::process::id()));
    let runs_dir = runs.to_str().unwrap().to_owned();
    let env = [("BOOKINFO_RUNS_DIR", runs_dir.as_str())];
    let istio = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("k8s/istio");
    let routes = |file: &str| {
        format!("{},{}", istio.join("destination-rules.yaml").display(), istio.join(file).display())
    };
    // v2 for everyone; then v1 for everyone who is not jason.
    for file in ["virtual-service-reviews-v2.yaml", "virtual-service-reviews-baggage.yaml"] {
        let mut up = Up::start(&["--quiet-traces", "--routes", &routes(file)], &env).await;
        let page = format!("http://{}/productpage", up.addr("productpage"));
        assert_eq!(get(&page).await.status, 200);
        // Its trace is whole in the store, so written, before the run ends.
        let viewer = up.store.viewer().to_owned();
        crate::wait::eventually(
            Duration::from_secs(20),
            || format!("the page's trace ({file})"),
            || async {
                let list = get(&format!("{viewer}/api/bookinfo/traces?service=productpage")).await.json();
                list["traces"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|t| t["reviews_version"].is_string()))
                    .then_some(())
            },
        )
        .await;
        up.proc.signal(nix::sys::signal::Signal::SIGTERM);
        assert!(up.proc.wait(Duration::from_secs(30)).await.success(), "{}", up.proc.output());
    }
    let mut listed = Proc::start(&["traces", "runs"], &env);
    assert!(listed.wait(Duration::from_secs(30)).await.success(), "{}", listed.output());
    let out = listed.output();
    let name_of = |back: &str| -> String {
        let line = out
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(back))
            .unwrap_or_else(|| panic!("{back}:\n{out}"));
        line.split_whitespace().next().unwrap().to_owned()
    };
    let (older, newest) = (name_of("@1"), name_of("@0"));
    assert!(older < newest, "newest first: {out}");

    let compare = |a: String, b: String| async move {
        let mut proc = Proc::start(&["traces", "compare", &a, &b], &env);
        let status = proc.wait(Duration::from_secs(30)).await;
        (status.code(), proc.output())
    };
    let row = |out: &str, label: &str| -> Vec<String> {
        let line = out.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_default();
        line.trim_start()[label.len().min(line.trim_start().len())..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    for (a, b) in [
        ("@1:latest:productpage".to_owned(), "@0:latest:productpage".to_owned()),
        (format!("{older}:latest:productpage"), format!("{newest}:latest:productpage")),
    ] {
        let (code, out) = compare(a, b).await;
        assert_eq!(code, Some(0), "{out}");
        assert_eq!(row(&out, "reviews version"), ["v2", "v1"], "{out}");
        assert_eq!(
            row(&out, "application"),
            [
                app_spans_with("v2", FetchSpans::Off).to_string(),
                app_spans_with("v1", FetchSpans::Off).to_string()
            ],
            "{out}"
        );
    }
    let (code, out) = compare("@5:latest:productpage".into(), "@0:latest:productpage".into()).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no run @5 with traces") && out.contains("bookinfo traces runs"), "{out}");
    let (code, out) = compare("@1:latest:productpage".into(), "latest:productpage".into()).await;
    assert_eq!(code, Some(0), "a trace of the newest run needs no run named: {out}");
    std::fs::remove_dir_all(&runs).unwrap();
}
