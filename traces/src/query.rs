//! Reading the store over HTTP: Jaeger's query API v3 (so `bookinfo traces --jaeger` and other
//! Jaeger clients read the local stack as they read a cluster's Jaeger), the viewer's own API
//! (summaries, trees and comparisons computed by the same code as the terminal's), Jaeger's
//! `/api/dependencies` (the service graph), and the viewer itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::web::{self, Data, Path, Query, ServiceConfig};
use actix_web::{HttpResponse, Responder, ResponseError};
use bookinfo_config::{InvalidDuration, parse_duration};
use serde::Serialize;
use serde_json::json;

use crate::compare::{self, Summary};
use crate::dependencies;
use crate::model::{Attribute, Kind, Span, TraceId, workload};
use crate::sink::Shared;
use crate::time::parse_rfc3339;
use crate::trace::{Detached, Trace};
use crate::viewer;
use crate::wire::otlp;

/// Traces answered by a search when the client does not say.
const DEFAULT_TRACES: usize = 20;
/// Traces answered by a search at most.
const MAX_TRACES: usize = 1000;
/// Rows of one trace sent to the viewer at most (the rest are counted).
const MAX_ROWS: usize = 5000;
/// Depth of the rows sent to the viewer at most.
const MAX_DEPTH: usize = 200;

/// The query API's and the viewer's routes.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.route("/api/v3/services", web::get().to(services))
        .route("/api/v3/operations", web::get().to(operations))
        .route("/api/v3/traces", web::get().to(find_traces))
        .route("/api/v3/traces/{id}", web::get().to(get_trace))
        .route("/api/dependencies", web::get().to(dependencies))
        .route("/api/bookinfo/traces", web::get().to(list))
        .route("/api/bookinfo/traces/{reference}", web::get().to(view))
        .route("/api/bookinfo/compare", web::get().to(compare_view))
        .route("/api/bookinfo/stats", web::get().to(stats))
        .configure(viewer::routes);
}

/// A query that cannot be answered, in Jaeger's error shape.
#[derive(Debug, thiserror::Error)]
enum QueryError {
    /// A search parameter is malformed.
    #[error(transparent)]
    Parameter(#[from] BadParameter),
    /// A trace id that is not 32 hex digits.
    #[error("malformed parameter trace_id: {0:?}")]
    TraceId(String),
    /// A trace named neither by its id nor as `latest:SERVICE`.
    #[error("{0:?} is neither a trace id nor latest:SERVICE")]
    Reference(String),
    /// A comparison without its two traces.
    #[error("compare needs a= and b= (trace ids or latest:SERVICE)")]
    CompareNeedsTwo,
    /// No trace has the id asked for.
    #[error("trace not found")]
    TraceNotFound,
    /// No trace matches the reference given.
    #[error("no trace matches {0}")]
    NoMatch(String),
}

/// A search parameter that cannot be read.
#[derive(Debug, thiserror::Error)]
enum BadParameter {
    /// Not an RFC 3339 time.
    #[error("malformed parameter {name}: {text:?} is not RFC 3339")]
    Time {
        /// The parameter.
        name: &'static str,
        /// Its value.
        text: String,
    },
    /// Not a duration.
    #[error("malformed parameter {name}: {source}")]
    Duration {
        /// The parameter.
        name: &'static str,
        /// Why.
        source: InvalidDuration,
    },
    /// Not a number of traces.
    #[error("malformed parameter query.num_traces: {0:?}")]
    Count(String),
}

impl ResponseError for QueryError {
    fn status_code(&self) -> StatusCode {
        match self {
            QueryError::Parameter(_)
            | QueryError::TraceId(_)
            | QueryError::Reference(_)
            | QueryError::CompareNeedsTwo => StatusCode::BAD_REQUEST,
            QueryError::TraceNotFound | QueryError::NoMatch(_) => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        HttpResponse::build(status)
            .json(json!({"error": {"httpCode": status.as_u16(), "message": self.to_string()}}))
    }
}

async fn services(shared: Data<Shared>) -> impl Responder {
    let services = shared.store().services();
    HttpResponse::Ok().json(json!({ "services": services }))
}

async fn operations(shared: Data<Shared>, query: Query<HashMap<String, String>>) -> impl Responder {
    let service = query.get("service").cloned().unwrap_or_default();
    let kind = query.get("span_kind").filter(|k| !k.is_empty()).map(|k| Kind::from_name(k));
    let store = shared.store();
    let traces = store.find(usize::MAX, |t| t.has_service(&service));
    let operations: BTreeSet<(String, &'static str)> = traces
        .iter()
        .flat_map(|t| t.spans.iter())
        .filter(|s| s.service() == service && kind.is_none_or(|k| s.kind == k))
        .map(|s| (s.name.to_string(), s.kind.as_str()))
        .collect();
    let operations: Vec<_> = operations
        .into_iter()
        .map(|(name, kind)| json!({"name": name, "spanKind": kind.to_ascii_lowercase()}))
        .collect();
    HttpResponse::Ok().json(json!({ "operations": operations }))
}

/// What a Jaeger search asks for.
struct Search {
    service: Option<String>,
    operation: Option<String>,
    since: u64,
    until: u64,
    min: Option<Duration>,
    max: Option<Duration>,
    limit: usize,
}

impl Search {
    fn parse(query: &HashMap<String, String>) -> Result<Self, BadParameter> {
        let get = |name: &str| query.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
        let time = |name: &'static str| -> Result<Option<u64>, BadParameter> {
            get(name)
                .map(|text| {
                    let time = parse_rfc3339(text)
                        .ok_or_else(|| BadParameter::Time { name, text: text.to_owned() })?;
                    Ok(time
                        .duration_since(UNIX_EPOCH)
                        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                        .unwrap_or(0))
                })
                .transpose()
        };
        let duration = |name: &'static str| -> Result<Option<Duration>, BadParameter> {
            get(name)
                .map(|text| {
                    // Jaeger takes Go durations (`300ms`, `2h45m`): the project's one grammar.
                    parse_duration(text).map_err(|source| BadParameter::Duration { name, source })
                })
                .transpose()
        };
        let limit = match get("query.num_traces").or_else(|| get("query.search_depth")) {
            Some(text) => text.parse::<usize>().map_err(|_| BadParameter::Count(text.to_owned()))?,
            None => DEFAULT_TRACES,
        };
        Ok(Self {
            service: get("query.service_name").map(str::to_owned),
            operation: get("query.operation_name").map(str::to_owned),
            since: time("query.start_time_min")?.unwrap_or(0),
            until: time("query.start_time_max")?.unwrap_or(u64::MAX),
            min: duration("query.duration_min")?,
            max: duration("query.duration_max")?,
            limit: limit.clamp(1, MAX_TRACES),
        })
    }

    fn matches(&self, trace: &Trace) -> bool {
        let start = trace.start();
        let spans_match = |s: &Arc<Span>| {
            self.service.as_deref().is_none_or(|x| s.service() == x)
                && self.operation.as_deref().is_none_or(|x| &*s.name == x)
                && self.min.is_none_or(|m| u128::from(s.duration()) >= m.as_nanos())
                && self.max.is_none_or(|m| u128::from(s.duration()) <= m.as_nanos())
        };
        (self.since..=self.until).contains(&start) && trace.spans.iter().any(spans_match)
    }
}

/// `{"result": <OTLP JSON of spans>}`, what Jaeger's API answers, written without a JSON
/// tree in between.
fn result<'a, S: AsRef<Span> + 'a>(spans: impl IntoIterator<Item = &'a S>) -> HttpResponse {
    #[derive(Serialize)]
    struct Wrapped<'a> {
        result: otlp::Export<'a>,
    }
    let body = serde_json::to_vec(&Wrapped { result: otlp::Export::of(spans) }).unwrap_or_default();
    HttpResponse::Ok().content_type("application/json").body(body)
}

async fn find_traces(
    shared: Data<Shared>,
    query: Query<HashMap<String, String>>,
) -> Result<HttpResponse, QueryError> {
    let search = Search::parse(&query)?;
    let store = shared.store();
    let traces = store.find(search.limit, |t| search.matches(t));
    Ok(result(traces.iter().flat_map(|t| t.spans.iter())))
}

async fn get_trace(shared: Data<Shared>, id: Path<String>) -> Result<HttpResponse, QueryError> {
    let id = TraceId::from_hex(id.trim()).ok_or_else(|| QueryError::TraceId(id.as_str().to_owned()))?;
    let store = shared.store();
    let trace = store.get(&id).ok_or(QueryError::TraceNotFound)?;
    Ok(result(&trace.spans))
}

/// How far back `/api/dependencies` looks when not told: Jaeger's default.
const DEFAULT_LOOKBACK_MS: u64 = 24 * 3600 * 1000;

/// A `/api/dependencies` parameter that is not a whole number of milliseconds.
#[derive(Debug, thiserror::Error)]
#[error("malformed parameter {name}: {text:?} is not a whole number of milliseconds")]
struct BadMillis {
    name: &'static str,
    text: String,
}

/// Jaeger's query API v1 answers this endpoint, errors included, in its `structuredResponse`
/// (`data`, `errors`), not in API v3's shape: its clients read that.
impl ResponseError for BadMillis {
    fn status_code(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::BadRequest().json(json!({"data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{"code": 400, "msg": self.to_string()}]}))
    }
}

/// The window `endTs` and `lookback` (milliseconds) name, in nanoseconds since the epoch:
/// `endTs` defaults to now and `lookback` to a day, as Jaeger's.
fn window(query: &HashMap<String, String>, now_ms: u64) -> Result<(u64, u64), BadMillis> {
    let millis = |name: &'static str, default: u64| match query
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        Some(text) => text.parse::<u64>().map_err(|_| BadMillis { name, text: text.to_owned() }),
        None => Ok(default),
    };
    let end = millis("endTs", now_ms)?;
    let lookback = millis("lookback", DEFAULT_LOOKBACK_MS)?;
    let nanos = |ms: u64| ms.saturating_mul(1_000_000);
    Ok((nanos(end.saturating_sub(lookback)), nanos(end).saturating_add(999_999)))
}

async fn dependencies(
    shared: Data<Shared>,
    query: Query<HashMap<String, String>>,
) -> Result<HttpResponse, BadMillis> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default();
    let (since, until) = window(&query, u64::try_from(now_ms).unwrap_or(u64::MAX))?;
    let links = {
        let store = shared.store();
        dependencies::links(store.find(usize::MAX, |_| true), since, until)
    };
    Ok(HttpResponse::Ok().json(json!({"data": links, "total": 0, "limit": 0, "offset": 0, "errors": null})))
}

async fn list(shared: Data<Shared>, query: Query<HashMap<String, String>>) -> HttpResponse {
    let service = query.get("service").filter(|s| !s.is_empty()).cloned();
    let limit = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50).clamp(1, MAX_TRACES);
    let wanted = |t: &Trace| service.as_deref().is_none_or(|s| t.has_service(s)) && !t.is_health_check();
    let (summaries, services, stats) = {
        let mut store = shared.store();
        (store.summaries(limit, wanted), store.services(), store.stats())
    };
    let summaries: Vec<&Summary> = summaries.iter().map(|s| &**s).collect();
    HttpResponse::Ok().json(json!({"traces": summaries, "services": services, "stats": stats}))
}

/// A trace named in a URL: its id, or `latest:SERVICE`.
fn resolve(shared: &Shared, reference: &str) -> Result<Trace, QueryError> {
    let found = match reference.strip_prefix("latest:") {
        Some(service) => shared.store().find(1, |t| t.has_service(service)).pop().cloned(),
        None => {
            let id = TraceId::from_hex(reference.trim())
                .ok_or_else(|| QueryError::Reference(reference.to_owned()))?;
            shared.store().get(&id).cloned()
        }
    };
    found.ok_or_else(|| QueryError::NoMatch(reference.to_owned()))
}

/// One span as the viewer draws it (borrowed: a view of thousands of rows is written straight
/// out, with no copy of the trace).
#[derive(Serialize)]
struct RowView<'a> {
    index: usize,
    depth: usize,
    detached: Option<String>,
    span_id: String,
    parent_id: Option<String>,
    service: &'a str,
    workload: &'a str,
    kind: &'static str,
    name: &'a str,
    sidecar: bool,
    error: bool,
    /// From the trace's start.
    offset_ns: u64,
    duration_ns: u64,
    attributes: Pairs<'a>,
    resource: Pairs<'a>,
}

/// Attributes as `[key, value]` pairs of text.
struct Pairs<'a>(&'a [Attribute]);

impl Serialize for Pairs<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for attribute in self.0 {
            seq.serialize_element(&(&*attribute.key, attribute.value.to_string()))?;
        }
        seq.end()
    }
}

/// A trace as the viewer draws it: its summary and its rows.
#[derive(Serialize)]
struct TraceView<'a> {
    summary: Summary,
    rows: Vec<RowView<'a>>,
    /// Spans not sent (past the rows or the depth sent at most).
    hidden: usize,
}

impl<'a> TraceView<'a> {
    fn of(trace: &'a Trace) -> Self {
        let tree = trace.tree();
        let start = trace.start();
        let (rows, hidden) = tree.visible(MAX_ROWS, MAX_DEPTH);
        let rows = rows
            .iter()
            .map(|row| {
                let span = &trace.spans[row.span];
                RowView {
                    index: row.span,
                    depth: row.depth,
                    detached: row.detached.map(|d| match d {
                        Detached::ParentMissing(parent) => format!("parent {parent} missing"),
                        Detached::Cycle => "cycle".to_owned(),
                    }),
                    span_id: span.span_id.to_string(),
                    parent_id: span.parent.map(|p| p.to_string()),
                    service: span.service(),
                    workload: workload(span.service()),
                    kind: span.kind.as_str(),
                    name: &span.name,
                    sidecar: span.is_sidecar(),
                    error: span.error,
                    offset_ns: span.start.saturating_sub(start),
                    duration_ns: span.duration(),
                    attributes: Pairs(&span.attributes),
                    resource: Pairs(&span.resource.attributes),
                }
            })
            .collect();
        Self { summary: Summary::of_tree(&tree), rows, hidden }
    }
}

/// `value` as a JSON answer, written straight to bytes.
fn json_body(value: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(serde_json::to_vec(value).unwrap_or_default())
}

async fn view(shared: Data<Shared>, reference: Path<String>) -> Result<HttpResponse, QueryError> {
    let trace = resolve(&shared, &reference)?;
    Ok(json_body(&TraceView::of(&trace)))
}

async fn compare_view(
    shared: Data<Shared>,
    query: Query<HashMap<String, String>>,
) -> Result<HttpResponse, QueryError> {
    #[derive(Serialize)]
    struct Compared<'a> {
        a: TraceView<'a>,
        b: TraceView<'a>,
        hops: serde_json::Value,
    }
    let (Some(a), Some(b)) = (query.get("a"), query.get("b")) else {
        return Err(QueryError::CompareNeedsTwo);
    };
    let (a, b) = (resolve(&shared, a)?, resolve(&shared, b)?);
    let hops = compare::json(&a, &b)["hops"].take();
    Ok(json_body(&Compared { a: TraceView::of(&a), b: TraceView::of(&b), hops }))
}

async fn stats(shared: Data<Shared>) -> HttpResponse {
    let stats = shared.store().stats();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let mut body: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
    body.insert("store", json!(stats));
    body.insert("intake", json!(shared.intake.stats()));
    body.insert("writer", json!(shared.writer.as_ref().map(|w| w.get())));
    body.insert("file", json!(shared.file.as_ref().map(|f| f.display().to_string())));
    body.insert("now", json!(now));
    HttpResponse::Ok().json(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_jaeger_writes_them() {
        let min =
            |text: &str| Search::parse(&HashMap::from([("query.duration_min".to_owned(), text.to_owned())]));
        assert_eq!(min("300ms").unwrap().min, Some(Duration::from_millis(300)));
        assert_eq!(min("2h45m").unwrap().min, Some(Duration::from_secs(2 * 3600 + 45 * 60)));
        assert_eq!(min("10µs").unwrap().min, Some(Duration::from_micros(10)));
        for bad in ["1y", "ms", "1e400s", "-1s"] {
            let err = min(bad).err().unwrap().to_string();
            assert!(err.starts_with("malformed parameter query.duration_min: "), "{err}");
        }
    }

    #[test]
    fn dependency_windows_default_as_jaegers_and_refuse_what_is_not_milliseconds() {
        let query = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<HashMap<_, _>>()
        };
        let day = 24 * 3600 * 1000;
        assert_eq!(window(&query(&[]), 2 * day).unwrap(), (day * 1_000_000, 2 * day * 1_000_000 + 999_999));
        assert_eq!(
            window(&query(&[("endTs", "5000"), ("lookback", "1000")]), 0).unwrap(),
            (4_000_000_000, 5_000_999_999)
        );
        let err = window(&query(&[("endTs", "yesterday")]), 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"malformed parameter endTs: "yesterday" is not a whole number of milliseconds"#
        );
        assert!(window(&query(&[("lookback", "-1")]), 0).is_err());
    }

    #[test]
    fn searches_are_parsed_with_clear_errors() {
        let query = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<HashMap<_, _>>()
        };
        let search =
            Search::parse(&query(&[("query.service_name", "details"), ("query.num_traces", "5")])).unwrap();
        assert_eq!((search.service.as_deref(), search.limit), (Some("details"), 5));
        let err = Search::parse(&query(&[("query.start_time_min", "yesterday")])).err().unwrap();
        assert!(matches!(err, BadParameter::Time { name: "query.start_time_min", .. }), "{err}");
        assert_eq!(
            err.to_string(),
            r#"malformed parameter query.start_time_min: "yesterday" is not RFC 3339"#
        );
        let err = Search::parse(&query(&[("query.num_traces", "many")])).err().unwrap();
        assert_eq!(err.to_string(), r#"malformed parameter query.num_traces: "many""#);
        assert!(Search::parse(&query(&[("query.duration_min", "fast")])).is_err());
        assert_eq!(Search::parse(&query(&[("query.search_depth", "100000")])).unwrap().limit, MAX_TRACES);
    }
}
