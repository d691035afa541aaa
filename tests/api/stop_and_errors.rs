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

/// What `up` refuses before it starts anything: the exit code, a word of the one line it says.
#[actix_web::test]
async fn up_refuses_what_it_cannot_use_in_one_line_naming_the_flag_variable_or_path() {
    let file = std::env::temp_dir().join(format!("bookinfo-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, "").unwrap();
    let runs = file.join("runs");
    let runs = runs.to_str().unwrap();
    let cases: [crate::cli::Case; 9] = [
        (&["up", "--base-port", "0"], &[("BOOKINFO_RUNS_DIR", runs)], 64, runs),
        (&["up", "--base-port", "0"], &[("BOOKINFO_SESSION_KEY", "short")], 64, "BOOKINFO_SESSION_KEY"),
        (&["up", "--base-port", "65531"], &[], 2, "use 65530 or lower"),
        (
            &["up", "--base-port", "20000", "--otlp-port", "20002"],
            &[],
            2,
            "--otlp-port 20002 is also reviews-v1's",
        ),
        (
            &["up", "--base-port", "20000", "--otlp-port", "20100", "--viewer-port", "20100"],
            &[],
            2,
            "--viewer-port",
        ),
        (&["up", "--base-port", "0", "--trace-body-limit", "0"], &[], 2, "--trace-body-limit"),
        (&["up", "--base-port", "0", "--trace-memory", "0MiB"], &[], 2, "--trace-memory"),
        (&["up", "--base-port", "0", "--traces-file-size", "0"], &[], 2, "--traces-file-size"),
        (&["traces", "serve", "--file", "/dev/null", "--trace-memory", "0"], &[], 2, "0 holds nothing"),
    ];
    for (args, env, code, says) in cases {
        let (got, out) = crate::cli::run(args, env).await;
        assert_eq!(got, Some(code), "{args:?} {env:?}: {out}");
        // One line, where clap's own trailer (a pointer to --help) does not follow it.
        let first = out.lines().next().unwrap_or_default();
        assert!(first.contains(says), "{args:?} {env:?}: {out}");
        let lines = out.trim_end().lines().count();
        assert!(lines == 1 || out.contains("For more information, try '--help'"), "one line: {out}");
    }
    std::fs::remove_file(&file).unwrap();
}

/// Routing files Istio or Envoy would refuse are refused when read, the field named in one line.
#[actix_web::test]
async fn routes_envoy_or_istio_would_refuse_are_refused_naming_the_field() {
    let dir = std::env::temp_dir().join(format!("bookinfo-bad-routes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let match_on = |regex: &str| {
        format!(
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  \
             hosts: [reviews]\n  http:\n  - match: [{{headers: {{baggage: {{regex: '{regex}'}}}}}}]\n    \
             route: [{{destination: {{host: reviews}}}}]\n"
        )
    };
    let cases = [
        (match_on("(abc"), "headers.baggage.regex: \"(abc\": unclosed group"),
        (match_on("a{1001}"), "headers.baggage.regex: \"a{1001}\": a repetition count over 1000"),
        (match_on(&"(abcdefghij){100}".repeat(40)), "RE2 instructions"),
        (match_on("[a[b]]"), "a character class inside a class"),
        (
            SLOW_REVIEWS.replace("networking.istio.io/v1", "networking.istio.io/v2"),
            "apiVersion networking.istio.io/v2 is not one Istio serves",
        ),
        (
            SLOW_REVIEWS.replace("value: 100", "value: .nan"),
            "spec.http[0].fault.delay.percentage.value: invalid type: string \".nan\"",
        ),
    ];
    for (n, (text, says)) in cases.iter().enumerate() {
        let path = dir.join(format!("routes-{n}.yaml"));
        std::fs::write(&path, text).unwrap();
        let (code, out) =
            crate::cli::run(&["up", "--base-port", "0", "--routes", path.to_str().unwrap()], &[]).await;
        assert_eq!(code, Some(64), "{text}\n{out}");
        assert!(out.contains(path.to_str().unwrap()) && out.contains(says), "{says}\n{out}");
        assert_eq!(out.trim_end().lines().count(), 1, "one line: {out}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
