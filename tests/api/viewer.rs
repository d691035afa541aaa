//! The trace viewer in a real headless Chromium, over a running stack: the list shows a page's
//! trace, its waterfall has a row per span of the right services, a click shows a span's
//! attributes, the comparison shows two traces; no script error anywhere. Chromium and its
//! driver come from Debian (`apt-get install chromium chromium-driver`), so the test is ignored
//! by a plain `cargo test`; `.ci/run` installs them and runs it (`cargo test --test api --
//! --ignored viewer::`). Run that way without them, it fails.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::get;
use crate::spans::app_spans;
use crate::stack::Up;
use crate::wait::eventually;
use crate::webdriver::Browser;

/// Where the tests leave their screenshots (`docs/` has the ones the README shows).
fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("viewer")
}

/// The viewer API's view of the newest trace of a page (`/productpage`) not in `seen`.
async fn new_page_trace(viewer: &str, seen: &BTreeSet<String>) -> Value {
    eventually(
        Duration::from_secs(15),
        || "a new productpage trace in the store".to_owned(),
        || async {
            let list = get(&format!("{viewer}/api/bookinfo/traces?service=productpage")).await.json();
            let id = list["traces"]
                .as_array()?
                .iter()
                .filter(|t| t["root"] == "productpage SERVER GET /productpage")
                .filter_map(|t| t["trace_id"].as_str())
                .find(|id| !seen.contains(*id))?
                .to_owned();
            let view = get(&format!("{viewer}/api/bookinfo/traces/{id}")).await.json();
            // Whole: every span of the page has arrived, as many as its reviews version makes
            // (known once reviews' span is in; a v2 page on its way can hold as many as v1's).
            let version = view["summary"]["reviews_version"].as_str()?;
            let whole = app_spans(version) as u64;
            (view["summary"]["spans"].as_u64() == Some(whole)).then_some(view)
        },
    )
    .await
}

#[actix_web::test]
#[ignore = "needs chromium and chromium-driver: .ci/run runs it"]
async fn the_viewer_lists_draws_and_compares_the_traces_of_a_running_stack() {
    let browser = Browser::start().await;
    let up = Up::start(&["--quiet-traces"], &[]).await;
    let viewer = up.store.viewer().to_owned();
    let page = format!("http://{}/productpage", up.addr("productpage"));

    // After one page, the list shows its trace.
    assert_eq!(get(&page).await.status, 200);
    let first = new_page_trace(&viewer, &BTreeSet::new()).await;
    let first_id = first["summary"]["trace_id"].as_str().unwrap().to_owned();
    browser.open(&format!("{viewer}/")).await;
    let row = format!("tr[data-trace-id='{first_id}']");
    let listed = browser.wait_for(&row, 1).await;
    assert!(listed[0].text().await.contains("productpage SERVER GET /productpage"));

    // Its waterfall: one row per span, of the services the trace holds.
    browser.wait_for(&format!("{row} a.root"), 1).await[0].click().await;
    let spans = first["summary"]["spans"].as_u64().unwrap() as usize;
    let rows = browser.wait_for(".waterfall .row", spans).await;
    assert_eq!(rows.len(), spans);
    let mut drawn = BTreeSet::new();
    for row in &rows {
        drawn.insert(row.attribute("data-service").await.unwrap());
    }
    let services: BTreeSet<String> = first["summary"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(drawn, services);
    browser.screenshot(&screenshots().join("waterfall.png")).await;

    // A click shows the span's attributes and its process's resource.
    rows[0].click().await;
    let details = browser.wait_for(".details", 1).await;
    let text = details[0].text().await;
    assert!(text.contains("http.route") && text.contains("/productpage"), "{text}");
    assert!(text.contains("service.name") && text.contains("productpage"), "{text}");

    // Two traces side by side, by URL.
    assert_eq!(get(&page).await.status, 200);
    let second = new_page_trace(&viewer, &BTreeSet::from([first_id.clone()])).await;
    let second_id = second["summary"]["trace_id"].as_str().unwrap().to_owned();
    browser.open(&format!("{viewer}/compare?a={first_id}&b={second_id}")).await;
    let second_spans = second["summary"]["spans"].as_u64().unwrap() as usize;
    assert_eq!(browser.wait_for("#side-a .row", spans).await.len(), spans);
    assert_eq!(browser.wait_for("#side-b .row", second_spans).await.len(), second_spans);
    let numbers = browser.wait_for("table.numbers", 1).await[0].text().await;
    assert!(numbers.contains(&first_id) && numbers.contains(&second_id), "{numbers}");
    assert!(!browser.all("table.hops tr[data-hop='client → productpage']").await.is_empty());
    browser.screenshot(&screenshots().join("compare.png")).await;

    // A hostile name is text, never markup or script.
    let hostile = serde_json::json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "<img src=x onerror=alert(1)>"}}]},
        "scopeSpans": [{"spans": [{"traceId": "7a".repeat(16), "spanId": "0000000000000001", "name": "<script>window.owned = 1</script>", "kind": 2,
        "startTimeUnixNano": "1000000", "endTimeUnixNano": "3000000"}]}]}]});
    let posted = crate::helpers::answer(
        crate::helpers::client().post(format!("{}/v1/traces", up.store.otlp())).send_json(&hostile),
    )
    .await;
    assert_eq!(posted.status, 200);
    eventually(
        Duration::from_secs(5),
        || "the hostile trace stored".to_owned(),
        || async {
            (get(&format!("{viewer}/api/v3/traces/{}", "7a".repeat(16))).await.status == 200).then_some(())
        },
    )
    .await;
    browser.open(&format!("{viewer}/trace/{}", "7a".repeat(16))).await;
    let name = browser.wait_for(".waterfall .row .name", 1).await[0].text().await;
    assert_eq!(name, "<script>window.owned = 1</script>");
    assert_eq!(
        browser.run("return window.owned === undefined && document.images.length === 0;", &[]).await,
        true
    );

    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "script errors: {errors:?}");
    browser.quit().await;
}

#[actix_web::test]
#[ignore = "needs chromium and chromium-driver: .ci/run runs it"]
async fn the_service_graph_draws_each_call_with_its_counts() {
    let browser = Browser::start().await;
    let up = Up::start(&["--quiet-traces", "--tracing", "none"], &[]).await;
    crate::service_graph::send_pages(&up, 3).await;
    let viewer = up.store.viewer().to_owned();

    // Reached from the list's page by its tab.
    browser.open(&format!("{viewer}/")).await;
    browser.wait_for("#nav-graph", 1).await[0].click().await;
    let edges = browser.wait_for("svg#graph g.edge", 4).await;
    let mut drawn = BTreeSet::new();
    for edge in &edges {
        let attribute = async |name: &str| edge.attribute(name).await.unwrap();
        drawn.insert((
            attribute("data-parent").await,
            attribute("data-child").await,
            attribute("data-calls").await,
            attribute("data-errors").await,
            edge.text().await,
        ));
    }
    let edge = |parent: &str, child: &str, errors: &str, label: &str| {
        (parent.to_owned(), child.to_owned(), "3".to_owned(), errors.to_owned(), label.to_owned())
    };
    assert_eq!(
        drawn,
        BTreeSet::from([
            edge("productpage", "details", "1", "3 (1 failed)"),
            edge("productpage", "reviews", "0", "3"),
            edge("ratings", "mysql", "0", "3"),
            edge("reviews", "ratings", "0", "3"),
        ])
    );
    let mut nodes = BTreeSet::new();
    for node in browser.wait_for("svg#graph g.node", 5).await {
        nodes.insert(node.text().await);
    }
    assert_eq!(
        nodes,
        BTreeSet::from(["details", "mysql", "productpage", "ratings", "reviews"].map(String::from))
    );
    // Layered by calls: productpage first, the database last.
    let x = async |node: &str| {
        let script =
            format!("return document.querySelector(\"g.node[data-node='{node}'] rect\").getAttribute('x');");
        browser.run(&script, &[]).await.as_str().unwrap().parse::<u32>().unwrap()
    };
    let (page, reviews, ratings, mysql) =
        (x("productpage").await, x("reviews").await, x("ratings").await, x("mysql").await);
    assert!(page < reviews && reviews < ratings && ratings < mysql, "{page} {reviews} {ratings} {mysql}");
    let table = browser.wait_for("table.edges", 1).await[0].text().await;
    assert!(table.contains("ratings mysql 3 0"), "{table}");
    browser.screenshot(&screenshots().join("graph.png")).await;

    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "script errors: {errors:?}");
    browser.quit().await;
}
