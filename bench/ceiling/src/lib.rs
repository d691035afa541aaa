//! What `bench/run` measures the stack against.
//!
//! `ceiling hop`: one process of a chain with Bookinfo's call graph that does no work at all.
//! Four of them (productpage calling details and reviews at once, reviews calling ratings)
//! make the ceiling of this machine for that graph: an actix-web server and keep-alive awc
//! calls, bodies of the real services' sizes, and nothing else (no headers read or copied, no
//! JSON, no template, no log). How close the stack comes to it is how much of the cost is the
//! application's own.
//!
//! `ceiling collector`: an OTLP/HTTP receiver that reads each body and answers 200 without
//! decoding it, so exporting spans to it costs the services what export costs, and the
//! collector's own work stays out of the measurement.
//!
//! ```text
//! bookinfo-ceiling hop [--workers N] [--body-bytes N] [--call URL]...
//! bookinfo-ceiling collector [--workers N]
//! ```
//! Each listens on a free 127.0.0.1 port and prints `listening on http://ADDR`.

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes, Data, PayloadConfig};
use actix_web::{App, HttpResponse, HttpServer};
use futures_util::future::join_all;

/// Largest export body taken: well past a batch of 512 spans.
const MAX_EXPORT: usize = 64 * 1024 * 1024;

/// What a hop does per request.
struct Hop {
    /// Called at once, each with a keep-alive GET.
    calls: Vec<String>,
    /// The answer, of the size the real service writes.
    body: Bytes,
}

/// Runs the command of `args` (without the program's name) until stopped.
///
/// # Errors
/// Bad arguments, or a socket that cannot be opened.
pub fn run(args: &[String]) -> io::Result<()> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let (command, options) =
        args.split_first().ok_or_else(|| bad("usage: bookinfo-ceiling hop|collector".into()))?;
    let mut workers = 1;
    let mut body_bytes = 2;
    let mut calls = Vec::new();
    let mut options = options.iter();
    while let Some(option) = options.next() {
        let mut value = || options.next().cloned().ok_or_else(|| bad(format!("{option} needs a value")));
        match option.as_str() {
            "--workers" => workers = value()?.parse().map_err(|_| bad("--workers: a number".into()))?,
            "--body-bytes" => {
                body_bytes = value()?.parse().map_err(|_| bad("--body-bytes: a number".into()))?
            }
            "--call" => calls.push(value()?),
            other => return Err(bad(format!("unknown option {other}"))),
        }
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    println!("listening on http://{}", listener.local_addr()?);
    let system = actix_web::rt::System::new();
    match command.as_str() {
        "hop" => {
            let hop = Arc::new(Hop { calls, body: Bytes::from(vec![b'x'; body_bytes]) });
            system.block_on(async move {
                HttpServer::new(move || {
                    App::new()
                        .app_data(Data::from(hop.clone()))
                        .app_data(Data::new(awc::Client::default()))
                        .default_service(web::to(answer))
                })
                .workers(workers)
                .listen(listener)?
                .run()
                .await
            })
        }
        "collector" => system.block_on(async move {
            HttpServer::new(|| {
                App::new().app_data(PayloadConfig::new(MAX_EXPORT)).default_service(web::to(accept))
            })
            .workers(workers)
            .listen(listener)?
            .run()
            .await
        }),
        other => Err(bad(format!("unknown command {other}: hop or collector"))),
    }
}

/// Calls every upstream at once, reads their bodies, answers with this hop's body.
async fn answer(hop: Data<Hop>, client: Data<awc::Client>) -> HttpResponse {
    let calls = hop.calls.iter().map(|url| {
        let client = client.clone();
        async move {
            let mut response = client.get(url).send().await.ok()?;
            let body = response.body().await.ok()?;
            (response.status() == StatusCode::OK).then_some(body.len())
        }
    });
    if join_all(calls).await.iter().any(Option::is_none) {
        return HttpResponse::BadGateway().finish();
    }
    HttpResponse::Ok().content_type("text/plain").body(hop.body.clone())
}

/// Takes an export whole and answers as a collector does, without decoding it.
async fn accept(_body: Bytes) -> HttpResponse {
    HttpResponse::Ok().content_type("application/x-protobuf").finish()
}
