//! OTLP/HTTP export with protobuf bodies, written straight from the SDK's span data
//! ([`encode`]).
//!
//! `opentelemetry-otlp` turns each batch into `opentelemetry-proto`'s generated types (every
//! id, name, key and value copied into a fresh `Vec` or `String`, spans grouped through a hash
//! map) and then has prost encode those: about 12 000 instructions per span here, more than
//! making the span. The export runs on the SDK's batch thread, off the request path, but on the
//! same cores as the requests. This exporter writes the same protobuf message from the spans as
//! they are, sizes first and then bytes, with no copy in between (about a tenth of the work),
//! and sends it with the same blocking HTTP client (reqwest).
//!
//! gRPC export stays with `opentelemetry-otlp`.

pub(crate) mod encode;

use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

pub use self::encode::EncodeError;
use self::encode::encode;

/// Retries of a batch the collector could not take for now (as `opentelemetry-otlp` does).
const RETRIES: u32 = 3;
/// The first pause before a retry; each next one is twice as long.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Most of a collector's answer read (to keep the connection); the rest closes it.
const MAX_ANSWER: u64 = 64 * 1024;

/// Why an exporter cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// An `OTEL_EXPORTER_OTLP_HEADERS` name that is not a header name.
    #[error("{0:?} is not a header name")]
    HeaderName(String),
    /// An `OTEL_EXPORTER_OTLP_HEADERS` value that is not a header value (not shown: it may be a
    /// secret).
    #[error("the value of header {0} is not valid")]
    HeaderValue(String),
    /// The HTTP client cannot be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The thread that builds it failed.
    #[error("the HTTP client's thread failed")]
    Thread,
    /// The gRPC exporter's runtime cannot start.
    #[error("cannot start the gRPC exporter's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// `opentelemetry-otlp` refuses its settings.
    #[error("OTLP exporter for {endpoint}: {source}")]
    Otlp {
        /// The endpoint.
        endpoint: String,
        /// Its refusal.
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// Sends batches of spans to an OTLP/HTTP endpoint (`.../v1/traces`) as protobuf.
#[derive(Debug)]
pub struct HttpExporter {
    client: reqwest::blocking::Client,
    endpoint: String,
    timeout: Duration,
    gzip: bool,
    /// The encoded `Resource` message, and the resource's schema URL.
    resource: (Vec<u8>, String),
}

impl HttpExporter {
    /// An exporter to `endpoint` (used as given), each export taking at most `timeout`,
    /// sending `headers` with each and, with `gzip`, compressed bodies.
    ///
    /// # Errors
    /// When a header is invalid or the HTTP client cannot be built.
    pub fn new(
        endpoint: &str,
        timeout: Duration,
        headers: &[(String, String)],
        gzip: bool,
    ) -> Result<Self, SetupError> {
        let mut default_headers = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            let name = reqwest::header::HeaderName::try_from(name.as_str())
                .map_err(|_| SetupError::HeaderName(name.clone()))?;
            let mut value = reqwest::header::HeaderValue::try_from(value.as_str())
                .map_err(|_| SetupError::HeaderValue(name.to_string()))?;
            value.set_sensitive(true);
            default_headers.append(name, value);
        }
        // The blocking client runs a runtime of its own, which may not be started from inside
        // the server's async context: it is built on a thread of its own.
        let build = move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout)
                .user_agent(concat!("bookinfo/", env!("CARGO_PKG_VERSION")))
                .default_headers(default_headers)
                .build()
        };
        let client =
            std::thread::spawn(build).join().map_err(|_| SetupError::Thread)?.map_err(SetupError::Client)?;
        Ok(Self {
            client,
            endpoint: endpoint.to_owned(),
            timeout,
            gzip,
            resource: (Vec::new(), String::new()),
        })
    }

    fn send(&self, body: Vec<u8>) -> OTelSdkResult {
        let body = if self.gzip { gzip(&body)? } else { body };
        // Shared by the attempts, not copied.
        let body = bytes::Bytes::from(body);
        let deadline = std::time::Instant::now() + self.timeout;
        let mut pause = FIRST_PAUSE;
        let mut attempt = 0;
        loop {
            // Every attempt gets what is left of the export's time, not a timeout of its own.
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut request = self
                .client
                .post(&self.endpoint)
                .timeout(left)
                .header("content-type", "application/x-protobuf");
            if self.gzip {
                request = request.header("content-encoding", "gzip");
            }
            let (again, wait, failure) = match request.body(body.clone()).send() {
                Ok(mut response) => {
                    let status = response.status();
                    let wait = retry_after(response.headers());
                    // Read (a bounded answer) to the end, so the connection serves the next batch.
                    let _ = std::io::copy(
                        &mut std::io::Read::take(&mut response, MAX_ANSWER),
                        &mut std::io::sink(),
                    );
                    if status.is_success() {
                        return Ok(());
                    }
                    // The answer's body is left out: a collector may echo the request's headers.
                    let again = matches!(status.as_u16(), 429 | 502 | 503 | 504);
                    (again, wait, format!("the collector answered {status}"))
                }
                Err(err) => (err.is_connect() || err.is_timeout(), None, format!("export failed: {err}")),
            };
            attempt += 1;
            // The collector's Retry-After, when it gives one, else a doubling pause.
            let pause_now = wait.map_or(pause, |wait| wait.max(pause));
            if !again || attempt > RETRIES || std::time::Instant::now() + pause_now >= deadline {
                return Err(OTelSdkError::InternalFailure(failure));
            }
            std::thread::sleep(pause_now);
            pause *= 2;
        }
    }
}

/// A `Retry-After` in seconds (the form collectors send; an HTTP date is not read).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// `body` gzip-compressed, at the fastest level: spans repeat names and keys, so even that
/// takes most of the size off.
fn gzip(body: &[u8]) -> Result<Vec<u8>, OTelSdkError> {
    use std::io::Write as _;
    let mut encoder =
        flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map_err(|err| OTelSdkError::InternalFailure(format!("cannot compress the batch: {err}")))
}

impl SpanExporter for HttpExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let body =
            encode(&self.resource, &batch).map_err(|err| OTelSdkError::InternalFailure(err.to_string()))?;
        self.send(body)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.resource = encode::resource(resource);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use crate::otlp::encode::tests::spans;

    /// What the collector saw of each request: its head (lower-cased) and its body.
    type Requests = Vec<(String, Vec<u8>)>;

    /// A collector on 127.0.0.1 that gives each connection the next of `answers` (status line
    /// and headers) and keeps each request's head and body.
    pub(crate) fn collector(answers: &[&'static str]) -> (String, std::thread::JoinHandle<Requests>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let answers = answers.to_vec();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for answer in answers {
                let (mut stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                while reader.read_line(&mut head).unwrap() > 2 && !head.ends_with("\r\n\r\n") {}
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|n| n.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let reply =
                    format!("{answer}\r\ncontent-length: 15\r\nconnection: close\r\n\r\ntoken=s3cret..!");
                stream.write_all(reply.as_bytes()).unwrap();
                seen.push((head.to_ascii_lowercase(), body));
            }
            seen
        });
        (url, thread)
    }

    #[test]
    fn a_busy_collector_is_tried_again_with_the_same_headers_and_gzip_body() {
        let (url, collector) =
            collector(&["HTTP/1.1 503 Service Unavailable\r\nretry-after: 0", "HTTP/1.1 200 OK"]);
        let headers = [("authorization".to_owned(), "Bearer t".to_owned())];
        let exporter = HttpExporter::new(&url, Duration::from_secs(5), &headers, true).unwrap();
        let body = encode(&(Vec::new(), String::new()), &spans()).unwrap();
        assert!(exporter.send(body.clone()).is_ok());
        let seen = collector.join().unwrap();
        assert_eq!(seen.len(), 2, "one retry");
        for (head, sent) in seen {
            assert!(head.starts_with("post /v1/traces "), "{head}");
            for line in
                ["content-type: application/x-protobuf", "content-encoding: gzip", "authorization: bearer t"]
            {
                assert!(head.contains(line), "{line} in {head}");
            }
            let mut inflated = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(sent.as_slice()), &mut inflated)
                .unwrap();
            assert_eq!(inflated, body);
        }
    }

    #[test]
    fn a_refused_batch_is_not_tried_again_and_the_answer_stays_out_of_the_error() {
        let (url, collector) = collector(&["HTTP/1.1 400 Bad Request"]);
        let exporter = HttpExporter::new(&url, Duration::from_secs(5), &[], false).unwrap();
        let err = exporter.send(b"x".to_vec()).unwrap_err().to_string();
        assert_eq!(collector.join().unwrap().len(), 1);
        assert!(err.contains("400") && !err.contains("s3cret"), "{err}");
    }
}
