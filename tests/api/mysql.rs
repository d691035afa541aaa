//! Ratings v2 on a real MySQL server (MariaDB's `mariadbd`), started by `bookinfo up
//! --ratings-db mysql` in the run's directory on a free port: the page shows the database's
//! stars, each read is one database CLIENT span under ratings' SERVER span, a failed select is
//! the original's 500, and a killed server is restarted. Without a server installed, these are
//! ignored outside CI; what needs no server (an unreachable database, a missing server) runs
//! everywhere.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::helpers::{env, get, spawn_productpage, spawn_ratings, spawn_reviews};
use crate::otlp::{Received, Receiver};
use crate::process::Proc;
use crate::stack::Up;

/// The routes of Istio's `virtual-service-ratings-mysql.yaml` with their subsets.
fn ratings_mysql_routes() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    format!(
        "{},{}",
        root.join("k8s/istio/destination-rules.yaml").display(),
        root.join("k8s/istio/virtual-service-ratings-mysql.yaml").display()
    )
}

/// The stack with its own database, every page served by reviews v3 and ratings v2-mysql.
async fn up_with_mysql(extra: &[&str], env: &[(&str, &str)]) -> (Up, Database) {
    let routes = ratings_mysql_routes();
    let mut args = vec!["--ratings-db", "mysql", "--routes", &routes];
    args.extend_from_slice(extra);
    let up = Up::start(&args, env).await;
    let database = Database::from_banner(&up.proc.output());
    (up, database)
}

/// The variables of a stack in a mesh: its spans to `receiver`, soon; the test's PATH, where
/// Envoy is (or BOOKINFO_ENVOY).
fn mesh_env(receiver: &Receiver) -> Vars {
    Vars(vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.clone()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("BOOKINFO_ENVOY", std::env::var("BOOKINFO_ENVOY").unwrap_or_default()),
    ])
}

/// Variables, owned.
struct Vars(Vec<(&'static str, String)>);

impl Vars {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.0.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
}

/// The stack's database server, as its banner row and its start line name it.
struct Database {
    pid: i32,
    socket: PathBuf,
}

impl Database {
    fn from_banner(output: &str) -> Self {
        // "  mysqldb          mysql://127.0.0.1:40123/test  (pid 4242)"
        let pid = output
            .lines()
            .find_map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["mysqldb", _, "(pid", pid] => pid.trim_end_matches(')').parse().ok(),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no mysqldb row:\n{output}"));
        // "Ratings database: MariaDB/MySQL at 127.0.0.1:40123, socket /tmp/.../mysqld.sock (...)"
        let socket = output
            .lines()
            .find_map(|line| line.split(", socket ").nth(1)?.split(' ').next().map(PathBuf::from))
            .unwrap_or_else(|| panic!("the banner does not name the socket:\n{output}"));
        Self { pid, socket }
    }

    /// Runs `sql` as the server's root, over its socket (the client of mariadb-server).
    fn run(&self, sql: &str) {
        let output = Command::new("mariadb")
            .arg(format!("--socket={}", self.socket.display()))
            .args(["--user=root", "test", "-e", sql])
            .output()
            .expect("the mariadb client");
        assert!(output.status.success(), "{sql}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

fn stars(page: &str) -> usize {
    page.matches("glyphicon glyphicon-star\"").count() + page.matches("glyphicon glyphicon-star ").count()
}

#[actix_web::test]
#[ignore = "needs mariadb-server: .ci/run runs it"]
async fn a_v3_page_shows_the_stars_the_database_holds() {
    let (mut up, database) = up_with_mysql(&["--tracing", "propagate"], &[]).await;
    let page = format!("http://{}/productpage", up.addr("productpage"));
    let first = get(&page).await;
    assert_eq!(first.status, 200);
    assert!(first.body.contains("Reviews served by: reviews-v3"), "{}", first.body);
    assert_eq!(stars(&first.body), 9, "5 and 4, as mysqldb-init.sql has them");
    assert!(first.body.contains("text-red-500"));
    // Not the in-memory defaults: what the table says.
    database.run("UPDATE ratings SET Rating = 1 WHERE ReviewID = 2");
    assert_eq!(stars(&get(&page).await.body), 6);

    up.proc.signal(Signal::SIGTERM);
    let status = up.proc.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}: {}", up.proc.output());
    assert!(!database.socket.exists(), "nothing of the database outlives up");
}

#[actix_web::test]
#[ignore = "needs mariadb-server: .ci/run runs it"]
async fn each_ratings_read_is_one_database_client_span_under_ratings_server_span() {
    let receiver = Receiver::http();
    let otlp =
        [("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let (mut up, _database) = up_with_mysql(&["--tracing", "otel"], &otlp).await;
    let page = format!("http://{}/productpage", up.addr("productpage"));
    for _ in 0..3 {
        assert_eq!(stars(&get(&page).await.body), 9);
    }
    let pages = crate::wait::poll(Duration::from_secs(10), || async {
        let roots: Vec<Received> =
            receiver.spans().into_iter().filter(|s| s.span.name == "GET /productpage").collect();
        (roots.len() == 3).then_some(roots)
    })
    .await
    .expect("three traces");
    for root in pages {
        let spans = receiver
            .trace(&root.trace_id(), Duration::from_secs(10), |s| {
                s.iter().any(|s| s.span.name == "SELECT ratings")
            })
            .await;
        let server: Vec<&Received> =
            spans.iter().filter(|s| s.service() == "ratings" && s.kind() == "SERVER").collect();
        let queries: Vec<&Received> =
            spans.iter().filter(|s| s.kind() == "CLIENT" && s.attr("db.system.name").is_some()).collect();
        assert_eq!((server.len(), queries.len()), (1, 1), "{spans:#?}");
        let query = queries[0];
        assert_eq!(query.span.name, "SELECT ratings");
        assert_eq!(query.parent(), server[0].span_id(), "the query is the child of ratings' SERVER span");
        for (key, value) in [
            ("db.system.name", "mysql"),
            ("db.namespace", "test"),
            ("db.operation.name", "SELECT"),
            ("db.collection.name", "ratings"),
            ("db.query.summary", "SELECT ratings"),
            ("db.query.text", "SELECT Rating FROM ratings"),
            ("server.address", "127.0.0.1"),
        ] {
            assert_eq!(query.attr(key).as_deref(), Some(value), "{key}");
        }
        assert!(query.attr("server.port").is_some_and(|p| p.parse::<u16>().is_ok()));
        assert!(!query.is_error());
        assert_eq!(server[0].resource_attr("service.version").as_deref(), Some("v2"));
        // A connection opened is a span of its own beside the query, never a second CLIENT span.
        for connect in spans.iter().filter(|s| s.span.name == "connect mysql") {
            assert_eq!((connect.kind(), connect.parent()), ("INTERNAL", server[0].span_id()));
        }
    }
    up.proc.signal(Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success());
}

#[actix_web::test]
#[ignore = "needs mariadb-server: .ci/run runs it"]
async fn a_failed_select_is_the_originals_500_and_a_killed_server_comes_back() {
    let receiver = Receiver::http();
    let otlp =
        [("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let (mut up, database) = up_with_mysql(&["--tracing", "otel"], &otlp).await;
    let page = format!("http://{}/productpage", up.addr("productpage"));
    let ratings = format!("http://{}/ratings/0", up.addr("ratings-v2-mysql"));
    assert_eq!(get(&ratings).await.status, 200);

    database.run("RENAME TABLE ratings TO gone");
    let failed = get(&ratings).await;
    assert_eq!((failed.status, failed.body.as_str()), (500, r#"{"error":"could not perform select"}"#));
    let degraded = get(&page).await;
    assert_eq!(degraded.status, 200);
    assert!(degraded.body.contains("Ratings service is currently unavailable"), "{}", degraded.body);
    let span = receiver
        .trace_where(Duration::from_secs(10), |s| s.span.name == "SELECT ratings" && s.is_error())
        .await
        .expect("the failed query's span");
    // ER_NO_SUCH_TABLE.
    assert_eq!(span.attr("error.type").as_deref(), Some("1146"));
    assert_eq!(span.attr("db.response.status_code").as_deref(), Some("1146"));
    database.run("RENAME TABLE gone TO ratings");

    // Pages keep coming, four at a time, while the database dies and comes back.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (page, stop) = (page.clone(), stop.clone());
            actix_web::rt::spawn(async move {
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    statuses.push(get(&page).await.status);
                }
                statuses
            })
        })
        .collect();
    kill(Pid::from_raw(database.pid), Signal::SIGKILL).unwrap();
    up.proc
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("bookinfo: mysqldb exited (signal: 9 (SIGKILL))").then_some(())
        })
        .await;
    // Meanwhile: the original's answer to a database it cannot reach, and the page degrades.
    let down = get(&ratings).await;
    assert_eq!(
        (down.status, down.body.as_str()),
        (200, r#"{"error":"could not connect to ratings database"}"#)
    );
    let degraded = get(&page).await;
    assert_eq!(degraded.status, 200);
    assert!(degraded.body.contains("Ratings service is currently unavailable"), "{}", degraded.body);
    up.proc
        .wait_for(Duration::from_secs(30), |l| {
            l.starts_with("bookinfo: mysqldb is running again (pid ").then_some(())
        })
        .await;
    let back = crate::wait::poll(Duration::from_secs(10), || async {
        let answer = get(&ratings).await;
        (answer.status == 200 && answer.body.contains("Reviewer1")).then_some(answer)
    })
    .await;
    assert!(back.is_some(), "ratings reads the restarted server");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut pages = 0;
    for task in load {
        let statuses = task.await.unwrap();
        assert!(statuses.iter().all(|s| *s == 200), "no productpage error under load: {statuses:?}");
        pages += statuses.len();
    }
    assert!(pages > 20, "the load went on through the restart: {pages} pages");
    assert_eq!(stars(&get(&page).await.body), 9, "the data survived the restart");
    up.proc.signal(Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success(), "{}", up.proc.output());
}

#[actix_web::test]
#[ignore = "needs mariadb-server: .ci/run runs it"]
async fn the_database_server_stops_with_the_stack_even_when_the_stack_is_killed() {
    let (up, database) = up_with_mysql(&["--tracing", "none"], &[]).await;
    up.proc.signal(Signal::SIGKILL);
    let gone = crate::wait::poll(Duration::from_secs(15), || async {
        (kill(Pid::from_raw(database.pid), None) == Err(nix::errno::Errno::ESRCH)).then_some(())
    })
    .await;
    assert!(gone.is_some(), "the database server outlived the stack");
}

#[actix_web::test]
#[ignore = "needs mariadb-server and Envoy: .ci/run runs it"]
async fn under_the_mesh_only_the_application_sees_the_database_call() {
    let receiver = Receiver::http();
    let mesh = ["--mesh", "--mesh-tracer", "otel", "--tracing", "otel"];
    let (mut up, _database) = up_with_mysql(&mesh, &mesh_env(&receiver).pairs()).await;
    // "  mysqldb  mysql://127.0.0.1:40123/test  (pid 4242)": where the server itself listens.
    let output = up.proc.output();
    let server_port = output
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("mysqldb")?.trim_start().strip_prefix("mysql://127.0.0.1:"))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("the database's row:\n{output}"))
        .to_owned();
    let page = format!("http://{}/productpage", up.addr("gateway"));
    for _ in 0..3 {
        let answer = get(&page).await;
        assert!(answer.body.contains("Reviews served by: reviews-v3"), "{}", answer.body);
        assert_eq!(stars(&answer.body), 9);
    }
    let queries = crate::wait::poll(Duration::from_secs(10), || async {
        let queries: Vec<Received> =
            receiver.spans().into_iter().filter(|s| s.span.name == "SELECT ratings").collect();
        (queries.len() >= 3).then_some(queries)
    })
    .await
    .expect("a query span per page");
    for query in queries {
        let spans = receiver.trace(&query.trace_id(), Duration::from_secs(10), |s| s.len() >= 20).await;
        let database: Vec<&Received> =
            spans.iter().filter(|s| s.kind() == "CLIENT" && s.attr("db.system.name").is_some()).collect();
        assert_eq!(database.len(), 1, "one database CLIENT span, the application's: {spans:#?}");
        assert!(database.iter().all(|s| s.service() == "ratings"), "no sidecar span for the database");
        // ratings calls its sidecar's listener, which proxies to the database's sidecar.
        let port = database[0].attr("server.port").expect("server.port");
        assert_ne!(port, server_port, "ratings reaches the database through its sidecar");
        let server = spans.iter().find(|s| s.span_id() == query.parent()).expect("the query's parent");
        assert_eq!((server.service().as_str(), server.kind()), ("ratings", "SERVER"));
        // ratings' SERVER span is under its sidecar's inbound span: the trace is one piece.
        let sidecar = spans.iter().find(|s| s.span_id() == server.parent()).expect("ratings' sidecar span");
        assert_eq!(sidecar.service(), "ratings.default");
    }
    up.proc.signal(Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success(), "{}", up.proc.output());
}

#[actix_web::test]
async fn an_unreachable_database_degrades_the_page_as_the_originals_does() {
    // Port 0: nothing can listen there, so every connection is refused.
    let ratings = spawn_ratings(&env(&[
        ("SERVICE_VERSION", "v2"),
        ("DB_TYPE", "mysql"),
        ("MYSQL_DB_HOST", "127.0.0.1"),
        ("MYSQL_DB_PORT", "0"),
    ]));
    let reviews = spawn_reviews("v3", Some(&ratings), &[]);
    let page = spawn_productpage(None, Some(&reviews), Some(&ratings), &[]);
    let answer = get(&page.url("/productpage")).await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains("Ratings service is currently unavailable"), "{}", answer.body);
    assert_eq!(stars(&answer.body), 0);
}

#[actix_web::test]
async fn a_database_that_never_answers_is_given_up_on_within_every_callers_deadline() {
    // Connections are taken (into the listener's backlog) and never greeted.
    let silent = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let ratings = spawn_ratings(&env(&[
        ("SERVICE_VERSION", "v2"),
        ("DB_TYPE", "mysql"),
        ("MYSQL_DB_HOST", "127.0.0.1"),
        ("MYSQL_DB_PORT", &port),
    ]));
    let start = std::time::Instant::now();
    let read = get(&ratings.url("/ratings/0")).await;
    let took = start.elapsed();
    assert_eq!(
        (read.status, read.body.as_str()),
        (200, r#"{"error":"could not connect to ratings database"}"#)
    );
    // reviews v3 waits 2.5 s for ratings, the shortest deadline of its callers.
    assert!(took < Duration::from_millis(2500), "{took:?}");
    drop(silent);
}

#[actix_web::test]
#[ignore = "needs mariadb-server and Envoy: .ci/run runs it"]
async fn under_ambient_the_database_is_reached_through_the_ztunnel_and_only_the_application_sees_it() {
    let receiver = Receiver::http();
    let ambient =
        ["--mesh", "ambient", "--waypoint", "namespace", "--mesh-tracer", "otel", "--tracing", "otel"];
    let (mut up, database) = up_with_mysql(&ambient, &mesh_env(&receiver).pairs()).await;
    assert!(up.proc.output().contains("reached through the ztunnel as TCP"), "{}", up.proc.output());
    let page = format!("http://{}/productpage", up.addr("gateway"));
    assert_eq!(stars(&get(&page).await.body), 9);
    database.run("UPDATE ratings SET Rating = 1 WHERE ReviewID = 2");
    let answer = get(&page).await;
    assert!(answer.body.contains("Reviews served by: reviews-v3"), "{}", answer.body);
    assert_eq!(stars(&answer.body), 6, "what the table says, through the waypoint and the ztunnel");
    let query = crate::wait::poll(Duration::from_secs(10), || async {
        receiver.spans().into_iter().find(|s| s.span.name == "SELECT ratings")
    })
    .await
    .expect("a query span");
    // Gateway 2, waypoint 3, applications 8, and the query (with its connect span, once).
    let spans = receiver.trace(&query.trace_id(), Duration::from_secs(10), |s| s.len() >= 14).await;
    let database_spans =
        spans.iter().filter(|s| s.kind() == "CLIENT" && s.attr("db.system.name").is_some()).count();
    assert_eq!(database_spans, 1, "one database CLIENT span, the application's: {spans:#?}");
    let server = spans.iter().find(|s| s.span_id() == query.parent()).expect("the query's parent");
    assert_eq!((server.service().as_str(), server.kind()), ("ratings", "SERVER"));
    let waypoint = spans.iter().find(|s| s.span_id() == server.parent()).expect("ratings' waypoint span");
    assert_eq!(
        (waypoint.service().as_str(), waypoint.span.name.as_str()),
        ("waypoint.default", "ratings.default.svc.cluster.local:9080/*")
    );
    assert_eq!(waypoint.attr("istio.destination_workload").as_deref(), Some("ratings-v2-mysql"));
    up.proc.signal(Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success(), "{}", up.proc.output());
}

#[actix_web::test]
#[ignore = "needs mariadb-server: .ci/run runs it"]
async fn a_stack_given_a_database_url_reads_that_server() {
    let (mut first, _database) = up_with_mysql(&["--tracing", "none"], &[]).await;
    // "Ratings database: MariaDB/MySQL at 127.0.0.1:40123, socket ..."
    let output = first.proc.output();
    let addr = output
        .lines()
        .find_map(|line| line.strip_prefix("Ratings database: MariaDB/MySQL at ")?.split(',').next())
        .unwrap_or_else(|| panic!("no database line:\n{output}"))
        .to_owned();
    let url = format!("mysql://root:password@{addr}/test");
    let routes = ratings_mysql_routes();
    let mut second = Up::start(&["--ratings-db", &url, "--routes", &routes, "--tracing", "none"], &[]).await;
    let banner = second.proc.output();
    assert!(banner.contains(&format!("Ratings database: mysql://{addr}/test")), "{banner}");
    assert!(!banner.contains("mysqldb "), "no server of its own: {banner}");
    let page = get(&format!("http://{}/productpage", second.addr("productpage"))).await;
    assert_eq!(stars(&page.body), 9, "{}", page.body);
    for up in [&mut second, &mut first] {
        up.proc.signal(Signal::SIGTERM);
        assert!(up.proc.wait(Duration::from_secs(30)).await.success(), "{}", up.proc.output());
    }
}

#[actix_web::test]
async fn without_a_database_server_up_says_how_to_install_one_in_one_line() {
    let mut up = Proc::start(
        &["up", "--base-port", "0", "--ratings-db", "mysql"],
        &[("BOOKINFO_MYSQLD", "/nonexistent/mariadbd")],
    );
    let status = up.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(64), "{}", up.output());
    let output = up.output();
    assert_eq!(output.trim().lines().count(), 1, "{output}");
    assert!(output.contains("apt-get install mariadb-server"), "{output}");
}

#[actix_web::test]
async fn ratings_v2_on_mongodb_stops_at_start_naming_the_missing_support() {
    let mut served = Proc::start(
        &["serve", "ratings", "--port", "0"],
        &[("SERVICE_VERSION", "v2"), ("MONGO_DB_URL", "mongodb://mongodb:27017/test")],
    );
    let status = served.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(64), "{}", served.output());
    assert!(
        served.output().contains("MongoDB backend (MONGO_DB_URL is set) is not supported"),
        "{}",
        served.output()
    );
}

/// Side by side under the mesh: propagate's pages are the nine sidecar spans they always were,
/// with nothing of the database; otel's hold the query; `traces compare` says why.
#[actix_web::test]
#[ignore = "needs mariadb-server and Envoy: .ci/run runs it"]
async fn the_mesh_makes_no_span_of_the_database_and_the_comparison_says_why() {
    use crate::envoy_mesh::{assert_sidecars_only, mesh, traces};
    let routes = ratings_mysql_routes();
    let mut up =
        mesh(&["--compare", "--mesh-tracer", "zipkin", "--ratings-db", "mysql", "--routes", &routes]).await;
    let out = up.proc.output();
    assert!(out.contains("its sidecar, mysqldb, proxies it as TCP"), "{out}");
    for ns in ["propagate", "otel"] {
        let page = format!("http://{}/productpage", up.addr(&format!("gateway/{ns}")));
        for _ in 0..3 {
            let answer = get(&page).await;
            assert_eq!(stars(&answer.body), 9, "{ns}: the database's 5 and 4 stars:\n{}", answer.body);
        }
    }
    let seen = traces(&up, "productpage.bookinfo-propagate", 3, |_| crate::spans::sidecar_spans("v3")).await;
    for trace in &seen {
        assert_sidecars_only(trace, "bookinfo-propagate");
        assert_eq!(trace.summary["database_spans"], 0);
        // ratings' inbound span is the last the mesh sees of the read.
        assert!(
            trace.rows.iter().any(|r| r["name"] == "ratings.bookinfo-propagate.svc.cluster.local:9080/*")
        );
    }

    let viewer = up.store.viewer().to_owned();
    let out = crate::wait::eventually(
        Duration::from_secs(20),
        || "a comparison with the database's call in otel".to_owned(),
        || async {
            let mut compare = Proc::start(
                &[
                    "traces",
                    "compare",
                    "--jaeger",
                    &viewer,
                    "latest:productpage.bookinfo-propagate",
                    "latest:productpage.bookinfo-otel",
                ],
                &[],
            );
            compare
                .wait(Duration::from_secs(30))
                .await
                .success()
                .then(|| compare.output())
                .filter(|out| out.contains("B has the database calls and A none"))
        },
    )
    .await;
    assert!(out.contains("plain TCP"), "{out}");
    assert!(out.contains("  ratings → mysql\n    A: -\n    B: ratings app CLIENT"), "{out}");

    // The service graph: the database is a node, reached once per otel page (propagate's pages,
    // whose sidecars see nothing of it, add no call to it).
    let graph = get(&format!("{viewer}/api/dependencies")).await.json();
    let calls = |parent: &str, child: &str| {
        graph["data"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["parent"] == parent && l["child"] == child)
            .map(|l| l["callCount"].clone())
    };
    assert_eq!(calls("ratings", "mysql"), Some(3.into()), "{graph}");
    assert_eq!(calls("reviews", "ratings"), Some(6.into()), "both namespaces' pages: {graph}");
    up.proc.signal(Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success(), "{}", up.proc.output());
}
