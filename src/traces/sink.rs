//! The trace sink of the local stack: an OTLP/HTTP receiver (protobuf and JSON) on 127.0.0.1
//! that gathers the services' spans by trace and, once a trace has been quiet for a moment,
//! prints it as a tree and appends it to a file, one OTLP JSON document per line.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::web::{self, Bytes, Data};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use super::model::{Span, Trace};
use super::{otlp, render};

/// The port OTLP/HTTP collectors listen on.
pub const OTLP_HTTP_PORT: u16 = 4318;
/// A trace is printed once no span of it has arrived for this long.
pub const QUIET: Duration = Duration::from_millis(1500);
/// Spans held at most while their traces are open; past it the oldest traces are closed early.
const MAX_OPEN_SPANS: usize = 100_000;

/// A running sink.
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The file traces are appended to.
    pub file: PathBuf,
    traces: Arc<Mutex<Open>>,
    print: bool,
    server: ServerHandle,
}

/// Traces still receiving spans.
#[derive(Default)]
struct Open {
    traces: HashMap<String, (Vec<Span>, Instant)>,
    spans: usize,
}

impl Open {
    fn add(&mut self, spans: Vec<Span>) {
        let now = Instant::now();
        self.spans += spans.len();
        for span in spans {
            let entry = self.traces.entry(span.trace_id.clone()).or_insert_with(|| (Vec::new(), now));
            entry.0.push(span);
            entry.1 = now;
        }
    }

    /// The traces quiet since `quiet` (all of them for `None`), and the oldest ones while too
    /// many spans are held.
    fn take_finished(&mut self, quiet: Option<Duration>) -> Vec<Trace> {
        let now = Instant::now();
        let mut done: Vec<String> = self
            .traces
            .iter()
            .filter(|(_, (_, last))| quiet.is_none_or(|q| now.duration_since(*last) >= q))
            .map(|(id, _)| id.clone())
            .collect();
        if self.spans > MAX_OPEN_SPANS {
            let mut by_age: Vec<(&String, &Instant)> =
                self.traces.iter().map(|(id, (_, last))| (id, last)).collect();
            by_age.sort_by_key(|(_, last)| **last);
            done.extend(by_age.iter().take(by_age.len() / 2).map(|(id, _)| (*id).clone()));
        }
        let mut finished = Vec::new();
        for id in done {
            if let Some((spans, _)) = self.traces.remove(&id) {
                self.spans -= spans.len();
                finished.extend(Trace::group(spans));
            }
        }
        finished.sort_by_key(Trace::start);
        finished
    }
}

impl Sink {
    /// Listens on 127.0.0.1:4318, or the next free port up to 4338; prints finished traces when
    /// `print`, and appends them to `file` either way.
    ///
    /// # Errors
    /// No free port, or the server cannot start.
    pub fn start(print: bool, file: PathBuf) -> io::Result<Self> {
        let listener = (OTLP_HTTP_PORT..OTLP_HTTP_PORT + 20)
            .find_map(|port| TcpListener::bind((Ipv4Addr::LOCALHOST, port)).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::AddrInUse, "ports 4318 to 4337 are all in use"))?;
        let addr = listener.local_addr()?;
        let traces: Arc<Mutex<Open>> = Arc::default();
        let shared = Data::from(traces.clone());
        let server = HttpServer::new(move || {
            App::new().app_data(shared.clone()).route("/v1/traces", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let sink = Self { addr, file, traces, print, server: handle };
        let ticker = sink.clone_for_ticker();
        actix_web::rt::spawn(async move {
            let mut every = actix_web::rt::time::interval(Duration::from_millis(250));
            loop {
                every.tick().await;
                ticker.flush(Some(QUIET));
            }
        });
        Ok(sink)
    }

    fn clone_for_ticker(&self) -> Ticker {
        Ticker { traces: self.traces.clone(), file: self.file.clone(), print: self.print }
    }

    /// Prints and writes every trace still open, then stops receiving.
    pub async fn close(self) {
        self.clone_for_ticker().flush(None);
        self.server.stop(true).await;
    }
}

/// What the periodic flush needs.
struct Ticker {
    traces: Arc<Mutex<Open>>,
    file: PathBuf,
    print: bool,
}

impl Ticker {
    fn flush(&self, quiet: Option<Duration>) {
        let finished = self.traces.lock().unwrap_or_else(PoisonError::into_inner).take_finished(quiet);
        for trace in finished.iter().filter(|t| !health_check_only(t)) {
            if self.print {
                println!("\n{}", render::tree(trace));
            }
            if let Err(err) = append(&self.file, trace) {
                eprintln!("bookinfo: cannot append to {}: {err}", self.file.display());
            }
        }
    }
}

/// The stack's own `/health` polls are traces too; they are not worth showing.
fn health_check_only(trace: &Trace) -> bool {
    trace.spans.iter().all(|s| s.attributes.get("http.route").is_some_and(|r| r == "/health"))
}

fn append(file: &Path, trace: &Trace) -> io::Result<()> {
    let mut line = otlp::to_json(&trace.spans).to_string();
    line.push('\n');
    OpenOptions::new().create(true).append(true).open(file)?.write_all(line.as_bytes())
}

/// `POST /v1/traces`: an export request, protobuf or JSON.
async fn receive(req: HttpRequest, body: Bytes, traces: Data<Mutex<Open>>) -> HttpResponse {
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let spans = if json {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(document) => otlp::from_json(&document),
            Err(err) => return HttpResponse::BadRequest().body(format!("not JSON: {err}")),
        }
    } else {
        match ExportTraceServiceRequest::decode(body) {
            Ok(request) => otlp::from_proto(request),
            Err(err) => return HttpResponse::BadRequest().body(format!("not an OTLP export request: {err}")),
        }
    };
    traces.lock().unwrap_or_else(PoisonError::into_inner).add(spans);
    if json {
        HttpResponse::Ok().content_type("application/json").body("{}")
    } else {
        HttpResponse::Ok()
            .content_type("application/x-protobuf")
            .body(ExportTraceServiceResponse::default().encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traces::model::Kind;
    use crate::traces::model::tests::span;

    #[test]
    fn traces_close_when_quiet_and_all_at_the_end() {
        let mut open = Open::default();
        let mut a = span("a", Kind::Server, "GET /", "1", None, 0, 1);
        a.trace_id = "a".repeat(32);
        open.add(vec![a]);
        assert!(open.take_finished(Some(Duration::from_secs(60))).is_empty());
        assert_eq!(open.take_finished(Some(Duration::ZERO)).len(), 1);
        open.add(vec![span("b", Kind::Server, "GET /", "2", None, 0, 1)]);
        assert_eq!(open.take_finished(None).len(), 1);
        assert_eq!(open.spans, 0);
    }

    #[test]
    fn health_polls_are_left_out() {
        let mut health = span("a", Kind::Server, "GET /health", "1", None, 0, 1);
        health.attributes.insert("http.route".into(), "/health".into());
        assert!(health_check_only(&Trace::group(vec![health.clone()])[0]));
        let page = span("a", Kind::Server, "GET /productpage", "2", None, 0, 1);
        assert!(!health_check_only(&Trace::group(vec![health, page])[0]));
    }
}
