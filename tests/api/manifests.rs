//! The Kubernetes and Istio files, without a cluster: kustomize renders them, every object is
//! parsed, and they are checked against each other and against the Kubernetes schemas; the
//! Dockerfile against the README and the workspace. Istio's own files are compared in
//! [`crate::reference`].
//!
//! What needs a tool (`kubectl`, `kubernetes-validate`) is ignored by a plain `cargo test`;
//! `.ci/run` installs the tools and runs them (`cargo test --test api -- --ignored manifests::`).
//! Run that way without the tool, a test fails.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use bookinfo::cli::{Cli, Command as Bookinfo};
use bookinfo::serve::Plan;
use bookinfo_config::Recording;
use bookinfo_propagation::TracingMode;
use clap::Parser;
use serde_json::Value;

use crate::helpers::require_tool;
use crate::kubelet::{Cluster, Pod, Replay};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn parse(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text).unwrap().into_iter().filter(|d| !d.is_null()).collect()
}

pub fn parse_file(path: &Path) -> Vec<Value> {
    parse(&std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display())))
}

/// `kubectl kustomize k8s/<dir>`, as text and parsed.
pub fn render(dir: &str) -> (String, Vec<Value>) {
    require_tool("kubectl", &["version", "--client"]);
    let output = Command::new("kubectl").arg("kustomize").arg(root().join("k8s").join(dir)).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let objects = parse(&text);
    (text, objects)
}

pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

pub fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    of_kind(objects, kind)
        .into_iter()
        .find(|o| o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

pub fn names(objects: &[Value], kind: &str) -> BTreeSet<String> {
    of_kind(objects, kind).iter().map(|o| o["metadata"]["name"].as_str().unwrap().to_owned()).collect()
}

/// The image tag the README's `docker build` gives.
pub fn readme_image() -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("docker build -t "))
        .expect("a docker build command");
    line.split_whitespace().nth(3).unwrap().to_owned()
}

#[test]
#[ignore = "needs kubectl: .ci/run runs it"]
fn the_base_is_istios_bookinfo_drop_in() {
    let (_, objects) = render("base");
    let services = ["details", "ratings", "reviews", "productpage"];
    assert_eq!(names(&objects, "Service"), services.iter().map(|s| s.to_string()).collect());
    for service in services {
        let svc = named(&objects, "Service", service);
        assert_eq!(svc["spec"]["ports"], serde_json::json!([{"port": 9080, "name": "http"}]), "{service}");
        assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": service}));
        assert_eq!(svc["metadata"]["labels"]["app"], service);
        assert_eq!(svc["metadata"]["labels"]["service"], service);
        let account = named(&objects, "ServiceAccount", &format!("bookinfo-{service}"));
        assert_eq!(account["metadata"]["labels"]["account"], service);
    }
    let deployments =
        ["details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3", "productpage-v1"];
    assert_eq!(names(&objects, "Deployment"), deployments.iter().map(|s| s.to_string()).collect());
    let image = readme_image();
    for deployment in of_kind(&objects, "Deployment") {
        let name = deployment["metadata"]["name"].as_str().unwrap();
        let (app, version) = name.rsplit_once('-').unwrap();
        let template = &deployment["spec"]["template"];
        for labels in [
            &deployment["metadata"]["labels"],
            &template["metadata"]["labels"],
            &deployment["spec"]["selector"]["matchLabels"],
        ] {
            assert_eq!(
                (labels["app"].as_str(), labels["version"].as_str()),
                (Some(app), Some(version)),
                "{name}"
            );
        }
        let pod = &template["spec"];
        assert_eq!(pod["serviceAccountName"], format!("bookinfo-{app}"));
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        let container = &pod["containers"][0];
        assert_eq!(container["image"], image.as_str(), "the image the README builds");
        assert_eq!(container["args"][0], "serve");
        assert_eq!(container["args"][1], app);
        if app == "reviews" {
            assert_eq!(container["args"][3], version, "reviews runs its version");
        }
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(
                container[probe]["httpGet"],
                serde_json::json!({"path": "/health", "port": 9080}),
                "{name}"
            );
        }
        for (kind, resource) in [("requests", "cpu"), ("requests", "memory"), ("limits", "memory")] {
            assert!(container["resources"][kind][resource].is_string(), "{name}: {kind}.{resource}");
        }
        // The propagate overlay drops this list whole: a variable added here must be weighed
        // there too.
        let env: Vec<&str> =
            container["env"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
        assert_eq!(env, ["POD_NAME", "POD_NAMESPACE", "OTEL_RESOURCE_ATTRIBUTES"], "{name}");
        let security = &container["securityContext"];
        assert_eq!(security["readOnlyRootFilesystem"], true);
        assert_eq!(security["allowPrivilegeEscalation"], false);
        assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
        let env = container["env"].as_array().unwrap();
        let var =
            |key: &str| env.iter().find(|e| e["name"] == key).unwrap_or_else(|| panic!("{name}: no {key}"));
        assert_eq!(var("POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
        assert_eq!(var("POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
        let attributes = var("OTEL_RESOURCE_ATTRIBUTES")["value"].as_str().unwrap();
        assert!(
            attributes.contains("k8s.pod.name=$(POD_NAME)")
                && attributes.contains("k8s.namespace.name=$(POD_NAMESPACE)")
        );
        let config_map = container["envFrom"][0]["configMapRef"]["name"].as_str().unwrap();
        assert!(names(&objects, "ConfigMap").contains(config_map), "{name} reads {config_map}");
    }
    let productpage = named(&objects, "Deployment", "productpage-v1");
    assert_eq!(productpage["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"], "/metrics");
}

#[test]
#[ignore = "needs kubectl: .ci/run runs it"]
fn both_overlays_run_side_by_side_each_in_its_mode() {
    let mut hosts = BTreeSet::new();
    for mode in ["propagate", "otel"] {
        let (_, objects) = render(&format!("overlays/{mode}"));
        let namespace = format!("bookinfo-{mode}");
        let ns = named(&objects, "Namespace", &namespace);
        assert_eq!(ns["metadata"]["labels"]["istio-injection"], "enabled");
        for object in objects.iter().filter(|o| o["kind"] != "Namespace") {
            assert_eq!(object["metadata"]["namespace"], namespace.as_str(), "{}", object["metadata"]["name"]);
        }
        let config = of_kind(&objects, "ConfigMap");
        assert_eq!(config.len(), 1);
        assert_eq!(config[0]["data"]["BOOKINFO_TRACING"], mode);
        let config_name = config[0]["metadata"]["name"].as_str().unwrap();
        for deployment in of_kind(&objects, "Deployment") {
            let container = &deployment["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(container["envFrom"][0]["configMapRef"]["name"], config_name);
        }
        for gateway in of_kind(&objects, "Gateway") {
            for server in gateway["spec"]["servers"].as_array().unwrap() {
                for host in server["hosts"].as_array().unwrap() {
                    assert!(hosts.insert(host.as_str().unwrap().to_owned()), "{host} served twice");
                }
            }
        }

        // propagate makes no spans: it is given no OTEL_* variable, which it would not read.
        // otel sends its spans to Istio's Jaeger addon, around the sidecar.
        let data = config[0]["data"].as_object().unwrap();
        if mode == "propagate" {
            assert_eq!(data.keys().collect::<Vec<_>>(), ["BOOKINFO_TRACING"]);
            // Its patch removes each container's env list whole, which holds only the
            // variables that name the pod on its spans (the base's test says so).
            for deployment in of_kind(&objects, "Deployment") {
                let container = &deployment["spec"]["template"]["spec"]["containers"][0];
                assert!(container["env"].is_null(), "{}", deployment["metadata"]["name"]);
            }
            continue;
        }
        let endpoint = data["OTEL_EXPORTER_OTLP_ENDPOINT"].as_str().unwrap();
        let authority = endpoint.strip_prefix("http://").unwrap();
        let (host, port) = authority.split_once(':').unwrap();
        assert_eq!(host, "jaeger-collector.istio-system.svc.cluster.local");
        for deployment in of_kind(&objects, "Deployment") {
            let excluded = deployment["spec"]["template"]["metadata"]["annotations"]["traffic.sidecar.istio.io/excludeOutboundPorts"]
                .as_str()
                .unwrap();
            assert!(excluded.split(',').any(|p| p == port), "{port} is not excluded: {excluded}");
        }
    }
}

/// Which overlay goes with which of Istio's tracing providers (its Telemetry file): the one the
/// overlay's comments name.
fn overlay_of(tracer: bookinfo_mesh::envoy::Tracer) -> &'static str {
    use bookinfo_mesh::envoy::Tracer;
    match tracer {
        Tracer::Zipkin => "overlays/otel-b3",
        Tracer::ZipkinW3c | Tracer::Otel => "overlays/otel",
    }
}

#[test]
#[ignore = "needs kubectl: .ci/run runs it"]
fn the_otel_overlays_read_what_each_providers_sidecars_write_as_the_local_mesh_does() {
    for &tracer in bookinfo_mesh::envoy::Tracer::ALL {
        let overlay = overlay_of(tracer);
        let (_, objects) = render(overlay);
        let config = of_kind(&objects, "ConfigMap");
        assert_eq!(config.len(), 1, "{overlay}");
        assert_eq!(
            config[0]["data"]["OTEL_PROPAGATORS"],
            tracer.app_propagators(),
            "{overlay} under {tracer}"
        );
        assert_eq!(config[0]["data"]["BOOKINFO_TRACING"], "otel");
    }
}

#[test]
fn each_providers_telemetry_file_and_overlay_are_the_local_meshs() {
    use bookinfo_mesh::envoy::Tracer;
    for &tracer in Tracer::ALL {
        let overlay = overlay_of(tracer);
        let telemetry = parse_file(&root().join(format!("k8s/istio/telemetry-{tracer}.yaml")));
        let tracing = &telemetry[0]["spec"]["tracing"][0];
        assert_eq!(tracing["providers"][0]["name"], tracer.as_str());
        assert_eq!(
            tracing["customTags"]["baggage"]["header"]["name"], "baggage",
            "the local mesh tags it too"
        );
        let overlay_text =
            std::fs::read_to_string(root().join("k8s").join(overlay).join("kustomization.yaml")).unwrap();
        let named_here = overlay_text.contains(&format!("telemetry-{tracer}.yaml"))
            || std::fs::read_to_string(root().join("k8s/overlays/otel/kustomization.yaml"))
                .unwrap()
                .contains(&format!("`{tracer}`"));
        assert!(named_here, "{overlay} says it goes with telemetry-{tracer}.yaml");
    }
    // The providers themselves: mesh-config.yaml defines each, with the trace context option
    // the local mesh renders.
    let mesh_config = parse_file(&root().join("k8s/istio/mesh-config.yaml"));
    let providers = mesh_config[0]["spec"]["meshConfig"]["extensionProviders"].as_array().unwrap();
    for &tracer in Tracer::ALL {
        let provider =
            providers.iter().find(|p| p["name"] == tracer.as_str()).unwrap_or_else(|| panic!("{tracer}"));
        let w3c = provider["zipkin"]["traceContextOption"] == "USE_B3_WITH_W3C_PROPAGATION";
        assert_eq!(w3c, tracer == Tracer::ZipkinW3c, "{tracer}");
        assert_eq!(provider.get("opentelemetry").is_some(), tracer == Tracer::Otel, "{tracer}");
    }
}

/// (service, subset) pairs routed to by the VirtualServices in `files`.
pub fn routed_subsets(files: &[PathBuf]) -> Vec<(String, String, String)> {
    let mut routed = Vec::new();
    for file in files {
        for document in parse_file(file).iter().filter(|d| d["kind"] == "VirtualService") {
            for rule in document["spec"]["http"].as_array().into_iter().flatten() {
                for route in rule["route"].as_array().into_iter().flatten() {
                    let host = route["destination"]["host"].as_str().unwrap();
                    let subset = route["destination"]["subset"].as_str().unwrap_or_default();
                    routed.push((
                        file.display().to_string(),
                        host.split('.').next().unwrap().to_owned(),
                        subset.to_owned(),
                    ));
                }
            }
        }
    }
    routed
}

/// Whether `subset` of `host`, per the DestinationRules `rules`, selects a Deployment.
pub fn selects(rules: &[Value], deployments: &[&Value], host: &str, subset: &str) -> bool {
    let Some(rule) = rules.iter().find(|r| r["kind"] == "DestinationRule" && r["spec"]["host"] == host)
    else {
        return false;
    };
    let Some(labels) = rule["spec"]["subsets"].as_array().unwrap().iter().find(|s| s["name"] == subset)
    else {
        return false;
    };
    deployments.iter().any(|d| {
        let pod = &d["spec"]["template"]["metadata"]["labels"];
        pod["app"] == host && labels["labels"].as_object().unwrap().iter().all(|(k, v)| &pod[k] == v)
    })
}

#[test]
#[ignore = "needs kubectl: .ci/run runs it"]
fn every_route_reaches_a_service_and_a_subset_with_pods() {
    // The base and ratings v2 on MySQL, which virtual-service-ratings-mysql.yaml routes to.
    let (_, objects) = render("overlays/otel-mysql");
    let services = names(&objects, "Service");
    let deployments = of_kind(&objects, "Deployment");
    let istio_dir = root().join("k8s/istio");
    let ours: Vec<PathBuf> = std::fs::read_dir(&istio_dir).unwrap().map(|e| e.unwrap().path()).collect();
    let rules = parse_file(&istio_dir.join("destination-rules.yaml"));
    for (file, host, subset) in routed_subsets(&ours) {
        assert!(services.contains(&host), "{file}: no Service {host}");
        if !subset.is_empty() {
            assert!(
                selects(&rules, &deployments, &host, &subset),
                "{file}: subset {subset} of {host} has no pods"
            );
        }
    }
}

#[test]
#[ignore = "needs kubectl and kubernetes-validate: .ci/run runs it"]
fn rendered_objects_pass_the_kubernetes_schemas() {
    require_tool("kubernetes-validate", &["--version"]);
    for dir in [
        "base",
        "overlays/propagate",
        "overlays/otel",
        "overlays/otel-b3",
        "overlays/propagate-mysql",
        "overlays/otel-mysql",
        // Their Gateway API and Istio objects are skipped here (kubernetes-validate has no schema
        // for them): gateway_api_objects_pass_the_gateway_api_schemas and
        // reference::istio_resources_pass_istios_schemas check those.
        "overlays/ambient-propagate",
        "overlays/ambient-otel",
    ] {
        let (text, _) = render(dir);
        let file = std::env::temp_dir().join(format!(
            "bookinfo-{}-{}.yaml",
            dir.replace('/', "-"),
            std::process::id()
        ));
        std::fs::write(&file, text).unwrap();
        let output = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", "1.30.0"])
            .arg(&file)
            .output()
            .unwrap();
        let report =
            String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        std::fs::remove_file(&file).unwrap();
        assert!(output.status.success() && !report.contains("ERROR"), "{dir}:\n{report}");
    }
}

/// The ambient overlays: the namespace of each and the sidecar overlay it is made from.
const AMBIENT: [(&str, &str, &str); 2] = [
    ("overlays/ambient-propagate", "bookinfo-ambient-propagate", "overlays/propagate"),
    ("overlays/ambient-otel", "bookinfo-ambient-otel", "overlays/otel"),
];

/// The waypoint `istioctl waypoint generate --for service --namespace NS` writes (istio/istio
/// istioctl/pkg/waypoint/waypoint.go: the default name `waypoint`, class `istio-waypoint`, one
/// listener `mesh` on 15008 speaking HBONE, the traffic type as the label istio.io/waypoint-for).
fn istioctl_waypoint(namespace: &str) -> Value {
    serde_json::json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {
            "name": "waypoint",
            "namespace": namespace,
            "labels": {"istio.io/waypoint-for": "service"},
        },
        "spec": {
            "gatewayClassName": "istio-waypoint",
            "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
        },
    })
}

#[test]
#[ignore = "needs kubectl: .ci/run runs it"]
fn the_ambient_overlays_run_side_by_side_without_sidecars_behind_a_waypoint() {
    let mut namespaces = BTreeSet::from(["bookinfo-propagate".to_owned(), "bookinfo-otel".to_owned()]);
    for (overlay, namespace, sidecar_overlay) in AMBIENT {
        let (_, objects) = render(overlay);
        assert!(namespaces.insert(namespace.to_owned()), "{overlay}: {namespace} taken");
        for object in objects.iter().filter(|o| o["kind"] != "Namespace") {
            assert_eq!(
                object["metadata"]["namespace"], namespace,
                "{overlay}: {}",
                object["metadata"]["name"]
            );
        }

        // In ambient with every Service's traffic through the waypoint, never injected.
        let ns = named(&objects, "Namespace", namespace);
        let labels = ns["metadata"]["labels"].as_object().unwrap();
        assert_eq!(labels["istio.io/dataplane-mode"], "ambient", "{overlay}");
        assert_eq!(labels["istio.io/use-waypoint"], "waypoint", "{overlay}");
        assert!(!labels.contains_key("istio-injection") && !labels.contains_key("istio.io/rev"), "{overlay}");

        // The waypoint it names, exactly as istioctl generates it, and the only one.
        let waypoints: Vec<&Value> = of_kind(&objects, "Gateway")
            .into_iter()
            .filter(|g| g["spec"]["gatewayClassName"] == "istio-waypoint")
            .collect();
        assert_eq!(waypoints, [&istioctl_waypoint(namespace)], "{overlay}");

        // Nothing for sidecars: no injection asked per pod, no sidecar annotation, no Istio
        // networking object (in ambient, routing is the Gateway API's at the waypoint).
        for deployment in of_kind(&objects, "Deployment") {
            let template = &deployment["spec"]["template"]["metadata"];
            let name = deployment["metadata"]["name"].as_str().unwrap();
            for key in template["annotations"].as_object().into_iter().flatten().map(|(k, _)| k) {
                assert!(!key.contains("sidecar.istio.io"), "{overlay}: {name}: {key}");
            }
            assert!(template["labels"].get("sidecar.istio.io/inject").is_none(), "{overlay}: {name}");
        }
        assert!(
            objects.iter().all(|o| !o["apiVersion"].as_str().unwrap().starts_with("networking.istio.io/")),
            "{overlay}"
        );

        // The namespace's Telemetry: no selector or targetRefs, so it holds for every proxy of the
        // namespace, the waypoint included; the provider stays the mesh-wide one.
        let telemetry = of_kind(&objects, "Telemetry");
        assert_eq!(telemetry.len(), 1, "{overlay}");
        let spec = &telemetry[0]["spec"];
        assert!(spec.get("selector").is_none() && spec.get("targetRefs").is_none(), "{overlay}");
        assert_eq!(spec["tracing"][0]["randomSamplingPercentage"], 100.0);
        assert!(
            spec["tracing"][0].get("providers").is_none(),
            "{overlay}: k8s/istio/telemetry-*.yaml picks it"
        );
        assert_eq!(spec["tracing"][0]["customTags"]["baggage"]["header"]["name"], "baggage");

        // The sidecar overlay's application, unchanged but for the sidecar annotation: the
        // same objects and the same mode.
        let (_, sidecar) = render(sidecar_overlay);
        for kind in ["Deployment", "ServiceAccount", "ConfigMap"] {
            assert_eq!(names(&objects, kind), names(&sidecar, kind), "{overlay}: {kind}");
        }
        assert_eq!(of_kind(&objects, "ConfigMap")[0]["data"], of_kind(&sidecar, "ConfigMap")[0]["data"]);
        for deployment in of_kind(&sidecar, "Deployment") {
            let name = deployment["metadata"]["name"].as_str().unwrap();
            let ours = named(&objects, "Deployment", name);
            let containers = |d: &Value| d["spec"]["template"]["spec"].clone();
            assert_eq!(containers(ours), containers(deployment), "{overlay}: {name}");
        }
        // The sidecar overlay's Services and the per-version ones the routes name.
        let per_version =
            ["reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1", "details-v1", "productpage-v1"];
        let mut services = names(&sidecar, "Service");
        services.extend(per_version.map(str::to_owned));
        assert_eq!(names(&objects, "Service"), services, "{overlay}");
        for name in per_version {
            let service = named(&objects, "Service", name);
            let (app, version) = name.rsplit_once('-').unwrap();
            assert_eq!(service["spec"]["selector"], serde_json::json!({"app": app, "version": version}));
            assert_eq!(service["spec"]["ports"], serde_json::json!([{"port": 9080, "name": "http"}]));
        }
    }
}

/// The ports a Service of `objects` named `name` has, empty if there is none.
fn service_ports(objects: &[Value], name: &str) -> Vec<u64> {
    of_kind(objects, "Service")
        .into_iter()
        .filter(|s| s["metadata"]["name"] == name)
        .flat_map(|s| s["spec"]["ports"].as_array().unwrap().iter().map(|p| p["port"].as_u64().unwrap()))
        .collect()
}

#[test]
#[ignore = "needs kubectl: .ci/run runs it"]
fn every_gateway_api_route_binds_to_a_parent_and_reaches_a_service_port_with_pods() {
    for (overlay, namespace, _) in AMBIENT {
        let (_, objects) = render(overlay);
        let deployments = of_kind(&objects, "Deployment");
        let routes = of_kind(&objects, "HTTPRoute");
        assert_eq!(
            names(&objects, "HTTPRoute"),
            BTreeSet::from(["bookinfo".to_owned(), "reviews".to_owned()])
        );
        for route in &routes {
            let route_name = route["metadata"]["name"].as_str().unwrap();
            for parent in route["spec"]["parentRefs"].as_array().unwrap() {
                let name = parent["name"].as_str().unwrap();
                assert!(
                    parent.get("namespace").is_none(),
                    "{overlay}: {route_name}: the parent is the route's namespace's"
                );
                match parent["kind"].as_str().unwrap_or("Gateway") {
                    // GAMMA: bound to a Service, applied by the waypoint serving it.
                    "Service" => {
                        assert_eq!(parent["group"], "", "{overlay}: {route_name}: the core group");
                        let port = parent["port"].as_u64().unwrap();
                        assert!(
                            service_ports(&objects, name).contains(&port),
                            "{overlay}: {route_name}: {name}:{port}"
                        );
                    }
                    "Gateway" => {
                        let gateway = named(&objects, "Gateway", name);
                        assert_eq!(gateway["spec"]["gatewayClassName"], "istio", "{overlay}: {route_name}");
                        let listeners = gateway["spec"]["listeners"].as_array().unwrap();
                        assert!(
                            listeners.iter().any(|l| l["protocol"] == "HTTP"
                                && l["allowedRoutes"]["namespaces"]["from"] == "Same"),
                            "{overlay}: {route_name}: no HTTP listener takes this namespace's routes"
                        );
                    }
                    other => panic!("{overlay}: {route_name}: a parent of kind {other}"),
                }
            }
            for rule in route["spec"]["rules"].as_array().unwrap() {
                for backend in rule["backendRefs"].as_array().unwrap() {
                    let name = backend["name"].as_str().unwrap();
                    let port = backend["port"].as_u64().unwrap();
                    assert!(
                        backend.get("kind").is_none() && backend.get("namespace").is_none(),
                        "{overlay}: {name}"
                    );
                    assert!(
                        service_ports(&objects, name).contains(&port),
                        "{overlay}: {route_name}: no Service {name} with port {port}"
                    );
                    let selector = named(&objects, "Service", name)["spec"]["selector"].as_object().unwrap();
                    assert!(
                        deployments.iter().any(|d| {
                            let pod = &d["spec"]["template"]["metadata"]["labels"];
                            selector.iter().all(|(k, v)| &pod[k] == v)
                        }),
                        "{overlay}: {route_name}: Service {name} selects no pods"
                    );
                }
            }
        }
        assert_eq!(named(&objects, "HTTPRoute", "reviews")["metadata"]["namespace"], namespace);
    }
}

/// The reviews HTTPRoute routes as k8s/istio/virtual-service-reviews-baggage.yaml does: the same
/// baggage regexes, in the same order, to the same versions, and everyone else to v1.
#[test]
#[ignore = "needs kubectl: .ci/run runs it"]
fn the_reviews_route_is_the_baggage_virtual_service_in_the_gateway_api() {
    let virtual_service = parse_file(&root().join("k8s/istio/virtual-service-reviews-baggage.yaml"));
    let expected: Vec<(Option<String>, String)> = virtual_service[0]["spec"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            let regex = rule["match"][0]["headers"]["baggage"]["regex"].as_str().map(str::to_owned);
            let destination = &rule["route"][0]["destination"];
            (
                regex,
                format!(
                    "{}-{}",
                    destination["host"].as_str().unwrap(),
                    destination["subset"].as_str().unwrap()
                ),
            )
        })
        .collect();
    assert_eq!(expected.first().map(|(_, to)| to.as_str()), Some("reviews-v2"), "jason to v2");
    assert_eq!(expected.last(), Some(&(None, "reviews-v1".to_owned())), "everyone else to v1");
    for (overlay, _, _) in AMBIENT {
        let (_, objects) = render(overlay);
        let route = named(&objects, "HTTPRoute", "reviews");
        let rules: Vec<(Option<String>, String)> = route["spec"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|rule| {
                let matches = rule["matches"].as_array().map(Vec::as_slice).unwrap_or_default();
                assert!(matches.len() <= 1, "{overlay}: one match per rule");
                let regex = matches.first().map(|m| {
                    let headers = m["headers"].as_array().unwrap();
                    assert_eq!(headers.len(), 1, "{overlay}");
                    assert_eq!(headers[0]["name"], "baggage");
                    assert_eq!(headers[0]["type"], "RegularExpression");
                    assert!(m.get("path").is_none(), "{overlay}: no path, so the header decides the order");
                    headers[0]["value"].as_str().unwrap().to_owned()
                });
                let backends = rule["backendRefs"].as_array().unwrap();
                assert_eq!(backends.len(), 1, "{overlay}: one version per rule");
                (regex, backends[0]["name"].as_str().unwrap().to_owned())
            })
            .collect();
        assert_eq!(rules, expected, "{overlay}");
    }
}

#[test]
#[ignore = "needs kubectl and Python's jsonschema and PyYAML: .ci/run runs it"]
fn gateway_api_objects_pass_the_gateway_api_schemas() {
    require_tool("python3", &["-c", "import jsonschema, yaml"]);
    let crds = root().join("tests/fixtures/gateway-api");
    let validate = |file: &Path| {
        let output = Command::new("python3")
            .arg(root().join("tests/k8s/validate_crs.py"))
            .arg(&crds)
            .arg(file)
            .output()
            .unwrap();
        let report =
            String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        (output.status.success(), report)
    };
    let scratch = |name: &str, text: &str| {
        let file = std::env::temp_dir().join(format!("bookinfo-{name}-{}.yaml", std::process::id()));
        std::fs::write(&file, text).unwrap();
        file
    };
    for (overlay, _, _) in AMBIENT {
        let (text, objects) = render(overlay);
        let gateway_api = objects
            .iter()
            .filter(|o| o["apiVersion"].as_str().unwrap().starts_with("gateway.networking.k8s.io/"))
            .count();
        assert_eq!(gateway_api, 4, "{overlay}: the waypoint, the ingress Gateway and two routes");
        let file = scratch(&overlay.replace('/', "-"), &text);
        let (passed, report) = validate(&file);
        std::fs::remove_file(&file).unwrap();
        assert!(passed, "{overlay}:\n{report}");
        // Each of them was checked against a schema, none skipped for want of one.
        let checked: usize = report.split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(checked, gateway_api, "{overlay}: {report}");
    }

    // The schemas reject what the API server would: a header match type the Gateway API does
    // not have, a listener field it does not know.
    let (text, _) = render("overlays/ambient-otel");
    for (name, from, to) in [
        ("bad-match", "type: RegularExpression", "type: Regex"),
        ("bad-listener", "protocol: HBONE", "protocol: HBONE\n    tunnel: true"),
    ] {
        assert!(text.contains(from), "{from}");
        let file = scratch(name, &text.replacen(from, to, 1));
        let (passed, report) = validate(&file);
        std::fs::remove_file(&file).unwrap();
        assert!(!passed && report.contains("1 violations"), "{name}: {report}");
    }
}

/// Without Docker: every overlay's containers, as the replay plans them, against what
/// `bookinfo serve` reads.
#[test]
#[ignore = "needs kubectl: .ci/run runs it"]
fn every_variable_the_overlays_give_a_container_is_one_the_binary_reads() {
    require_tool("kubectl", &["version", "--client"]);
    for (overlay, mode, pods) in [
        ("propagate", TracingMode::Propagate, 6),
        ("otel", TracingMode::Otel, 6),
        ("otel-b3", TracingMode::Otel, 6),
        ("propagate-mysql", TracingMode::Propagate, 8),
        ("otel-mysql", TracingMode::Otel, 8),
        ("ambient-propagate", TracingMode::Propagate, 6),
        ("ambient-otel", TracingMode::Otel, 6),
    ] {
        let replay = Replay::plan(Cluster::render(overlay), &[]);
        assert_eq!(replay.pods.len(), pods, "{overlay}: Deployments of one pod");
        // The database is MariaDB's own image, not `bookinfo`.
        for pod in replay.pods.iter().filter(|p| p.spec["image"] == readme_image().as_str()) {
            holds_to_what_the_binary_reads(pod, mode);
        }
    }
}

/// Every variable the manifests give a container is one `bookinfo serve` reads (or one another
/// variable's value refers to), and those a cluster needs are there.
fn holds_to_what_the_binary_reads(pod: &Pod, mode: TracingMode) {
    let argv = std::iter::once("bookinfo".to_owned()).chain(pod.args.iter().cloned());
    let Some(Bookinfo::Serve(args)) = Cli::try_parse_from(argv).unwrap().command else {
        panic!("{}: not `bookinfo serve`: {:?}", pod.name, pod.args)
    };
    let env: HashMap<String, String> = pod.env.iter().cloned().collect();
    let source = Recording::new(env);
    let plan = Plan::read(&args, &source).unwrap_or_else(|err| panic!("{}: {err}", pod.name));
    assert_eq!(plan.telemetry.mode, mode, "{}", pod.name);
    if let Some(settings) = &plan.telemetry.settings {
        assert!(settings.warnings.is_empty(), "{}: {:?}", pod.name, settings.warnings);
    }
    let read = source.names();
    let unread: Vec<&str> = pod
        .env
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| !read.contains(*name) && !pod.referenced.contains(*name))
        .collect();
    assert!(
        unread.is_empty(),
        "{}: the manifests set {unread:?}, which `bookinfo serve` does not read",
        pod.name
    );

    // What a pod must be told, because the default is right only on a laptop: the mode (the
    // overlays differ by it), and in otel where spans go (localhost has no collector in a pod),
    // which context the sidecars write, and which pod the spans come from.
    let mut needed = vec!["BOOKINFO_TRACING"];
    if mode == TracingMode::Otel {
        needed.extend(["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_PROPAGATORS", "OTEL_RESOURCE_ATTRIBUTES"]);
    }
    let missing: Vec<&str> = needed.into_iter().filter(|name| !env_has(pod, name)).collect();
    assert!(missing.is_empty(), "{}: the manifests do not set {missing:?}", pod.name);
}

fn env_has(pod: &Pod, name: &str) -> bool {
    pod.env.iter().any(|(k, v)| k == name && !v.is_empty())
}

/// The Dockerfile's instructions (keyword, arguments), continuation lines joined, comments
/// and the parser directive left out.
fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#') && !l.is_empty()) {
        match line.strip_suffix('\\') {
            Some(start) => current.push_str(start),
            None => {
                current.push_str(line);
                let (keyword, args) = current.split_once(char::is_whitespace).unwrap();
                instructions.push((keyword.to_ascii_uppercase(), args.trim().to_owned()));
                current.clear();
            }
        }
    }
    instructions
}

/// What a reader of the Dockerfile expects, checked without Docker; k8s/test/image builds and
/// runs it for real (tests/api/image.rs).
#[test]
fn the_dockerfile_is_multi_stage_from_the_official_images_to_a_non_root_one() {
    let instructions = dockerfile();
    let froms: Vec<&str> = instructions
        .iter()
        .filter(|(k, _)| k == "FROM")
        .map(|(_, a)| a.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        froms.first().map(|f| f.split(':').next()),
        Some(Some("rust")),
        "the official Rust image builds"
    );
    assert_eq!(froms.last(), Some(&"gcr.io/distroless/cc-debian12:nonroot"), "the runtime: {froms:?}");

    // The builder's Rust is one the workspace accepts.
    let rust = froms[0].trim_start_matches("rust:").split('-').next().unwrap();
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let minimum = manifest.lines().find_map(|l| l.strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    let version = |v: &str| v.split('.').map(|n| n.parse::<u32>().unwrap()).collect::<Vec<_>>();
    assert!(version(rust) >= version(minimum), "rust:{rust} builds a workspace that needs {minimum}");

    let run: Vec<&str> = instructions.iter().filter(|(k, _)| k == "RUN").map(|(_, a)| a.as_str()).collect();
    let build = "cargo build --release --locked --bin bookinfo";
    assert!(run.iter().any(|r| r.contains(build)), "the Dockerfile runs {build}");
    assert!(run.iter().any(|r| r.contains("cargo chef cook")), "the dependencies in a layer of their own");
    assert!(run.iter().any(|r| r.contains("ln -s bookinfo /out/curl")), "curl in the image");
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains(build), "the README documents {build}");

    // The final stage: after its FROM, one binary copied in, run as the numeric user 65532.
    let last = instructions.iter().rposition(|(k, _)| k == "FROM").unwrap();
    let runtime: Vec<(&str, &str)> =
        instructions[last + 1..].iter().map(|(k, a)| (k.as_str(), a.as_str())).collect();
    assert!(runtime.iter().all(|(k, _)| *k != "RUN"), "nothing runs in the runtime stage: it has no shell");
    assert!(runtime.contains(&("USER", "65532:65532")), "{runtime:?}");
    assert!(runtime.contains(&("EXPOSE", "9080")));
    assert!(runtime.contains(&("ENTRYPOINT", r#"["/usr/local/bin/bookinfo"]"#)));

    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let docker_build = format!("docker build -t {} .", readme_image());
    assert!(text.contains(&docker_build), "the Dockerfile's header shows {docker_build}");
    let ignored = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(ignored.lines().any(|l| l.trim() == "target/"), ".dockerignore keeps target/ out");
}
