//! The image's `curl`: the binary called by that name, against a real productpage.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{HttpRequest, HttpResponse, web};

use crate::helpers::{dead_upstream, spawn_productpage, stub};

/// Runs the binary as `curl` (through a link of that name) with `args`.
fn curl(args: &[&str]) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("bookinfo-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("curl");
    match std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_bookinfo"), &link) {
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => panic!("{err}"),
        _ => {}
    }
    let output = Command::new(&link).args(args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[actix_web::test]
async fn the_istio_docs_command_finds_the_title() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let url = format!("{}/productpage", productpage.addr);
    let (code, out, err) = actix_web::rt::task::spawn_blocking(move || curl(&["-sS", &url])).await.unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("<title>Simple Bookstore App</title>"));
}

#[actix_web::test]
async fn write_out_head_and_fail_behave_like_curl() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let base = format!("http://{}", productpage.addr);
    let status = format!("{base}/api/v1/products/0/ratings");
    let head = format!("{base}/health");
    let missing = format!("{base}/nope");
    let (code, out, _) = actix_web::rt::task::spawn_blocking(move || {
        curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}\\n", &status])
    })
    .await
    .unwrap();
    assert_eq!((code, out.as_str()), (0, "500\n"), "ratings is down: the API says 500");
    let (code, out, _) = actix_web::rt::task::spawn_blocking(move || curl(&["-sI", &head])).await.unwrap();
    assert_eq!(code, 0);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.contains("content-type: text/html"), "{out}");
    let (code, out, err) =
        actix_web::rt::task::spawn_blocking(move || curl(&["-fsS", &missing])).await.unwrap();
    assert_eq!((code, out.as_str()), (22, ""));
    assert!(err.contains("(22) The requested URL returned error: 404"), "{err}");
}

#[actix_web::test]
async fn failures_exit_with_curls_codes() {
    let dead = format!("http://{}/", dead_upstream().addr);
    let (code, _, err) = actix_web::rt::task::spawn_blocking(move || curl(&["-sS", &dead])).await.unwrap();
    assert_eq!(code, 7, "{err}");
    let (code, _, err) =
        actix_web::rt::task::spawn_blocking(|| curl(&["-sS", "https://example.com/"])).await.unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("Protocol \"https\" not supported"));
    let (code, _, err) =
        actix_web::rt::task::spawn_blocking(|| curl(&["-s", "http://127.0.0.1:1/"])).await.unwrap();
    assert_eq!((code, err.as_str()), (7, ""), "--silent hides the error");
}

#[test]
fn an_invalid_port_is_a_malformed_url_not_port_80() {
    for url in ["http://127.0.0.1:99999/", "127.0.0.1:abc/health"] {
        let (code, out, err) = curl(&["-sS", url]);
        assert_eq!(code, 3, "{url}: {err}");
        assert_eq!(out, "");
        assert_eq!(err, "curl: (3) URL rejected: Port number was not a decimal number between 0 and 65535\n");
    }
}

/// A server whose `/loop` redirects to itself and `/once` to `/end`; it counts requests.
fn redirector() -> (String, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    let addr = stub(move |app| {
        let counted = counted.clone();
        app.default_service(web::to(move |req: HttpRequest| {
            counted.fetch_add(1, Ordering::SeqCst);
            let location = match req.path() {
                "/loop" => Some("/loop"),
                "/once" => Some("end"),
                _ => None,
            };
            async move {
                match location {
                    Some(location) => {
                        HttpResponse::Found().insert_header(("location", location)).body("moved")
                    }
                    None => HttpResponse::Ok().body("done"),
                }
            }
        }));
    });
    (format!("http://{addr}"), count)
}

#[actix_web::test]
async fn location_follows_redirects_and_a_loop_ends_with_47_at_the_limit() {
    let (base, count) = redirector();
    let url = format!("{base}/once");
    let (code, out, err) = actix_web::rt::task::spawn_blocking(move || curl(&["-sSL", &url])).await.unwrap();
    assert_eq!((code, out.as_str()), (0, "done"), "{err}");

    count.store(0, Ordering::SeqCst);
    let url = format!("{base}/loop");
    let (code, out, err) = actix_web::rt::task::spawn_blocking(move || curl(&["-sSL", &url])).await.unwrap();
    assert_eq!((code, out.as_str(), err.as_str()), (47, "", "curl: (47) Maximum (50) redirects followed\n"));
    assert_eq!(count.load(Ordering::SeqCst), 51, "the first request and 50 redirects");

    let url = format!("{base}/loop");
    let (code, _, err) =
        actix_web::rt::task::spawn_blocking(move || curl(&["-sSL", "--max-redirs", "2", &url]))
            .await
            .unwrap();
    assert_eq!((code, err.as_str()), (47, "curl: (47) Maximum (2) redirects followed\n"));

    let url = format!("{base}/loop");
    let (code, out, _) =
        actix_web::rt::task::spawn_blocking(move || curl(&["-s", "-w", "%{http_code}", &url])).await.unwrap();
    assert_eq!((code, out.as_str()), (0, "moved302"), "without -L the redirect is the answer");
}

#[test]
fn help_is_printed_with_exit_code_0() {
    for flag in ["--help", "-h"] {
        let (code, out, err) = curl(&[flag]);
        assert_eq!(code, 0, "{flag}: {err}");
        assert!(out.contains("Usage: curl") && out.contains("--max-time"), "{flag}: {out}");
    }
}

#[test]
fn bad_options_are_one_line_errors_with_exit_code_2() {
    for (args, message) in [
        (&["-m", "1e100", "127.0.0.1:1"][..], "option --max-time: too large number"),
        (&["-m", "soon", "127.0.0.1:1"], "option --max-time: expected a proper numerical parameter"),
        (&["-m", "-1", "127.0.0.1:1"], "option --max-time: expected a positive numerical parameter"),
        (&["--max-redirs", "x", "127.0.0.1:1"], "option --max-redirs: expected a proper numerical parameter"),
        (&["--nope", "127.0.0.1:1"], "option --nope: is unknown"),
        (&["-s"], "no URL specified!"),
    ] {
        let (code, out, err) = curl(args);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (2, "", format!("curl: {message}\n").as_str()),
            "{args:?}"
        );
    }
}
