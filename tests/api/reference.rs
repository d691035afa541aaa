//! Comparisons with `../shared/reference`: the answers captured from the original services, byte
//! for byte, and Istio's own Bookinfo files (manifests, routing samples, resource schemas)
//! against ours. That directory sits beside the project in CI and is never copied into it, so
//! these tests are ignored by a plain `cargo test`; `.ci/run` runs them (`cargo test --test api
//! -- --ignored reference::`). Run that way without the directory (or a tool a test names), a
//! test fails. The other tests carry their own expected values and run everywhere.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::helpers::{Env, TestApp, get, original, reference_path, require_tool, spawn_details};
use crate::helpers::{spawn_ratings, spawn_reviews, spawn_stack};
use crate::manifests::{named, names, of_kind, parse_file, render, routed_subsets, selects};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Asserts that `app` answers each path as the original's capture in the named file.
async fn answers_as_the_original(app: &TestApp, captured: &[(&str, &str)]) {
    for (path, file) in captured {
        assert_eq!(get(&app.url(path)).await.body, original(file), "{path}");
    }
}

#[actix_web::test]
#[ignore = "needs ../shared/reference: .ci/run runs it"]
async fn details_answers_as_the_original_byte_for_byte() {
    let captured = [
        ("/details/0", "details-0.json"),
        ("/details/abc", "details-abc.json"),
        ("/health", "details-health.json"),
    ];
    answers_as_the_original(&spawn_details(&Env::new()), &captured).await;
}

#[actix_web::test]
#[ignore = "needs ../shared/reference: .ci/run runs it"]
async fn ratings_answers_as_the_original_byte_for_byte() {
    let captured = [
        ("/ratings/0", "ratings-0.json"),
        ("/ratings/abc", "ratings-abc.json"),
        ("/health", "ratings-health.json"),
    ];
    answers_as_the_original(&spawn_ratings(&Env::new()), &captured).await;
}

#[actix_web::test]
#[ignore = "needs ../shared/reference: .ci/run runs it"]
async fn reviews_v1_answers_as_the_stand_in_of_the_java_service_byte_for_byte() {
    let reviews = spawn_reviews("v1", None, &[]);
    assert_eq!(get(&reviews.url("/reviews/0")).await.body, original("reviews-standin-0.json"));
}

#[actix_web::test]
#[ignore = "needs ../shared/reference: .ci/run runs it"]
async fn productpage_api_and_health_answer_as_the_original_byte_for_byte() {
    let stack = spawn_stack("v1");
    let captured = [
        ("/api/v1/products", "api-v1-products.json"),
        ("/api/v1/products/0", "api-v1-products-0.json"),
        ("/api/v1/products/0/reviews", "api-v1-products-0-reviews.json"),
        ("/api/v1/products/0/ratings", "api-v1-products-0-ratings.json"),
    ];
    answers_as_the_original(&stack.productpage, &captured).await;
    // The capture ends the file with a newline the original did not send.
    let health = get(&stack.productpage.url("/health")).await.body;
    assert_eq!(health, original("productpage-health.txt").trim_end_matches('\n'));
}

#[test]
#[ignore = "needs ../shared/reference and kubectl: .ci/run runs it"]
fn the_base_has_the_services_accounts_and_deployments_of_istios_bookinfo_yaml() {
    let (_, objects) = render("base");
    let istio = parse_file(&reference_path("istio-samples/platform-kube/bookinfo.yaml"));
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
#[ignore = "needs ../shared/reference and kubectl: .ci/run runs it"]
fn the_otel_overlay_exports_to_the_otlp_port_of_istios_jaeger_addon() {
    let (_, objects) = render("overlays/otel");
    let config = of_kind(&objects, "ConfigMap");
    let endpoint = config[0]["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"].as_str().unwrap();
    let port: u64 = endpoint.rsplit_once(':').unwrap().1.parse().unwrap();
    let jaeger = parse_file(&reference_path("istio-samples/addons-jaeger.yaml"));
    let collector = named(&jaeger, "Service", "jaeger-collector");
    assert_eq!(collector["metadata"]["namespace"], "istio-system");
    let ports = collector["spec"]["ports"].as_array().unwrap();
    assert!(ports.iter().any(|p| p["port"].as_u64() == Some(port) && p["name"] == "http-otel"), "{ports:?}");
}

/// Istio's own routing samples apply unchanged: what selects pods among Istio's Deployments
/// selects pods among these, and k8s/istio's DestinationRules define the same subsets.
#[test]
#[ignore = "needs ../shared/reference and kubectl: .ci/run runs it"]
fn istios_routing_samples_select_pods_among_ours() {
    // The base and ratings v2 on MySQL: Istio's bookinfo.yaml and bookinfo-ratings-v2-mysql.yaml.
    let (_, objects) = render("overlays/otel-mysql");
    let services = names(&objects, "Service");
    let deployments = of_kind(&objects, "Deployment");
    let rules = parse_file(&root().join("k8s/istio/destination-rules.yaml"));
    let networking = reference_path("istio-samples/networking");
    let mut theirs = parse_file(&reference_path("istio-samples/platform-kube/bookinfo.yaml"));
    theirs.extend(parse_file(&reference_path("istio-samples/platform-kube/bookinfo-ratings-v2-mysql.yaml")));
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

/// The database and ratings v2 of k8s/components/ratings-mysql against Istio's
/// bookinfo-mysql.yaml and bookinfo-ratings-v2-mysql.yaml: the same names, labels, ports and
/// credentials, and ratings told the same way where to find the database.
#[test]
#[ignore = "needs ../shared/reference and kubectl: .ci/run runs it"]
fn the_mysql_overlays_are_a_drop_in_for_istios_ratings_v2_mysql() {
    let mut istio = parse_file(&reference_path("istio-samples/platform-kube/bookinfo-mysql.yaml"));
    istio.extend(parse_file(&reference_path("istio-samples/platform-kube/bookinfo-ratings-v2-mysql.yaml")));
    for overlay in ["overlays/otel-mysql", "overlays/propagate-mysql"] {
        let (_, objects) = render(overlay);
        for kind in ["Service", "Deployment", "Secret"] {
            for theirs in of_kind(&istio, kind) {
                let name = theirs["metadata"]["name"].as_str().unwrap();
                let ours = named(&objects, kind, name);
                for (key, value) in theirs["metadata"]["labels"].as_object().into_iter().flatten() {
                    assert_eq!(
                        &ours["metadata"]["labels"][key], value,
                        "{overlay}: {kind} {name}: label {key}"
                    );
                }
                match kind {
                    "Service" => assert_eq!(ours["spec"], theirs["spec"], "{overlay}: Service {name}"),
                    "Secret" => assert_eq!(ours["data"], theirs["data"], "{overlay}: Secret {name}"),
                    _ => {
                        assert_eq!(ours["spec"]["selector"], theirs["spec"]["selector"], "{overlay}: {name}")
                    }
                }
            }
        }
        // What ratings v2 is told, resolved from its ConfigMap and Secret, is what Istio's is.
        let cluster = crate::kubelet::Cluster::from_objects(objects.clone());
        let replay = crate::kubelet::Replay::plan(cluster, &[]);
        let ratings =
            replay.pods.iter().find(|p| p.deployment == "ratings-v2-mysql").expect("ratings-v2-mysql");
        let theirs = named(&istio, "Deployment", "ratings-v2-mysql");
        for var in theirs["spec"]["template"]["spec"]["containers"][0]["env"].as_array().unwrap() {
            let name = var["name"].as_str().unwrap();
            let ours = ratings.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            assert_eq!(ours, var["value"].as_str(), "{overlay}: ratings-v2-mysql {name}");
        }
        // The database's init script is the original's.
        let script = of_kind(&objects, "ConfigMap")
            .into_iter()
            .find_map(|c| c["data"]["mysqldb-init.sql"].as_str())
            .expect("the init script");
        let statements = |sql: &str| -> Vec<String> {
            sql.lines()
                .filter(|l| !l.starts_with('#') && !l.starts_with("--"))
                .collect::<Vec<_>>()
                .join(" ")
                .split(';')
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|s| !s.is_empty())
                .collect()
        };
        assert_eq!(
            statements(script),
            [
                "CREATE DATABASE test",
                "USE test",
                "CREATE TABLE `ratings` ( `ReviewID` INT NOT NULL, `Rating` INT, PRIMARY KEY (`ReviewID`) )",
                "INSERT INTO ratings (ReviewID, Rating) VALUES (1, 5)",
                "INSERT INTO ratings (ReviewID, Rating) VALUES (2, 4)",
            ],
            "samples/bookinfo/src/mysql/mysqldb-init.sql"
        );
    }
}

#[test]
#[ignore = "needs ../shared/reference and Python's jsonschema and PyYAML: .ci/run runs it"]
fn istio_resources_pass_istios_schemas() {
    let crds = reference_path("istio-crds/crd-all.gen.yaml");
    require_tool("python3", &["-c", "import jsonschema, yaml"]);
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(root().join("k8s/istio")).unwrap().map(|e| e.unwrap().path()).collect();
    files.extend(["propagate", "otel"].map(|mode| root().join(format!("k8s/overlays/{mode}/gateway.yaml"))));
    // The ambient overlays' namespace Telemetry.
    files.push(root().join("k8s/components/ambient/telemetry.yaml"));
    let output = Command::new("python3")
        .arg(root().join("tests/k8s/validate_crs.py"))
        .arg(&crds)
        .args(&files)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}{}", String::from_utf8_lossy(&output.stderr));
    let checked: usize = report.split_whitespace().next().unwrap().parse().unwrap();
    assert!(checked >= 13, "{report}");
}

/// k8s/components/per-version-services is Istio's bookinfo-versions.yaml: the Services its
/// gateway-api samples' backendRefs name, in each ambient overlay.
#[test]
#[ignore = "needs ../shared/reference and kubectl: .ci/run runs it"]
fn the_per_version_services_are_istios_bookinfo_versions_yaml() {
    let theirs = parse_file(&reference_path("istio-samples/platform-kube/bookinfo-versions.yaml"));
    assert!(of_kind(&theirs, "Service").len() >= 6);
    for overlay in ["overlays/ambient-propagate", "overlays/ambient-otel"] {
        let (_, objects) = render(overlay);
        for service in of_kind(&theirs, "Service") {
            let name = service["metadata"]["name"].as_str().unwrap();
            let ours = named(&objects, "Service", name);
            assert_eq!(ours["spec"], service["spec"], "{overlay}: Service {name}");
        }
    }
}
