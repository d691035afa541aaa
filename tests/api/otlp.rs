//! A real OTLP receiver inside the tests, over HTTP (protobuf bodies) and gRPC: what the
//! services export is decoded with the `opentelemetry-proto` types and kept for assertions.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::web::{self, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;

/// One exported span, with its service's resource.
#[derive(Debug, Clone)]
pub struct Received {
    pub resource: Vec<KeyValue>,
    pub span: opentelemetry_proto::tonic::trace::v1::Span,
}

impl Received {
    pub fn service(&self) -> String {
        text(&self.resource, "service.name").unwrap_or_default()
    }

    pub fn resource_attr(&self, key: &str) -> Option<String> {
        text(&self.resource, key)
    }

    pub fn attr(&self, key: &str) -> Option<String> {
        text(&self.span.attributes, key)
    }

    /// A string-array attribute (such as a header's values).
    pub fn attr_values(&self, key: &str) -> Option<Vec<String>> {
        let Value::ArrayValue(array) = value(&self.span.attributes, key)? else { return None };
        array
            .values
            .iter()
            .map(|v| match &v.value {
                Some(Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent span id, empty for a root.
    pub fn parent(&self) -> String {
        hex(&self.span.parent_span_id)
    }

    pub fn kind(&self) -> &'static str {
        match SpanKind::try_from(self.span.kind) {
            Ok(SpanKind::Server) => "SERVER",
            Ok(SpanKind::Client) => "CLIENT",
            Ok(SpanKind::Internal) => "INTERNAL",
            _ => "OTHER",
        }
    }

    pub fn is_error(&self) -> bool {
        self.span.status.as_ref().is_some_and(|s| s.code == 2)
    }
}

fn value<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    Some(match value(attributes, key)? {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::BoolValue(b) => b.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type Store = Arc<Mutex<Vec<Received>>>;

fn gunzip(body: &[u8]) -> Vec<u8> {
    use std::io::Read as _;
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut inflated).map(|_| inflated).unwrap_or_default()
}

fn keep(store: &Store, request: ExportTraceServiceRequest) {
    let mut store = store.lock().unwrap();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                store.push(Received { resource: resource.clone(), span });
            }
        }
    }
}

/// A receiver on an ephemeral 127.0.0.1 port.
pub struct Receiver {
    /// Base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it.
    pub endpoint: String,
    spans: Store,
    /// The headers of each OTLP/HTTP export received, in order.
    exports: Arc<Mutex<Vec<actix_web::http::header::HeaderMap>>>,
}

impl Receiver {
    /// OTLP/HTTP: `POST /v1/traces` with a protobuf body, plain or gzip.
    pub fn http() -> Self {
        let spans = Store::default();
        let store = spans.clone();
        let exports = Arc::new(Mutex::new(Vec::new()));
        let seen = exports.clone();
        let addr = crate::helpers::stub(move |app| {
            let store = store.clone();
            let seen = seen.clone();
            app.route(
                "/v1/traces",
                web::post().to(move |request: actix_web::HttpRequest, body: Bytes| {
                    let store = store.clone();
                    seen.lock().unwrap().push(request.headers().clone());
                    // As the OpenTelemetry Collector does: a body it is not told how to read is refused.
                    let protobuf =
                        request.headers().get("content-type").is_some_and(|v| v == "application/x-protobuf");
                    let gzipped = request.headers().get("content-encoding").is_some_and(|v| v == "gzip");
                    async move {
                        if !protobuf {
                            return HttpResponse::UnsupportedMediaType().finish();
                        }
                        let body = if gzipped { Bytes::from(gunzip(&body)) } else { body };
                        match ExportTraceServiceRequest::decode(body) {
                            Ok(request) => {
                                keep(&store, request);
                                HttpResponse::Ok()
                                    .content_type("application/x-protobuf")
                                    .body(ExportTraceServiceResponse::default().encode_to_vec())
                            }
                            Err(err) => HttpResponse::BadRequest().body(err.to_string()),
                        }
                    }
                }),
            );
        });
        Self { endpoint: format!("http://{addr}"), spans, exports }
    }

    /// OTLP/gRPC: the `TraceService` of the collector protocol.
    pub async fn grpc() -> Self {
        let spans = Store::default();
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let service = TraceServiceServer::new(GrpcTraces(spans.clone()))
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        actix_web::rt::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
        Self { endpoint, spans, exports: Arc::default() }
    }

    /// The same receiver, announced at another `endpoint` (to test endpoint variables).
    pub fn announced_at(self, endpoint: String) -> Self {
        Self { endpoint, ..self }
    }

    /// The headers of each OTLP/HTTP export so far.
    pub fn exports(&self) -> Vec<actix_web::http::header::HeaderMap> {
        self.exports.lock().unwrap().clone()
    }

    pub fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }

    /// The first span `matches` selects, waiting up to `within` for it.
    pub async fn trace_where(
        &self,
        within: Duration,
        matches: impl Fn(&Received) -> bool,
    ) -> Option<Received> {
        crate::wait::poll(within, || async { self.spans().into_iter().find(|s| matches(s)) }).await
    }

    /// The spans of trace `trace_id`, once `ready` says they are all there (or after `within`).
    pub async fn trace(
        &self,
        trace_id: &str,
        within: Duration,
        ready: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let of_trace = || self.spans().into_iter().filter(|s| s.trace_id() == trace_id).collect::<Vec<_>>();
        let whole = crate::wait::poll(within, || async {
            let spans = of_trace();
            ready(&spans).then_some(spans)
        })
        .await;
        whole.unwrap_or_else(of_trace)
    }
}

struct GrpcTraces(Store);

#[tonic::async_trait]
impl TraceService for GrpcTraces {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        keep(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}
