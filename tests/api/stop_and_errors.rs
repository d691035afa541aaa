//! How `bookinfo up` stops, and the one-line errors of its configuration.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::helpers::get;
use crate::stack::Up;

/// Every call to reviews waits before it goes, so that pages are in flight when the stop comes.
const SLOW_REVIEWS: &str = r"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - fault: {delay: {fixedDelay: 1500ms, percentage: {value: 100}}}
    route: [{destination: {host: reviews}}]
";

#[actix_web::test]
async fn sigterm_lets_the_pages_in_flight_finish_whole_then_stops_every_child() {
    let dir = std::env::temp_dir().join(format!("bookinfo-stop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let routes = dir.join("slow-reviews.yaml");
    std::fs::write(&routes, SLOW_REVIEWS).unwrap();
    let mut up = Up::start(&["--routes", routes.to_str().unwrap()], &[]).await;
    let page = format!("http://{}/productpage", up.addr("productpage"));
    let pages: Vec<_> = (0..4)
        .map(|_| {
            actix_web::rt::spawn({
                let page = page.clone();
                async move { get(&page).await }
            })
        })
        .collect();
    // Sent and waiting out the delay: well inside its 1.5 s.
    actix_web::rt::time::sleep(Duration::from_millis(400)).await;
    let stopping = Instant::now();
    up.proc.signal(Signal::SIGTERM);
    for page in pages {
        let page = page.await.unwrap();
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Book Reviews"), "reviews still answered:\n{}", page.body);
        assert!(!page.body.contains("Error fetching product reviews"));
    }
    let status = up.proc.wait(Duration::from_secs(30)).await;
    assert!(status.success(), "{status}\n{}", up.proc.output());
    // The pages' own second and a half, then the rest's stop: generous for a loaded machine,
    // far below the 15 s after which a child that does not stop is killed.
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(10), "up took {took:?} to stop");
    std::fs::remove_dir_all(&dir).unwrap();
}
