//! The receivers: OTLP/HTTP (`POST /v1/traces`, protobuf or JSON) and Zipkin v2
//! (`POST /api/v2/spans`, JSON), gzip or plain.
//!
//! What an exporter is told, as the OTLP specification has servers say it:
//! - 200 (Zipkin: 202): the spans are taken. Those past their trace's cap are counted, not
//!   kept, and values past the span limits ([`crate::limits`]) are cut; OTLP's
//!   `partial_success` says how many of either.
//! - 429 with `Retry-After`: nothing is taken, for now: the spans not yet written fill the
//!   store's memory, or bodies being received fill theirs. Exporters send the same spans again.
//! - 413: a body past the limit (gzip is inflated no further), or spans that need more than the
//!   store's whole memory; 400: a body that does not decode; 415: a type or encoding not taken
//!   here; 408: a body that takes longer than [`BODY_DEADLINE`] to arrive. None is retried.
//!
//! OTLP refusals carry a `google.rpc.Status`, as the specification asks. Everything is counted
//! ([`IntakeStats`]); only 429s, which are the store's own doing, are also reported on standard
//! error (by the sink), the others at debug level only, since a client can send any number.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{self, BytesMut, Data, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use futures_core::Stream;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use serde::Serialize;

use crate::limits::{self, Cut};
use crate::sink::Shared;
use crate::store::{Added, Refusal};
use crate::wire::{self, DecodeError, Format};

/// How long a body may take to arrive, whole: a connection that holds one open holds its
/// share of the memory for bodies no longer than this.
pub const BODY_DEADLINE: Duration = Duration::from_secs(10);
/// What a 429 asks the exporter to wait, in seconds: the store writes (and so makes room) ten
/// times a second.
const RETRY_AFTER: u64 = 1;

/// The receivers' routes.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/v1/traces", web::post().to(otlp)).route("/api/v2/spans", web::post().to(zipkin));
}

/// Memory for request bodies being received, shared by every connection.
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self { used: AtomicUsize::new(0), limit }
    }

    fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }
}

/// Bytes of a [`Budget`] held for one body, given back when it is dropped.
struct Reservation<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Reservation<'_> {
    /// Holds `total` bytes in all, if the budget has them.
    fn grow_to(&mut self, total: usize) -> bool {
        if total <= self.bytes {
            return true;
        }
        let granted = self.budget.reserve(total - self.bytes);
        if granted {
            self.bytes = total;
        }
        granted
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// The receivers' counts, since they started.
#[derive(Debug)]
pub struct Intake {
    bodies: Budget,
    exports: AtomicU64,
    throttled: AtomicU64,
    too_large: AtomicU64,
    bad: AtomicU64,
    timed_out: AtomicU64,
    values_cut: AtomicU64,
    attributes_dropped: AtomicU64,
}

/// What the receivers took and refused, as `/api/bookinfo/stats` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct IntakeStats {
    /// Exports taken (answered 200, or 202 for Zipkin).
    pub exports: u64,
    /// Exports answered 429: to be sent again.
    pub throttled: u64,
    /// Exports answered 413.
    pub too_large: u64,
    /// Exports answered 400 or 415.
    pub bad: u64,
    /// Exports answered 408.
    pub timed_out: u64,
    /// Strings (names, keys, values) cut to the span limits, in exports taken.
    pub values_cut: u64,
    /// Attributes dropped past the span limits, in exports taken.
    pub attributes_dropped: u64,
    /// Bytes of bodies being received now.
    pub receiving: usize,
    /// What they may take at most.
    pub receiving_limit: usize,
}

impl Intake {
    /// Counts from zero; bodies being received take at most `bodies` bytes together.
    pub fn new(bodies: usize) -> Self {
        Self {
            bodies: Budget::new(bodies),
            exports: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            too_large: AtomicU64::new(0),
            bad: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            values_cut: AtomicU64::new(0),
            attributes_dropped: AtomicU64::new(0),
        }
    }

    /// The counts now.
    pub fn stats(&self) -> IntakeStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        IntakeStats {
            exports: get(&self.exports),
            throttled: get(&self.throttled),
            too_large: get(&self.too_large),
            bad: get(&self.bad),
            timed_out: get(&self.timed_out),
            values_cut: get(&self.values_cut),
            attributes_dropped: get(&self.attributes_dropped),
            receiving: self.bodies.used.load(Ordering::Relaxed),
            receiving_limit: self.bodies.limit,
        }
    }

    fn count(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Why an export was refused.
#[derive(Debug, thiserror::Error)]
enum Refused {
    /// A content type or encoding not taken here.
    #[error("{0}")]
    Unsupported(String),
    /// A body that does not decode, or inflates too far.
    #[error(transparent)]
    Body(#[from] DecodeError),
    /// A body past the limit.
    #[error("the body is larger than {limit} bytes (--trace-body-limit)")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body could not be read to its end.
    #[error("the body was not received whole: {0}")]
    Incomplete(String),
    /// The body took too long.
    #[error("the body did not arrive within {BODY_DEADLINE:?}")]
    TimedOut,
    /// Bodies being received hold all the memory they may.
    #[error(
        "bodies being received hold all the {limit} bytes they may (a quarter of --trace-memory, or --trace-body-limit): send again shortly"
    )]
    Busy {
        /// Their budget.
        limit: usize,
    },
    /// The store cannot take the spans.
    #[error("{}", store_refusal(.0))]
    Store(Refusal),
}

fn store_refusal(refusal: &Refusal) -> String {
    match refusal {
        Refusal::Full { needed, room } => format!(
            "the trace store is full of spans not yet written ({room} bytes free of --trace-memory, {needed} needed): send again shortly"
        ),
        Refusal::TooLarge { limit } => format!(
            "these spans need more than the trace store's whole --trace-memory ({limit} bytes): send fewer at once"
        ),
    }
}

impl Refused {
    fn status(&self) -> StatusCode {
        match self {
            Refused::Unsupported(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refused::Body(DecodeError::TooLarge { .. })
            | Refused::TooLarge { .. }
            | Refused::Store(Refusal::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            Refused::Body(_) | Refused::Incomplete(_) => StatusCode::BAD_REQUEST,
            Refused::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Refused::Busy { .. } | Refused::Store(Refusal::Full { .. }) => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// The `google.rpc.Code` of the `Status` an OTLP refusal carries.
    fn rpc_code(&self) -> i32 {
        match self.status() {
            StatusCode::TOO_MANY_REQUESTS => 8, // RESOURCE_EXHAUSTED
            StatusCode::REQUEST_TIMEOUT => 4,   // DEADLINE_EXCEEDED
            _ => 3,                             // INVALID_ARGUMENT
        }
    }

    /// Counts it, and answers `status` with `body` of `content_type` (and a Retry-After on a 429).
    fn answer(&self, intake: &Intake, content_type: &str, body: Vec<u8>) -> HttpResponse {
        let status = self.status();
        let counter = match status {
            StatusCode::TOO_MANY_REQUESTS => &intake.throttled,
            StatusCode::PAYLOAD_TOO_LARGE => &intake.too_large,
            StatusCode::REQUEST_TIMEOUT => &intake.timed_out,
            _ => &intake.bad,
        };
        intake.count(counter, 1);
        // A client can send any number of these: debug level, not an error of ours.
        tracing::debug!(error = %self, "trace intake: export refused");
        let mut response = HttpResponse::build(status);
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.insert_header((header::RETRY_AFTER, RETRY_AFTER));
        }
        response.content_type(content_type).body(body)
    }
}

/// `google.rpc.Status`: what an OTLP refusal's body holds.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// What was taken of an export.
struct Taken {
    added: Added,
    cut: Cut,
}

impl Taken {
    /// What OTLP's `partial_success` says of it, if anything: the spans not kept, and why.
    fn partial_success(&self) -> Option<ExportTracePartialSuccess> {
        let mut said = Vec::new();
        if self.added.dropped > 0 {
            said.push(format!(
                "{} spans arrived past their trace's cap (--trace-spans, or half of --trace-memory) and were counted, not kept",
                self.added.dropped
            ));
        }
        if !self.cut.is_empty() {
            said.push(format!(
                "{} values cut and {} attributes dropped: a span keeps {} attributes and {} KiB of text at most",
                self.cut.values,
                self.cut.attributes,
                limits::ATTRIBUTES,
                limits::TEXT / 1024
            ));
        }
        (!said.is_empty()).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(self.added.dropped).unwrap_or(i64::MAX),
            error_message: said.join("; "),
        })
    }
}

async fn otlp(req: HttpRequest, payload: web::Payload, shared: Data<Shared>) -> HttpResponse {
    let json = content_type(req.headers()).starts_with("application/json");
    let format = if json { Format::OtlpJson } else { Format::OtlpProtobuf };
    match receive(&req, payload, format, &shared).await {
        Ok(taken) => {
            let answer = ExportTraceServiceResponse { partial_success: taken.partial_success() };
            if json {
                HttpResponse::Ok().content_type("application/json").body(response_json(&answer))
            } else {
                HttpResponse::Ok().content_type("application/x-protobuf").body(answer.encode_to_vec())
            }
        }
        Err(refused) => {
            let status = RpcStatus { code: refused.rpc_code(), message: refused.to_string() };
            if json {
                let body = serde_json::json!({"code": status.code, "message": status.message});
                refused.answer(&shared.intake, "application/json", body.to_string().into_bytes())
            } else {
                refused.answer(&shared.intake, "application/x-protobuf", status.encode_to_vec())
            }
        }
    }
}

/// An export's answer in OTLP JSON: `{}`, or its partial success.
fn response_json(answer: &ExportTraceServiceResponse) -> String {
    match &answer.partial_success {
        None => "{}".to_owned(),
        Some(partial) => serde_json::json!({"partialSuccess": {
            "rejectedSpans": partial.rejected_spans.to_string(),
            "errorMessage": partial.error_message,
        }})
        .to_string(),
    }
}

async fn zipkin(req: HttpRequest, payload: web::Payload, shared: Data<Shared>) -> HttpResponse {
    let kind = content_type(req.headers());
    let received = if kind.is_empty() || kind.starts_with("application/json") {
        receive(&req, payload, Format::ZipkinJson, &shared).await
    } else {
        Err(Refused::Unsupported("only Zipkin v2 JSON (application/json) is taken here".into()))
    };
    match received {
        // What a Zipkin server answers.
        Ok(_) => HttpResponse::Accepted().finish(),
        Err(refused) => {
            let text = format!("{refused}\n").into_bytes();
            refused.answer(&shared.intake, "text/plain; charset=utf-8", text)
        }
    }
}

fn content_type(headers: &HeaderMap) -> String {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase()
}

/// Receives, inflates, decodes and bounds one export, and offers it to the store.
async fn receive(
    req: &HttpRequest,
    payload: web::Payload,
    format: Format,
    shared: &Shared,
) -> Result<Taken, Refused> {
    let encoding = req.headers().get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let gzip = match encoding.trim().to_ascii_lowercase().as_str() {
        "identity" | "" => false,
        "gzip" | "x-gzip" => true,
        other => return Err(Refused::Unsupported(format!("content encoding {other:?} is not taken here"))),
    };
    // Held until the spans are in the store: decoding is one body at a time (one worker), so
    // what a body becomes on its way there is bounded by the body limit too.
    let (body, _reservation) = read_body(req, payload, shared).await?;
    let inflated;
    let body = if gzip {
        inflated = wire::gunzip(&body, shared.body_limit)?;
        &inflated[..]
    } else {
        &body[..]
    };
    let mut spans = wire::decode(format, body)?;
    let cut = limits::apply(&mut spans);
    let added = shared.store().offer(spans, Instant::now()).map_err(Refused::Store)?;
    let intake = &shared.intake;
    intake.count(&intake.exports, 1);
    intake.count(&intake.values_cut, cut.values);
    intake.count(&intake.attributes_dropped, cut.attributes);
    Ok(Taken { added, cut })
}

/// The body of `req`, within the body limit and the memory for bodies, and arrived within
/// [`BODY_DEADLINE`]; with the memory it holds. A declared length is held at once, so a body
/// that cannot be held is refused before it is read.
async fn read_body<'a>(
    req: &HttpRequest,
    mut payload: web::Payload,
    shared: &'a Shared,
) -> Result<(BytesMut, Reservation<'a>), Refused> {
    let limit = shared.body_limit;
    let busy = || Refused::Busy { limit: shared.intake.bodies.limit };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(Refused::TooLarge { limit });
    }
    let mut reservation = Reservation { budget: &shared.intake.bodies, bytes: 0 };
    if !reservation.grow_to(declared.unwrap_or(0)) {
        return Err(busy());
    }
    let mut body = BytesMut::new();
    let reading = async {
        while let Some(chunk) = std::future::poll_fn(|cx| Pin::new(&mut payload).poll_next(cx)).await {
            let chunk = chunk.map_err(|err| Refused::Incomplete(err.to_string()))?;
            let total = body.len() + chunk.len();
            if total > limit {
                return Err(Refused::TooLarge { limit });
            }
            if !reservation.grow_to(total) {
                return Err(busy());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(())
    };
    actix_web::rt::time::timeout(BODY_DEADLINE, reading).await.map_err(|_| Refused::TimedOut)??;
    Ok((body, reservation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_held_and_given_back() {
        let budget = Budget::new(100);
        let mut first = Reservation { budget: &budget, bytes: 0 };
        assert!(first.grow_to(60) && first.grow_to(60) && first.grow_to(70));
        let mut second = Reservation { budget: &budget, bytes: 0 };
        assert!(!second.grow_to(31), "70 + 31 > 100");
        assert!(second.grow_to(30));
        drop(first);
        assert_eq!(budget.used.load(Ordering::Relaxed), 30);
        drop(second);
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn partial_success_says_what_was_not_kept_and_what_was_cut() {
        let nothing = Taken { added: Added { kept: 3, ..Added::default() }, cut: Cut::default() };
        assert!(nothing.partial_success().is_none());
        let capped = Taken { added: Added { kept: 1, duplicates: 0, dropped: 4 }, cut: Cut::default() };
        let partial = capped.partial_success().unwrap();
        assert_eq!(partial.rejected_spans, 4);
        assert!(partial.error_message.starts_with("4 spans arrived past their trace's cap"), "{partial:?}");
        let cut =
            Taken { added: Added { kept: 1, ..Added::default() }, cut: Cut { values: 2, attributes: 1 } };
        let warning = cut.partial_success().unwrap();
        assert_eq!(warning.rejected_spans, 0, "a warning: every span was kept");
        assert!(warning.error_message.contains("2 values cut and 1 attributes dropped"), "{warning:?}");
        let json = response_json(&ExportTraceServiceResponse { partial_success: Some(warning) });
        assert!(json.starts_with(r#"{"partialSuccess":{"rejectedSpans":"0","#), "{json}");
    }

    #[test]
    fn refusals_map_to_the_codes_exporters_act_on() {
        let full = Refused::Store(Refusal::Full { needed: 10, room: 5 });
        assert_eq!((full.status(), full.rpc_code()), (StatusCode::TOO_MANY_REQUESTS, 8));
        assert!(full.to_string().contains("--trace-memory"), "{full}");
        let busy = Refused::Busy { limit: 4 };
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(busy.to_string().contains("--trace-memory"), "{busy}");
        let huge = Refused::Store(Refusal::TooLarge { limit: 5 });
        assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(Refused::TimedOut.status(), StatusCode::REQUEST_TIMEOUT);
        let intake = Intake::new(1);
        let answer = full.answer(&intake, "application/x-protobuf", Vec::new());
        assert_eq!(answer.headers().get(header::RETRY_AFTER).unwrap(), "1");
        assert_eq!(intake.stats().throttled, 1);
    }
}
