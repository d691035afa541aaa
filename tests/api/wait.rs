//! One way to wait in tests: poll a condition until it holds or a deadline passes, never a
//! fixed sleep.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep};

/// Polls `check` every 20 ms until it gives `Some`, for at most `within`.
pub async fn poll<T, F, Fut>(within: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        sleep(Duration::from_millis(20)).await;
    }
}

/// [`poll`], panicking with `what` (which can tell what `check` last saw) when it never holds.
pub async fn eventually<T, F, Fut>(within: Duration, what: impl Fn() -> String, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    match poll(within, check).await {
        Some(found) => found,
        None => panic!("not within {within:?}: {}", what()),
    }
}

/// A process's peak resident memory (`VmHWM`), in bytes.
pub fn peak_rss(pid: i32) -> u64 {
    rss_field(pid, "VmHWM:")
}

fn rss_field(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let line = status.lines().find(|l| l.starts_with(field)).expect("the field");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number");
    kib * 1024
}
