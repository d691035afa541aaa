//! The image, and the Kubernetes path run on this machine: `k8s/test/image` builds the
//! Dockerfile with a real Docker engine, then runs these tests against what it built. Each
//! overlay is replayed pod by pod ([`crate::kubelet`]): the page through the containers, its
//! stars, and in `otel` the spans at a collector on the host.
//!
//! They need that engine and that image, so they are ignored by a plain `cargo test`;
//! `.ci/run` runs them through `k8s/test/image`. `BOOKINFO_IMAGE` names the image (default:
//! the tag of the README's `docker build`); `DOCKER_HOST` the engine. What the overlays give
//! each container is checked without Docker in [`crate::manifests`].

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bookinfo_propagation::TracingMode;

use crate::helpers::get;
use crate::kubelet::{Cluster, Replay, docker, docker_ok};
use crate::otlp::Receiver;

/// The collector the overlays export to: Istio's addon Jaeger (`samples/addons/jaeger.yaml`).
const COLLECTOR: &str = "jaeger-collector.istio-system.svc.cluster.local:4318";

/// Most the image may weigh.
const MAX_IMAGE_BYTES: u64 = 40_000_000;

fn image() -> String {
    std::env::var("BOOKINFO_IMAGE").unwrap_or_else(|_| crate::manifests::readme_image())
}

#[test]
#[ignore = "needs a Docker engine and the built image: k8s/test/image runs it"]
fn the_image_is_one_small_binary_for_a_non_root_user_and_no_shell() {
    let image = image();
    let size: u64 = docker_ok(&["image", "inspect", "-f", "{{.Size}}", &image]).parse().unwrap();
    println!("image {image}: {:.1} MB", size as f64 / 1e6);
    assert!(size < MAX_IMAGE_BYTES, "{image} is {size} bytes, over {MAX_IMAGE_BYTES}");
    let user = docker_ok(&["image", "inspect", "-f", "{{.Config.User}}", &image]);
    assert_eq!(user.split(':').next(), Some("65532"), "the numeric non-root user");
    let entrypoint = docker_ok(&["image", "inspect", "-f", "{{json .Config.Entrypoint}}", &image]);
    assert_eq!(entrypoint, r#"["/usr/local/bin/bookinfo"]"#);

    // Its files, as `docker export` gives them.
    let container = docker_ok(&["create", &image]);
    let exported = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("docker export {container} | tar -tv"))
        .output()
        .unwrap();
    docker_ok(&["rm", &container]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let listing = String::from_utf8_lossy(&exported.stdout);
    let in_bin: BTreeSet<String> = listing
        .lines()
        .filter_map(|line| line.split_once(" usr/local/bin/").map(|(_, name)| name.to_owned()))
        .filter(|name| !name.is_empty())
        .collect();
    assert_eq!(in_bin, BTreeSet::from(["bookinfo".to_owned(), "curl -> bookinfo".to_owned()]));
    let shells: Vec<&str> = listing
        .lines()
        .filter(|line| {
            ["/sh", "/bash", "/dash", "/busybox"]
                .iter()
                .any(|shell| line.split(" -> ").next().unwrap_or("").ends_with(shell))
        })
        .collect();
    assert!(shells.is_empty(), "a shell in the image: {shells:?}");
    let sh = docker(&["run", "--rm", "--entrypoint", "/bin/sh", &image, "-c", "true"]);
    assert!(!sh.status.success(), "/bin/sh ran in the image");
}

#[test]
#[ignore = "needs a Docker engine and the built image: k8s/test/image runs it"]
fn the_image_answers_help_as_bookinfo_and_as_curl() {
    let image = image();
    let help = docker(&["run", "--rm", &image, "--help"]);
    assert!(help.status.success(), "{help:?}");
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: bookinfo"), "{help:?}");
    let curl = docker(&["run", "--rm", &image, "curl", "--help"]);
    assert!(curl.status.success(), "{curl:?}");
    assert!(String::from_utf8_lossy(&curl.stdout).contains("curl"), "{curl:?}");
}

#[actix_web::test]
#[ignore = "needs a Docker engine and the built image: k8s/test/image runs it"]
async fn the_propagate_overlay_runs_as_a_cluster_runs_it() {
    replay("propagate", TracingMode::Propagate).await;
}

#[actix_web::test]
#[ignore = "needs a Docker engine and the built image: k8s/test/image runs it"]
async fn the_otel_overlay_runs_as_a_cluster_runs_it_and_its_spans_reach_the_collector() {
    replay("otel", TracingMode::Otel).await;
}

#[actix_web::test]
#[ignore = "needs a Docker engine and the built image: k8s/test/image runs it"]
async fn the_otel_b3_overlay_runs_as_a_cluster_runs_it_and_its_spans_reach_the_collector() {
    replay("otel-b3", TracingMode::Otel).await;
}

async fn replay(overlay: &str, mode: TracingMode) {
    let receiver = Receiver::http();
    let collector: SocketAddr = receiver.endpoint.trim_start_matches("http://").parse().unwrap();
    let mut replay = Replay::plan(Cluster::render(overlay), &[(COLLECTOR, collector)]);

    replay.start(&image());
    let ready = replay.wait_ready(Duration::from_secs(60));
    println!("{overlay}: every pod ready within {ready:?}");
    for pod in &replay.pods {
        let said = match mode {
            TracingMode::Otel => "tracing: otel",
            _ => "tracing: propagate",
        };
        assert!(pod.logs().contains(said), "{}: no {said:?} in its log:\n{}", pod.name, pod.logs());
    }

    // Pages through productpage's Service, several at once so that its connections to reviews
    // spread over the three versions' pods, until each has served one.
    let mut served: HashMap<String, String> = HashMap::new();
    let page = replay.service_url("productpage", "/productpage");
    let deadline = Instant::now() + Duration::from_secs(60);
    while served.len() < 3 && Instant::now() < deadline {
        let pages = futures_util::future::join_all((0..6).map(|_| get(&page))).await;
        for answer in pages {
            assert_eq!(answer.status, 200);
            assert!(answer.body.contains("<title>Simple Bookstore App</title>"));
            assert!(answer.body.contains("Book Details"), "details answered:\n{}", answer.body);
            assert!(answer.body.contains("Book Reviews"), "reviews answered:\n{}", answer.body);
            let pod = answer
                .body
                .split("Reviews served by: ")
                .nth(1)
                .and_then(|rest| rest.split(|c: char| c.is_whitespace() || c == '<').next())
                .expect("the reviews pod")
                .to_owned();
            served.insert(pod, answer.body);
        }
    }
    for (version, stars, color) in [("v1", 0, None), ("v2", 9, Some("black")), ("v3", 9, Some("red"))] {
        let pod = replay.pod(&format!("reviews-{version}"));
        let body = served.get(&pod.name).unwrap_or_else(|| panic!("no page served by {} in 60 s", pod.name));
        assert_eq!(body.matches("glyphicon glyphicon-star").count(), stars, "{}", pod.name);
        if let Some(color) = color {
            assert!(body.contains(&format!("text-{color}-500")), "{}: {color} stars", pod.name);
            assert!(!body.contains("Ratings service is currently unavailable"), "ratings answered");
        }
    }

    if mode == TracingMode::Otel {
        spans_reach_the_collector(&replay, &receiver).await;
    }

    for pod in &replay.pods {
        let took = pod.stop();
        assert!(took < Duration::from_secs(2), "{} took {took:?} to stop:\n{}", pod.name, pod.logs());
        assert_eq!(pod.exit_code(), 0, "{}:\n{}", pod.name, pod.logs());
    }
}

/// Each service's spans arrive, from the pod that made them; one page is one trace across the
/// four; the probes made none.
async fn spans_reach_the_collector(replay: &Replay, receiver: &Receiver) {
    let services = ["productpage", "details", "reviews", "ratings"];
    let whole = crate::wait::poll(Duration::from_secs(20), || async {
        let spans = receiver.spans();
        let mut by_trace: HashMap<String, BTreeSet<String>> = HashMap::new();
        for span in &spans {
            by_trace.entry(span.trace_id()).or_default().insert(span.service());
        }
        by_trace.values().any(|seen| services.iter().all(|s| seen.contains(*s))).then_some(())
    })
    .await;
    let seen: Vec<String> = receiver
        .spans()
        .iter()
        .map(|s| {
            format!("{} {} {} {} parent {}", s.trace_id(), s.service(), s.kind(), s.span.name, s.parent())
        })
        .collect();
    assert!(whole.is_some(), "no trace across {services:?}:\n{}", seen.join("\n"));
    assert!(!seen.iter().any(|s| s.contains("/health")), "the probes made spans:\n{}", seen.join("\n"));
    let pods: BTreeSet<&str> = replay.pods.iter().map(|p| p.name.as_str()).collect();
    for span in receiver.spans() {
        let pod = span.resource_attr("k8s.pod.name").unwrap_or_default();
        assert!(pods.contains(pod.as_str()), "a {} span from pod {pod:?}", span.service());
        assert!(pod.starts_with(&format!("{}-", span.service())), "{} span from {pod}", span.service());
        let namespace = Some(replay.cluster.namespace.as_str());
        assert_eq!(span.resource_attr("k8s.namespace.name").as_deref(), namespace);
        assert_eq!(span.resource_attr("service.namespace").as_deref(), namespace);
    }
}
