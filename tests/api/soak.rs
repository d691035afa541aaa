//! A bounded soak of the whole stack: many requests over mixed endpoints at 32 connections, in
//! both tracing modes, with no error and no steady memory growth.
//!
//! Ignored by a plain `cargo test` (it takes minutes); `.ci/run` runs it alone:
//! `cargo test --test api -- --ignored soak:: --test-threads 1`. `BOOKINFO_SOAK_REQUESTS` sets the requests per
//! mode (default 50 000).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use nix::sys::signal::Signal;

use crate::helpers::client;
use crate::stack::Up;

const CONNECTIONS: usize = 32;

/// RSS of every service (KiB) when request `.0` was sent.
type Sample = (usize, Vec<u64>);

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The path of request `i`: mostly pages, the API, static files, health, sign-in and out.
fn path(i: usize) -> &'static str {
    match i % 20 {
        0..=9 => "/productpage",
        10 | 11 => "/api/v1/products/0/reviews",
        12 => "/api/v1/products/0/ratings",
        13 => "/api/v1/products/0",
        14 => "/api/v1/products",
        15 => "/static/css/bookinfo.css",
        16 => "/health",
        17 => "/login",
        18 => "/logout",
        _ => "/metrics",
    }
}

async fn soak(mode: &str, requests: usize) {
    let file = std::env::temp_dir().join(format!("bookinfo-soak-{mode}-{}.jsonl", std::process::id()));
    let args = ["--tracing", mode, "--quiet-traces", "--traces-file", file.to_str().unwrap()];
    let mut up = Up::start(&args, &[("RUST_LOG", "warn")]).await;
    let base = format!("http://{}", up.addr("productpage"));
    let pids = up.pids();

    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let samples: Arc<std::sync::Mutex<Vec<Sample>>> = Arc::default();
    let start = Instant::now();
    let workers = (0..CONNECTIONS).map(|_| {
        let (next, failures, samples, base, pids) =
            (next.clone(), failures.clone(), samples.clone(), base.clone(), pids.clone());
        async move {
            let http = client();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    break;
                }
                if i % (requests / 4).max(1) == 0 {
                    samples.lock().unwrap().push((i, pids.iter().map(|pid| rss_kib(*pid)).collect()));
                }
                let url = format!("{base}{}", path(i));
                let sent = if path(i) == "/login" {
                    http.post(&url)
                        .insert_header(("content-type", "application/x-www-form-urlencoded"))
                        .send_body(format!("username=reader{}", i % 97))
                        .await
                } else {
                    http.get(&url).send().await
                };
                let ok = match sent {
                    Ok(mut response) => {
                        let status = response.status().as_u16();
                        response.body().limit(1 << 20).await.is_ok() && (status == 200 || status == 302)
                    }
                    Err(_) => false,
                };
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    join_all(workers).await;
    let took = start.elapsed();
    let end: Vec<u64> = pids.iter().map(|pid| rss_kib(*pid)).collect();
    up.proc.signal(Signal::SIGTERM);
    assert!(up.proc.wait(Duration::from_secs(60)).await.success());
    let _ = std::fs::remove_file(file);

    let failures = failures.load(Ordering::Relaxed);
    eprintln!(
        "soak {mode}: {requests} requests in {took:?} ({:.0}/s), {failures} failures",
        requests as f64 / took.as_secs_f64()
    );
    assert_eq!(failures, 0, "{mode}: failed requests");
    let mut samples = samples.lock().unwrap().clone();
    samples.sort_by_key(|(i, _)| *i);
    // From a quarter of the run (warmed up) to the end, no service grows steadily.
    let (_, warm) = samples.iter().find(|(i, _)| *i >= requests / 4).expect("a sample at a quarter");
    for ((name, _, _), (warm, end)) in up.services.iter().zip(warm.iter().zip(&end)) {
        eprintln!("soak {mode}: {name} RSS {warm} KiB at a quarter, {end} KiB at the end");
        let allowed = (warm / 4).max(4 * 1024);
        assert!(end.saturating_sub(*warm) <= allowed, "{mode}: {name} grew from {warm} to {end} KiB");
    }
}

fn requests() -> usize {
    std::env::var("BOOKINFO_SOAK_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(50_000)
}

#[actix_web::test]
#[ignore = "minutes long: .ci/run runs it"]
async fn soak_propagate() {
    soak("propagate", requests()).await;
}

#[actix_web::test]
#[ignore = "minutes long: .ci/run runs it"]
async fn soak_otel() {
    soak("otel", requests()).await;
}
