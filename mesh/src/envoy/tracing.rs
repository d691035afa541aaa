//! The proxies' tracing: the three providers of `k8s/istio/mesh-config.yaml`, the sampling, the
//! `istio.*` tags, and the propagators an application must use under each.

use serde_json::{Value, json};

use super::{CLUSTER_ID, Identity, MESH_ID, Mesh, OTLP_CLUSTER, ZIPKIN_CLUSTER};

/// The tracer the proxies use: Istio's `zipkin`, `zipkin-w3c` and `otel` providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tracer {
    /// Envoy's Zipkin tracer: B3 multi headers between hops, Zipkin v2 JSON to the collector.
    #[default]
    Zipkin,
    /// The Zipkin tracer reading and writing W3C trace context as well as B3.
    ZipkinW3c,
    /// Envoy's OpenTelemetry tracer: W3C trace context between hops, OTLP/HTTP to the
    /// collector.
    Otel,
}

bookinfo_config::named!(Tracer, "mesh tracer", { Zipkin => "zipkin", ZipkinW3c => "zipkin-w3c", Otel => "otel" });

impl Tracer {
    /// The `OTEL_PROPAGATORS` an application in `otel` mode needs under this tracer: it must
    /// read the trace context its sidecar writes, and only that. An application that also
    /// writes a format its sidecar passes through unchanged leaves a stale context in the
    /// request, and the next application would take its parent from there (under the
    /// OpenTelemetry tracer, a `x-b3-*` written by the caller's application, beside the
    /// sidecars' fresh `traceparent`).
    pub fn app_propagators(self) -> &'static str {
        match self {
            Tracer::Zipkin => "b3multi,baggage",
            // Envoy reads B3 first, then W3C, and writes both: either alone would do.
            Tracer::ZipkinW3c => "tracecontext,baggage",
            Tracer::Otel => "tracecontext,baggage",
        }
    }
}

impl Mesh {
    /// The connection manager's `tracing`, for a proxy of `identity` (a gateway spawns the
    /// upstream span of its own, as Istio's gateways do).
    pub(super) fn tracing(&self, identity: &Identity, gateway: bool) -> Value {
        let literal = |tag: &str, value: &str| json!({"tag": tag, "literal": {"value": value}});
        let provider = match self.tracer {
            Tracer::Zipkin | Tracer::ZipkinW3c => {
                let mut config = json!({
                    "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
                    "collector_service": {"http_uri": {
                        "uri": format!("http://{}/api/v2/spans", self.zipkin),
                        "cluster": ZIPKIN_CLUSTER,
                        "timeout": "5s",
                    }},
                    "collector_endpoint_version": "HTTP_JSON",
                    "trace_id_128bit": true,
                    "shared_span_context": false,
                });
                if self.tracer == Tracer::ZipkinW3c {
                    config["trace_context_option"] = json!("USE_B3_WITH_W3C_PROPAGATION");
                }
                json!({"name": "envoy.tracers.zipkin", "typed_config": config})
            }
            Tracer::Otel => json!({"name": "envoy.tracers.opentelemetry", "typed_config": {
                "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                "http_service": {"http_uri": {
                    "uri": format!("http://{}/v1/traces", self.otlp),
                    "cluster": OTLP_CLUSTER,
                    "timeout": "5s",
                }},
                "service_name": identity.cluster,
            }}),
        };
        let mut tracing = json!({
            "client_sampling": {"value": 100.0},
            "random_sampling": {"value": self.sampling},
            "overall_sampling": {"value": 100.0},
            "custom_tags": [
                // What the routing rules match on, for reading a trace next to them (Istio's
                // Telemetry `customTags`, k8s/istio/telemetry-*.yaml).
                {"tag": "baggage", "request_header": {"name": "baggage"}},
                literal("istio.canonical_revision", &identity.version),
                literal("istio.canonical_service", &identity.app),
                literal("istio.cluster_id", CLUSTER_ID),
                literal("istio.mesh_id", MESH_ID),
                literal("istio.namespace", &identity.namespace),
            ],
            "provider": provider,
        });
        if gateway {
            tracing["spawn_upstream_span"] = json!(true);
        }
        tracing
    }
}
