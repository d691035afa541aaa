//! Real services on ephemeral 127.0.0.1 ports, stand-ins that record what they receive, an HTTP
//! client, and the reference answers of the original services.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use bookinfo::serve::Configured;
use bookinfo::service::Service;
use bookinfo_http::server::{self, ServerOptions};
use bookinfo_reviews::ReviewsVersion;

/// A running service.
#[derive(Debug, Clone)]
pub struct TestApp {
    pub addr: SocketAddr,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Variables that point an upstream (`DETAILS`, `REVIEWS`, `RATINGS`) at this app.
    pub fn as_upstream(&self, prefix: &str) -> [(String, String); 2] {
        [
            (format!("{prefix}_HOSTNAME"), self.addr.ip().to_string()),
            (format!("{prefix}_SERVICE_PORT"), self.addr.port().to_string()),
        ]
    }
}

pub type Env = Vec<(String, String)>;

/// Builds a variable list from pairs.
pub fn env(pairs: &[(&str, &str)]) -> Env {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn source(env: &Env) -> HashMap<String, String> {
    env.iter().cloned().collect()
}

/// Starts `service` (reviews as `version`) in this process, configured from `env` by the same
/// wiring as `bookinfo serve` (`bookinfo::serve::Configured`), on an ephemeral port.
pub fn spawn(service: Service, version: ReviewsVersion, env: &Env) -> TestApp {
    let source = source(env);
    let configured = Configured::from_source(service, version, &source).expect("configuration");
    let listener = server::bind(Some(Ipv4Addr::LOCALHOST.into()), 0).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let upstreams = Arc::new(configured.upstreams(&source).expect("upstreams"));
    let options = ServerOptions { workers: Some(1), handle_signals: false, ..ServerOptions::default() };
    let server = configured.run(listener, &options, upstreams).expect("run");
    actix_web::rt::spawn(server);
    TestApp { addr }
}

pub fn spawn_details(env: &Env) -> TestApp {
    spawn(Service::Details, ReviewsVersion::V1, env)
}

pub fn spawn_ratings(env: &Env) -> TestApp {
    spawn(Service::Ratings, ReviewsVersion::V1, env)
}

/// reviews `version` named `reviews-<version>`, calling `ratings` if given.
pub fn spawn_reviews(version: &str, ratings: Option<&TestApp>, extra: &[(&str, &str)]) -> TestApp {
    let mut env = env(&[("HOSTNAME", &format!("reviews-{version}"))]);
    if let Some(ratings) = ratings {
        env.extend(ratings.as_upstream("RATINGS"));
    }
    env.extend(self::env(extra));
    spawn(Service::Reviews, version.parse().expect("version"), &env)
}

/// productpage calling the given upstreams (a dead port for those not given).
pub fn spawn_productpage(
    details: Option<&TestApp>,
    reviews: Option<&TestApp>,
    ratings: Option<&TestApp>,
    extra: &[(&str, &str)],
) -> TestApp {
    let dead = dead_upstream();
    let mut env = Env::new();
    for (prefix, app) in [("DETAILS", details), ("REVIEWS", reviews), ("RATINGS", ratings)] {
        env.extend(app.unwrap_or(&dead).as_upstream(prefix));
    }
    env.extend(self::env(extra));
    spawn(Service::Productpage, ReviewsVersion::V1, &env)
}

/// An address where nothing listens: connections are refused.
pub fn dead_upstream() -> TestApp {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    TestApp { addr }
}

/// The whole stack in this process: ratings, details, reviews `version`, productpage.
pub struct Stack {
    pub productpage: TestApp,
    pub details: TestApp,
    pub reviews: TestApp,
    pub ratings: TestApp,
}

pub fn spawn_stack(version: &str) -> Stack {
    let ratings = spawn_ratings(&Env::new());
    let details = spawn_details(&Env::new());
    let reviews = spawn_reviews(version, Some(&ratings), &[]);
    let productpage = spawn_productpage(Some(&details), Some(&reviews), Some(&ratings), &[]);
    Stack { productpage, details, reviews, ratings }
}

/// One request as a stand-in received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The client's address: the same one for requests on one connection.
    pub peer: Option<SocketAddr>,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Received {
    /// Every value of header `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name).first().copied()
    }
}

/// What a stand-in answers.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Canned {
    pub fn json(body: &str) -> Self {
        Self { status: 200, body: body.to_owned(), delay: Duration::ZERO }
    }

    pub fn status(status: u16) -> Self {
        Self { status, body: "{}".to_owned(), delay: Duration::ZERO }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What details answers for product 0: the body of a details stand-in.
pub fn details_body() -> String {
    serde_json::to_string(&bookinfo_wire::details::Book::comedy_of_errors(0)).expect("a book")
}

/// What reviews v1 answers for product 0: the body of a reviews stand-in.
pub fn reviews_body() -> String {
    let origin = bookinfo_reviews::body::Origin { podname: "reviews-v1".into(), clustername: "null".into() };
    bookinfo_reviews::body::render(0, &origin, None)
}

/// A stand-in server on an ephemeral 127.0.0.1 port (one worker, no signal handling), its
/// routes set by `configure`; its address.
pub fn stub(configure: impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
    actix_web::rt::spawn(server);
    addr
}

/// A stand-in upstream on an ephemeral port: records every request and answers `canned`.
pub struct Capture {
    pub app: TestApp,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Capture {
    pub fn start(canned: Canned) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let log = received.clone();
        let addr = stub(move |app| {
            let log = log.clone();
            let canned = canned.clone();
            app.default_service(web::to(move |req: HttpRequest| {
                let log = log.clone();
                let canned = canned.clone();
                async move {
                    log.lock().unwrap().push(Received {
                        peer: req.peer_addr(),
                        method: req.method().to_string(),
                        path: req.uri().to_string(),
                        headers: req
                            .headers()
                            .iter()
                            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                            .collect(),
                    });
                    actix_web::rt::time::sleep(canned.delay).await;
                    HttpResponse::build(StatusCode::from_u16(canned.status).unwrap())
                        .content_type("application/json")
                        .body(canned.body)
                }
            }));
        });
        Self { app: TestApp { addr }, received }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A test client: no redirects followed, no headers of its own, 20 s deadline.
pub fn client() -> awc::Client {
    awc::Client::builder().disable_redirects().no_default_headers().timeout(Duration::from_secs(20)).finish()
}

/// A response as status, headers and body text.
pub struct Answer {
    pub status: u16,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }

    /// How often `needle` occurs in the body.
    pub fn count(&self, needle: &str) -> usize {
        self.body.matches(needle).count()
    }
}

pub async fn get(url: &str) -> Answer {
    answer(client().get(url).send()).await
}

/// Waits for a response and reads it whole.
pub async fn answer(sending: awc::SendClientRequest) -> Answer {
    let mut response = sending.await.expect("request");
    let body = response.body().limit(4 * 1024 * 1024).await.expect("body");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `../shared/reference/<path>`: the original services' answers and Istio's own files, kept
/// beside the project (in CI) and never copied into it. Only ignored tests read it, and they
/// fail without it.
pub fn reference_path(path: &str) -> PathBuf {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/reference").join(path);
    assert!(full.exists(), "{} not found: this test compares with ../shared/reference", full.display());
    full
}

/// What the original service answered, as captured in `original-responses/<name>`.
pub fn original(name: &str) -> String {
    let path = reference_path(&format!("original-responses/{name}"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// Fails the test unless `program probe...` runs: a tool an ignored test needs (`.ci/run`
/// installs each).
pub fn require_tool(program: &str, probe: &[&str]) {
    let runs = Command::new(program).args(probe).output().is_ok_and(|o| o.status.success());
    assert!(runs, "`{program} {}` does not run: this test needs {program}", probe.join(" "));
}

/// Which reviews version served a page (`v1`, `v2`, `v3`), as its "Reviews served by" line says.
pub fn served_by(body: &str) -> Option<&'static str> {
    ["v1", "v2", "v3"].into_iter().find(|v| body.contains(&format!("Reviews served by: reviews-{v}")))
}

/// Signs in as `user` at productpage's `/login` under `base` (`http://host:port`); the
/// session's `cookie` header value.
pub async fn sign_in(base: &str, user: &str) -> String {
    let request = client()
        .post(format!("{base}/login"))
        .insert_header(("content-type", "application/x-www-form-urlencoded"));
    let answer = answer(request.send_body(format!("username={user}&passwd=x"))).await;
    assert_eq!(answer.status, 302, "{}", answer.body);
    answer.header("set-cookie").unwrap().split(';').next().unwrap().to_owned()
}
