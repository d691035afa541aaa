//! Hostile and malformed input, from outside: oversized heads and bodies get a 4xx (never a 500
//! or a hang), garbage gets a 400 and the service lives on, and no HTML answer carries what a
//! client sent unescaped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::helpers::{
    Env, answer, client, get, spawn_details, spawn_productpage, spawn_ratings, spawn_reviews,
};

/// Sends raw bytes, returns the status line (or what went wrong), within 5 s.
fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if let Err(err) = stream.write_all(request) {
        // The server may answer and close before reading everything: read what it said.
        let _ = err;
    }
    let mut buffer = vec![0; 4096];
    match stream.read(&mut buffer) {
        Ok(n) => String::from_utf8_lossy(&buffer[..n]).lines().next().unwrap_or_default().to_owned(),
        Err(err) => format!("no answer: {err}"),
    }
}

async fn raw_async(addr: SocketAddr, request: Vec<u8>) -> String {
    actix_web::rt::task::spawn_blocking(move || raw(addr, &request)).await.unwrap()
}

#[actix_web::test]
async fn oversized_heads_and_bodies_get_a_4xx_and_garbage_a_400() {
    let productpage = spawn_productpage(None, None, None, &[]);
    let ratings = spawn_ratings(&Env::new());
    let big_header =
        [b"GET /productpage HTTP/1.1\r\nHost: x\r\nx-big: ".as_slice(), &vec![b'a'; 200_000], b"\r\n\r\n"]
            .concat();
    let many_headers: Vec<u8> = [b"GET /productpage HTTP/1.1\r\nHost: x\r\n".to_vec()]
        .into_iter()
        .chain((0..200).map(|i| format!("x-h{i}: 1\r\n").into_bytes()))
        .chain([b"\r\n".to_vec()])
        .collect::<Vec<_>>()
        .concat();
    let long_path = [b"GET /".as_slice(), &vec![b'a'; 70_000], b" HTTP/1.1\r\nHost: x\r\n\r\n"].concat();
    let big_login = [
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000000\r\n\r\n".as_slice(),
        &vec![b'u'; 2_000_000],
    ]
    .concat();
    let big_rating = [
        b"POST /ratings/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n".as_slice(),
        &vec![b'1'; 2_000_000],
    ]
    .concat();
    let cases: Vec<(SocketAddr, Vec<u8>, &str)> = vec![
        (productpage.addr, big_header, "HTTP/1.1 431"),
        (productpage.addr, many_headers, "HTTP/1.1 431"),
        (productpage.addr, long_path, "HTTP/1.1 4"),
        (productpage.addr, big_login, "HTTP/1.1 413"),
        (ratings.addr, big_rating, "HTTP/1.1 413"),
        (productpage.addr, b"\x00\x01GARBAGE\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        (productpage.addr, b"G{}T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), "HTTP/1.1 400"),
        (
            ratings.addr,
            b"GET /ratings/0 HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
            "HTTP/1.1 400",
        ),
    ];
    for (addr, request, expected) in cases {
        let status = raw_async(addr, request).await;
        assert!(status.starts_with(expected), "{expected}: got {status:?}");
    }
    // Still serving.
    assert_eq!(get(&productpage.url("/health")).await.status, 200);
    assert_eq!(get(&ratings.url("/ratings/0")).await.status, 200);
}

const HOSTILE: &str = "<script>alert(1)</script>";

#[actix_web::test]
async fn no_html_answer_carries_client_input_unescaped() {
    let details = spawn_details(&Env::new());
    let reviews = spawn_reviews("v1", None, &[]);
    let productpage = spawn_productpage(Some(&details), Some(&reviews), None, &[]);
    let encoded = "%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    let signed_in = answer(
        client()
            .post(productpage.url("/login"))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .send_body(format!("username={encoded}")),
    )
    .await;
    let cookie = signed_in.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let requests = [
        client().get(productpage.url(&format!("/productpage?u={encoded}"))),
        client().get(productpage.url(&format!("/{encoded}"))),
        client().get(productpage.url(&format!("/productpage/{encoded}"))),
        client().get(productpage.url(&format!("/static/{encoded}"))),
        client().get(productpage.url("/productpage")).insert_header(("cookie", cookie.clone())),
        client().get(productpage.url("/")).insert_header(("cookie", cookie)),
        client()
            .get(productpage.url("/productpage"))
            .insert_header(("user-agent", HOSTILE))
            .insert_header(("x-request-id", HOSTILE))
            .insert_header(("baggage", "x=%3Cscript%3E"))
            .insert_header(("referer", HOSTILE)),
        client().get(details.url(&format!("/nothing/{encoded}"))),
    ];
    for request in requests {
        let answer = answer(request.send()).await;
        assert!(answer.status < 500, "{}", answer.status);
        assert!(!answer.body.contains("<script>"), "reflected: {}", answer.body);
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    }
    // JSON answers stay JSON, whatever the id.
    let api = get(&productpage.url(&format!("/api/v1/products/{encoded}"))).await;
    assert_eq!(api.header("content-type"), Some("application/json"));
    assert!(api.json().is_object());
}

#[actix_web::test]
async fn a_malformed_request_is_logged_only_when_debug_is_asked_for() {
    for (rust_log, logged) in [("info", false), ("warn,bookinfo=debug", false), ("debug", true)] {
        let mut proc = crate::process::Proc::start(
            &["serve", "ratings", "--port", "0", "--host", "127.0.0.1"],
            &[("RUST_LOG", rust_log)],
        );
        let addr: SocketAddr = proc
            .wait_for(Duration::from_secs(30), |l| {
                l.strip_prefix("bookinfo: ready: ratings listening on http://")?.parse().ok()
            })
            .await;
        for _ in 0..3 {
            let status = raw_async(addr, b"GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n".to_vec()).await;
            assert_eq!(status, "HTTP/1.1 400 Bad Request");
        }
        // The service lives on.
        assert_eq!(get(&format!("http://{addr}/health")).await.status, 200);
        proc.signal(nix::sys::signal::Signal::SIGTERM);
        assert!(proc.wait(Duration::from_secs(30)).await.success());
        let output = proc.output();
        assert_eq!(
            output.matches("request parse error").count(),
            if logged { 3 } else { 0 },
            "{rust_log}: {output}"
        );
    }
}
