//! The local stack started by `bookinfo up`: every service answers, and no child outlives it.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::helpers::get;
use crate::process::Proc;

/// A running `bookinfo up`, the services it printed (name, address, pid) and where its trace
/// store listens and writes.
pub struct Up {
    pub proc: Proc,
    pub services: Vec<(String, SocketAddr, i32)>,
    pub store: Store,
}

/// The trace store's addresses, as `bookinfo up` prints them.
#[derive(Debug, Clone, Default)]
pub struct Store {
    pub viewer: Option<String>,
    pub otlp: Option<String>,
    pub zipkin: Option<String>,
    pub file: Option<std::path::PathBuf>,
}

impl Store {
    /// Reads the `Traces:` lines of the banner.
    fn from_banner(output: &str) -> Self {
        let mut store = Store::default();
        for line in output.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                ["Traces:", "viewer", url] => store.viewer = Some(url.to_owned()),
                ["receiving", "OTLP", "on", otlp, "and", "Zipkin", "on", zipkin] => {
                    store.otlp = Some(otlp.to_owned());
                    store.zipkin = Some(zipkin.to_owned());
                }
                ["written", "to", file] => store.file = Some(file.into()),
                _ => {}
            }
        }
        store
    }

    pub fn viewer(&self) -> &str {
        self.viewer.as_deref().expect("the stack prints its viewer")
    }

    pub fn otlp(&self) -> &str {
        self.otlp.as_deref().expect("the stack prints its OTLP receiver")
    }

    pub fn zipkin(&self) -> &str {
        self.zipkin.as_deref().expect("the stack prints its Zipkin receiver")
    }
}

impl Up {
    /// Starts `bookinfo up --base-port 0 extra...` with `env` and waits for its table.
    pub async fn start(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut args = vec!["up", "--base-port", "0"];
        args.extend_from_slice(extra);
        let proc = Proc::start(&args, env);
        proc.wait_for(Duration::from_secs(60), |line| {
            line.starts_with("Open the productpage URL").then_some(())
        })
        .await;
        // "  details      http://127.0.0.1:40123  (pid 4242)"
        let services = proc
            .output()
            .lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                // "  name  http://ADDR  (pid N)", or under the mesh "  name  http://ADDR  (app ADDR)"
                // (a sidecar's public address, then the application's own).
                let (name, url, pid) = match words[..] {
                    [name, url, "(pid", pid] => (name, url, pid.trim_end_matches(')').parse().ok()?),
                    [name, url, "(app", _] => (name, url, 0),
                    // Under ambient, a pod's own address is the service's.
                    [name, url] if url.starts_with("http://") => (name, url, 0),
                    _ => return None,
                };
                let addr = url.strip_prefix("http://")?.trim_end_matches("/productpage").parse().ok()?;
                Some((name.to_owned(), addr, pid))
            })
            .collect();
        let store = Store::from_banner(&proc.output());
        Self { proc, services, store }
    }

    pub fn addr(&self, name: &str) -> SocketAddr {
        self.services.iter().find(|(n, _, _)| n == name).unwrap().1
    }

    pub fn pid(&self, name: &str) -> i32 {
        self.services.iter().find(|(n, _, _)| n == name).unwrap().2
    }

    pub fn pids(&self) -> Vec<i32> {
        self.services.iter().map(|(_, _, pid)| *pid).collect()
    }
}

fn is_gone(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH)
}

/// Polls until every pid is gone, for up to `within`.
async fn all_gone(pids: &[i32], within: Duration) -> bool {
    crate::wait::poll(within, || async { pids.iter().all(|pid| is_gone(*pid)).then_some(()) }).await.is_some()
}

#[actix_web::test]
async fn up_serves_the_page_spreads_reviews_and_stops_every_child_on_sigterm() {
    let mut up = Up::start(&[], &[]).await;
    let names: BTreeSet<_> = up.services.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["details", "productpage", "ratings", "reviews-v1", "reviews-v2", "reviews-v3"])
    );
    let page_url = format!("http://{}/productpage", up.addr("productpage"));
    let mut versions = BTreeSet::new();
    for _ in 0..30 {
        let page = get(&page_url).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Book Details"));
        assert!(!page.body.contains("Sign in as"), "no routing by user is loaded, nobody to suggest");
        for version in ["v1", "v2", "v3"] {
            if page.body.contains(&format!("Reviews served by: reviews-{version}")) {
                versions.insert(version);
            }
        }
    }
    assert!(versions.len() >= 2, "reviews spread over versions, got {versions:?}");

    up.proc.signal(Signal::SIGTERM);
    let status = up.proc.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}: {}", up.proc.output());
    assert!(all_gone(&up.pids(), Duration::from_secs(1)).await, "children outlived the stack");
    for (name, addr, _) in &up.services {
        assert!(std::net::TcpStream::connect(addr).is_err(), "{name} still listens on {addr}");
    }
}

#[actix_web::test]
async fn children_stop_when_the_stack_is_killed() {
    let up = Up::start(&[], &[]).await;
    let pids = up.pids();
    up.proc.signal(Signal::SIGKILL);
    assert!(all_gone(&pids, Duration::from_secs(15)).await, "orphans left behind");
}

#[actix_web::test]
async fn a_child_that_dies_is_reported_the_page_degrades_and_it_comes_back_after_a_back_off() {
    let routes = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/routes.yaml");
    let mut up = Up::start(&["--routes", routes.to_str().unwrap()], &[]).await;
    let page = format!("http://{}/productpage", up.addr("productpage"));
    let ratings = up.addr("ratings");
    kill(Pid::from_raw(up.pid("ratings")), Signal::SIGKILL).unwrap();
    up.proc
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("bookinfo: ratings exited (signal: 9 (SIGKILL)); restarting it in 10s").then_some(())
        })
        .await;
    // Meanwhile the page degrades exactly as the original's does.
    let degraded = get(&page).await;
    assert_eq!(degraded.status, 200);
    assert!(degraded.body.contains("Ratings service is currently unavailable"), "{}", degraded.body);
    up.proc
        .wait_for(Duration::from_secs(20), |l| {
            l.starts_with("bookinfo: ratings is running again (pid ").then_some(())
        })
        .await;
    assert_eq!(get(&format!("http://{ratings}/ratings/0")).await.status, 200, "on the same port as before");
    assert!(!get(&page).await.body.contains("Ratings service is currently unavailable"));
    up.proc.signal(Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success());
}

#[actix_web::test]
async fn with_no_restarts_a_dead_child_stays_down_and_the_rest_keeps_serving() {
    let mut up = Up::start(&["--no-restarts"], &[]).await;
    kill(Pid::from_raw(up.pid("details")), Signal::SIGKILL).unwrap();
    up.proc
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("bookinfo: details exited (signal: 9 (SIGKILL)); not restarted").then_some(())
        })
        .await;
    let page = get(&format!("http://{}/productpage", up.addr("productpage"))).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Error fetching product details"), "{}", page.body);
    up.proc.signal(Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(30)).await.success(), "{}", up.proc.output());
}

#[actix_web::test]
async fn a_port_in_use_is_a_one_line_error_naming_it() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut up = Proc::start(&["up", "--base-port", &port], &[]);
    let status = up.wait(Duration::from_secs(30)).await;
    assert_eq!(status.code(), Some(1));
    let output = up.output();
    assert_eq!(output.lines().count(), 1, "{output}");
    assert!(output.contains(&format!("port {port} is already in use")), "{output}");
    assert!(output.contains("productpage needs it"), "{output}");
}
