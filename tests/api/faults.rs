//! How the stack holds when parts of it fail: an upstream killed and back, an upstream that
//! hangs, SIGTERM under load, a burst of sign-ins.

use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use nix::sys::signal::Signal;

use crate::helpers::{
    Canned, Capture, TestApp, answer, client, details_body, get, reviews_body, spawn_details,
    spawn_productpage, spawn_reviews,
};
use crate::otlp::Receiver;
use crate::process::Served;

#[actix_web::test]
async fn a_killed_upstream_degrades_the_page_and_it_recovers_when_the_upstream_returns() {
    let details = Served::start("details", &[], &[]).await;
    let port = details.addr.port();
    let reviews = spawn_reviews("v1", None, &[]);
    let productpage = spawn_productpage(Some(&TestApp { addr: details.addr }), Some(&reviews), None, &[]);
    let page = productpage.url("/productpage");
    assert!(get(&page).await.body.contains("Book Details"));

    let mut killed = details.proc;
    killed.signal(Signal::SIGKILL);
    killed.wait(Duration::from_secs(10)).await;
    for _ in 0..5 {
        let answer = get(&page).await;
        assert_eq!(answer.status, 200);
        assert!(
            answer.body.contains("Error fetching product details") && answer.body.contains("Book Reviews")
        );
    }

    let _back = Served::start_at("details", port, &[], &[]).await;
    crate::wait::eventually(
        Duration::from_secs(5),
        || "the page recovered".to_owned(),
        || async {
            let answer = get(&page).await;
            assert_eq!(answer.status, 200);
            answer.body.contains("Book Details").then_some(())
        },
    )
    .await;
}

#[actix_web::test]
async fn an_upstream_that_hangs_costs_the_page_its_timeout_and_no_more() {
    // Connections are accepted by the kernel and never answered.
    let hole = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let hung = TestApp { addr: hole.local_addr().unwrap() };
    let details = spawn_details(&Vec::new());
    let productpage =
        spawn_productpage(Some(&details), Some(&hung), None, &[("BOOKINFO_REVIEWS_TIMEOUT", "400ms")]);
    let start = Instant::now();
    let answer = get(&productpage.url("/productpage")).await;
    let took = start.elapsed();
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains("Error fetching product reviews") && answer.body.contains("Book Details"));
    // Two attempts of 400 ms. Past 3 s, an attempt would have run to the default timeout:
    // far above what a loaded machine adds to these 800 ms.
    assert!(took >= Duration::from_millis(800) && took < Duration::from_secs(3), "took {took:?}");
    drop(hole);
}

#[actix_web::test]
async fn sigterm_under_load_completes_the_requests_in_flight_and_flushes_their_spans() {
    let receiver = Receiver::http();
    let details = Capture::start(Canned::json(&details_body()).after(Duration::from_millis(500)));
    let reviews = Capture::start(Canned::json(&reviews_body()));
    let (details_port, reviews_port) =
        (details.app.addr.port().to_string(), reviews.app.addr.port().to_string());
    let productpage = Served::start(
        "productpage",
        &["--tracing", "otel"],
        &[
            ("DETAILS_HOSTNAME", "127.0.0.1"),
            ("DETAILS_SERVICE_PORT", &details_port),
            ("REVIEWS_HOSTNAME", "127.0.0.1"),
            ("REVIEWS_SERVICE_PORT", &reviews_port),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint),
            // Only the flush at shutdown can export these spans.
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ],
    )
    .await;
    let traces: Vec<String> = (0..20).map(|i| format!("{:032x}", 0xfeed_0000_u64 + i)).collect();
    let url = productpage.url("/productpage");
    let requests: Vec<_> = traces
        .iter()
        .map(|trace| {
            let request =
                client().get(&url).insert_header(("traceparent", format!("00-{trace}-00000000000000aa-01")));
            async move { request.send().await.map(|mut r| (r.status().as_u16(), r.body().limit(1 << 20))) }
        })
        .collect();
    let load = actix_web::rt::spawn(async move {
        let mut answers = Vec::new();
        for sent in join_all(requests).await {
            let (status, body) = sent.expect("a request in flight was dropped");
            answers.push((status, body.await.expect("a response was cut off").len()));
        }
        answers
    });
    // SIGTERM once every request waits on details (which answers after 500 ms).
    crate::wait::eventually(
        Duration::from_secs(10),
        || format!("{} of 20 requests at details", details.received().len()),
        || async { (details.received().len() == 20).then_some(()) },
    )
    .await;
    let (status, output) = productpage.stop().await;
    assert!(status.success(), "{output}");
    let answers = load.await.unwrap();
    assert!(answers.iter().all(|(status, length)| *status == 200 && *length > 0), "{answers:?}");
    let flushed: Vec<String> =
        receiver.spans().iter().filter(|s| s.kind() == "SERVER").map(|s| s.trace_id()).collect();
    for trace in &traces {
        assert!(flushed.contains(trace), "no span flushed for {trace}");
    }
}

#[actix_web::test]
async fn a_burst_of_sign_ins_keeps_every_session_apart() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let visits = (0..40).map(|i| {
        let base = productpage.url("");
        async move {
            let user = format!("reader-{i}");
            let signed_in = answer(
                client()
                    .post(format!("{base}/login"))
                    .insert_header(("content-type", "application/x-www-form-urlencoded"))
                    .send_body(format!("username={user}")),
            )
            .await;
            let cookie = signed_in.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
            let page = answer(
                client().get(format!("{base}/productpage")).insert_header(("cookie", cookie.clone())).send(),
            )
            .await;
            let greeted = page.body.contains(&format!(">{user}</p>"));
            let others = (0..40).filter(|j| *j != i).any(|j| page.body.contains(&format!(">reader-{j}</p>")));
            let out =
                answer(client().get(format!("{base}/logout")).insert_header(("cookie", cookie)).send()).await;
            let cleared = out.header("set-cookie").is_some_and(|c| c.starts_with("session=;"));
            (greeted, others, cleared)
        }
    });
    let results = join_all(visits).await;
    assert!(results.iter().all(|(greeted, others, cleared)| *greeted && !*others && *cleared), "{results:?}");
}
