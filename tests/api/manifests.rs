//! The Kubernetes and Istio files, without a cluster: kustomize renders them, every object is
//! parsed, and they are checked against each other, against Istio's own Bookinfo files and
//! against the Kubernetes and Istio schemas; the Dockerfile against the README and the workspace.
//!
//! The tools (`kubectl`, `kubernetes-validate`, Python's `jsonschema`) are installed by
//! `.ci/run`, which sets `BOOKINFO_REQUIRE_TOOLS=1` so that a missing one fails; elsewhere it
//! skips its part with a `SKIPPED:` line (see `helpers::skip`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::helpers::skip;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One of Istio's files in `../shared/reference`; without it, that part of the test is skipped.
fn reference(path: &str) -> Option<PathBuf> {
    let path = root().join("../shared/reference").join(path);
    if path.exists() {
        return Some(path);
    }
    skip(&format!("no comparison with Istio's files: {} not found", path.display()));
    None
}

/// Whether `program` can run; without it, that part of the test is skipped.
pub fn tool(program: &str, probe: &[&str]) -> bool {
    let found = Command::new(program).args(probe).output().is_ok_and(|o| o.status.success());
    if !found {
        skip(&format!("`{program} {}` does not run", probe.join(" ")));
    }
    found
}

fn parse(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text).unwrap().into_iter().filter(|d| !d.is_null()).collect()
}

fn parse_file(path: &Path) -> Vec<Value> {
    parse(&std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display())))
}

/// `kubectl kustomize k8s/<dir>`, parsed.
fn render(dir: &str) -> Option<(String, Vec<Value>)> {
    if !tool("kubectl", &["version", "--client"]) {
        return None;
    }
    let output = Command::new("kubectl").arg("kustomize").arg(root().join("k8s").join(dir)).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).unwrap();
    let objects = parse(&text);
    Some((text, objects))
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    of_kind(objects, kind)
        .into_iter()
        .find(|o| o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn names(objects: &[Value], kind: &str) -> BTreeSet<String> {
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
fn the_base_is_istios_bookinfo_drop_in() {
    let Some((_, objects)) = render("base") else { return };
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

    let Some(istio) = reference("istio-samples/platform-kube/bookinfo.yaml") else { return };
    let istio = parse_file(&istio);
    for kind in ["Service", "ServiceAccount", "Deployment"] {
        assert_eq!(names(&objects, kind), names(&istio, kind), "the same {kind}s as Istio's bookinfo.yaml");
        for theirs in of_kind(&istio, kind) {
            let ours = named(&objects, kind, theirs["metadata"]["name"].as_str().unwrap());
            for (key, value) in theirs["metadata"]["labels"].as_object().unwrap() {
                assert_eq!(
                    &ours["metadata"]["labels"][key], value,
                    "{kind} {}: label {key}",
                    theirs["metadata"]["name"]
                );
            }
            if kind == "Service" {
                assert_eq!(ours["spec"]["ports"], theirs["spec"]["ports"]);
                assert_eq!(ours["spec"]["selector"], theirs["spec"]["selector"]);
            }
            if kind == "Deployment" {
                assert_eq!(ours["spec"]["selector"], theirs["spec"]["selector"]);
                let pod = |d: &Value| d["spec"]["template"]["spec"]["serviceAccountName"].clone();
                assert_eq!(pod(ours), pod(theirs));
            }
        }
    }
}

#[test]
fn both_overlays_run_side_by_side_each_in_its_mode() {
    let mut hosts = BTreeSet::new();
    for mode in ["propagate", "otel"] {
        let Some((_, objects)) = render(&format!("overlays/{mode}")) else { return };
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
        if let Some(jaeger) = reference("istio-samples/addons-jaeger.yaml") {
            let jaeger = parse_file(&jaeger);
            let collector = named(&jaeger, "Service", "jaeger-collector");
            assert_eq!(collector["metadata"]["namespace"], "istio-system");
            let ports = collector["spec"]["ports"].as_array().unwrap();
            assert!(
                ports.iter().any(|p| p["port"].as_u64() == port.parse().ok() && p["name"] == "http-otel"),
                "{ports:?}"
            );
        }
    }
}

#[actix_web::test]
async fn the_otel_overlays_read_what_each_providers_sidecars_write_as_the_local_mesh_does() {
    use bookinfo_mesh::envoy::Tracer;
    // Which overlay goes with which Telemetry file: the one the overlay's comments name.
    let pairs = [
        ("overlays/otel", Tracer::Otel),
        ("overlays/otel", Tracer::ZipkinW3c),
        ("overlays/otel-b3", Tracer::Zipkin),
    ];
    for (overlay, tracer) in pairs {
        let Some((_, objects)) = render(overlay) else { return };
        let config = of_kind(&objects, "ConfigMap");
        assert_eq!(config.len(), 1, "{overlay}");
        assert_eq!(
            config[0]["data"]["OTEL_PROPAGATORS"],
            tracer.app_propagators(),
            "{overlay} under {tracer}"
        );
        assert_eq!(config[0]["data"]["BOOKINFO_TRACING"], "otel");
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
fn routed_subsets(files: &[PathBuf]) -> Vec<(String, String, String)> {
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
fn selects(rules: &[Value], deployments: &[&Value], host: &str, subset: &str) -> bool {
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
fn every_route_reaches_a_service_and_a_subset_with_pods() {
    let Some((_, objects)) = render("base") else { return };
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

    // Istio's own samples apply unchanged: what selects pods among Istio's Deployments selects
    // pods among these.
    let Some(networking) = reference("istio-samples/networking") else { return };
    let Some(platform) = reference("istio-samples/platform-kube/bookinfo.yaml") else { return };
    let theirs = parse_file(&platform);
    let their_deployments = of_kind(&theirs, "Deployment");
    let their_rules = parse_file(&networking.join("destination-rule-all.yaml"));
    let samples: Vec<PathBuf> = std::fs::read_dir(&networking).unwrap().map(|e| e.unwrap().path()).collect();
    let mut checked = 0;
    for (file, host, subset) in routed_subsets(&samples) {
        if host == "productpage" || services.contains(&host) {
            assert!(services.contains(&host), "{file}: no Service {host}");
        }
        if !subset.is_empty() && selects(&their_rules, &their_deployments, &host, &subset) {
            assert!(selects(&their_rules, &deployments, &host, &subset), "{file}: {host} {subset}");
            assert!(
                selects(&rules, &deployments, &host, &subset),
                "{file}: not in k8s/istio: {host} {subset}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked} routes checked");
}

#[test]
fn rendered_objects_pass_the_kubernetes_schemas() {
    if !tool("kubernetes-validate", &["--version"]) {
        return;
    }
    for dir in ["base", "overlays/propagate", "overlays/otel", "overlays/otel-b3"] {
        let Some((text, _)) = render(dir) else { return };
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

#[test]
fn istio_resources_pass_istios_schemas() {
    let Some(crds) = reference("istio-crds/crd-all.gen.yaml") else { return };
    if !tool("python3", &["-c", "import jsonschema, yaml"]) {
        return;
    }
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(root().join("k8s/istio")).unwrap().map(|e| e.unwrap().path()).collect();
    files.extend(["propagate", "otel"].map(|mode| root().join(format!("k8s/overlays/{mode}/gateway.yaml"))));
    let output = Command::new("python3")
        .arg(root().join("tests/k8s/validate_istio.py"))
        .arg(&crds)
        .args(&files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}{}", String::from_utf8_lossy(&output.stderr));
    let checked: usize = report.split_whitespace().next().unwrap().parse().unwrap();
    assert!(checked >= 12, "{report}");
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
