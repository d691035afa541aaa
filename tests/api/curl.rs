//! The image's `curl`: the binary called by that name, against a real productpage.

use std::process::Command;

use crate::helpers::{dead_upstream, spawn_productpage};

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
