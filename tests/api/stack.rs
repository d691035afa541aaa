//! The local stack started by `bookinfo up`: every service answers, and no child outlives it.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::helpers::get;

/// A running `bookinfo up`, with what it printed.
struct Up {
    child: Child,
    services: Vec<(String, SocketAddr, i32)>,
    stderr: Option<JoinHandle<String>>,
}

/// Starts `bookinfo up --base-port 0` and waits for its table of services.
async fn start() -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bookinfo"))
        .args(["up", "--base-port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn bookinfo up");
    let stderr = Some(collect(child.stderr.take().unwrap()));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut services = Vec::new();
    let table = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("Open the productpage URL") {
                return;
            }
            // "  details      http://127.0.0.1:40123  (pid 4242)"
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [name, url, "(pid", pid] = words[..] {
                let addr =
                    url.trim_start_matches("http://").trim_end_matches("/productpage").parse().unwrap();
                services.push((name.to_owned(), addr, pid.trim_end_matches(')').parse().unwrap()));
            }
        }
        panic!("bookinfo up stopped before it was ready");
    };
    tokio::time::timeout(Duration::from_secs(60), table).await.expect("the stack starts within 60 s");
    // Keep reading, so children never block on a full pipe.
    actix_web::rt::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Up { child, services, stderr }
}

/// Everything `stream` carries, once it ends.
fn collect(stream: impl AsyncRead + Unpin + 'static) -> JoinHandle<String> {
    actix_web::rt::spawn(async move {
        let mut text = String::new();
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            text.push_str(&line);
            text.push('\n');
        }
        text
    })
}

impl Up {
    fn addr(&self, name: &str) -> SocketAddr {
        self.services.iter().find(|(n, _, _)| n == name).unwrap().1
    }

    fn pids(&self) -> Vec<i32> {
        self.services.iter().map(|(_, _, pid)| *pid).collect()
    }

    /// What the stack wrote on standard error, once it has exited.
    async fn stderr(&mut self) -> String {
        self.stderr.take().unwrap().await.unwrap()
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id().unwrap() as i32), signal).unwrap();
    }
}

fn is_gone(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None) == Err(Errno::ESRCH)
}

/// Polls until every pid is gone, for up to `within`.
async fn all_gone(pids: &[i32], within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if pids.iter().all(|pid| is_gone(*pid)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[actix_web::test]
async fn up_serves_the_page_spreads_reviews_and_stops_every_child_on_sigterm() {
    let mut up = start().await;
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
        for version in ["v1", "v2", "v3"] {
            if page.body.contains(&format!("Reviews served by: reviews-{version}")) {
                versions.insert(version);
            }
        }
    }
    assert!(versions.len() >= 2, "reviews spread over versions, got {versions:?}");

    up.signal(Signal::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(30), up.child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}: {}", up.stderr().await);
    assert!(all_gone(&up.pids(), Duration::from_secs(1)).await, "children outlived the stack");
    for (name, addr, _) in &up.services {
        assert!(std::net::TcpStream::connect(addr).is_err(), "{name} still listens on {addr}");
    }
}

#[actix_web::test]
async fn children_stop_when_the_stack_is_killed() {
    let up = start().await;
    let pids = up.pids();
    up.signal(Signal::SIGKILL);
    assert!(all_gone(&pids, Duration::from_secs(15)).await, "orphans left behind");
}

#[actix_web::test]
async fn a_child_that_dies_is_reported_with_its_status_and_the_rest_stop() {
    let mut up = start().await;
    let ratings = up.services.iter().find(|(n, _, _)| n == "ratings").unwrap().2;
    kill(Pid::from_raw(ratings), Signal::SIGKILL).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), up.child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(1));
    let stderr = up.stderr().await;
    assert!(stderr.contains("ratings exited unexpectedly (signal: 9 (SIGKILL))"), "{stderr}");
    assert!(all_gone(&up.pids(), Duration::from_secs(1)).await);
}

#[actix_web::test]
async fn a_port_in_use_is_a_one_line_error_naming_it() {
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = Command::new(env!("CARGO_BIN_EXE_bookinfo"))
        .args(["up", "--base-port", &port.to_string()])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("port {port} is already in use")), "{stderr}");
    assert!(stderr.contains("productpage needs it"), "{stderr}");
}
