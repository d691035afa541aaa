//! The proxies' tracing: the three providers of `k8s/istio/mesh-config.yaml`, the sampling, the
//! `istio.*` tags, and the propagators an application must use under each.

use std::time::Duration;

use super::api::{
    CollectorEndpointVersion, CustomTag, Extension, HttpService, HttpUri, MetadataKey, MetadataKind,
    OpenTelemetryConfig, PathSegment, Percent, TagValue, TraceContextOption, Tracing, TracingProvider,
    ZipkinConfig,
};
use super::{CLUSTER_ID, Identity, MESH_ID, Mesh, OTLP_CLUSTER, ZIPKIN_CLUSTER};

/// The filter whose metadata says what an AuthorizationPolicy in dry run would have done.
const RBAC_FILTER: &str = "envoy.filters.http.rbac";

/// tracing.go, dryRunPolicyTraceTag: `istio.authorization.dry_run.<what>`, from the RBAC
/// filter's `key`; no tag where no policy in dry run ran (none does here).
fn dry_run(what: &str, key: &str) -> CustomTag {
    CustomTag {
        tag: format!("istio.authorization.dry_run.{what}"),
        value: TagValue::Metadata {
            kind: MetadataKind::Request {},
            metadata_key: MetadataKey {
                key: RBAC_FILTER.to_owned(),
                path: vec![PathSegment { key: key.to_owned() }],
            },
        },
    }
}

/// How long a proxy waits on the collector.
const COLLECTOR_TIMEOUT: Duration = Duration::from_secs(5);

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
    pub(super) fn tracing(&self, identity: &Identity, gateway: bool) -> Tracing {
        let literal = |tag: &str, value: &str| CustomTag {
            tag: tag.to_owned(),
            value: TagValue::Literal { value: value.to_owned() },
        };
        let collector = |uri: String, cluster: &str| HttpService {
            http_uri: HttpUri { uri, cluster: cluster.to_owned(), timeout: COLLECTOR_TIMEOUT },
        };
        let provider = match self.tracer {
            Tracer::Zipkin | Tracer::ZipkinW3c => TracingProvider::Zipkin(Extension(ZipkinConfig {
                collector_service: collector(format!("http://{}/api/v2/spans", self.zipkin), ZIPKIN_CLUSTER),
                collector_endpoint_version: CollectorEndpointVersion::HttpJson,
                trace_id_128bit: true,
                shared_span_context: false,
                trace_context_option: (self.tracer == Tracer::ZipkinW3c)
                    .then_some(TraceContextOption::UseB3WithW3cPropagation),
            })),
            Tracer::Otel => TracingProvider::OpenTelemetry(Extension(OpenTelemetryConfig {
                http_service: collector(format!("http://{}/v1/traces", self.otlp), OTLP_CLUSTER),
                service_name: identity.cluster.clone(),
            })),
        };
        Tracing {
            client_sampling: Percent { value: 100.0 },
            random_sampling: Percent { value: self.sampling },
            overall_sampling: Percent { value: 100.0 },
            // tracing.go, configureCustomTags: Istio's tags (buildServiceTags and
            // optionalPolicyTags) and the Telemetry's, sorted by name.
            custom_tags: vec![
                // What the routing rules match on, for reading a trace next to them (Istio's
                // Telemetry `customTags`, k8s/istio/telemetry-*.yaml).
                CustomTag {
                    tag: "baggage".to_owned(),
                    value: TagValue::RequestHeader { name: "baggage".to_owned() },
                },
                dry_run("allow_policy.name", "istio_dry_run_allow_shadow_effective_policy_id"),
                dry_run("allow_policy.result", "istio_dry_run_allow_shadow_engine_result"),
                dry_run("deny_policy.name", "istio_dry_run_deny_shadow_effective_policy_id"),
                dry_run("deny_policy.result", "istio_dry_run_deny_shadow_engine_result"),
                literal("istio.canonical_revision", &identity.version),
                literal("istio.canonical_service", &identity.app),
                literal("istio.cluster_id", CLUSTER_ID),
                literal("istio.mesh_id", MESH_ID),
                literal("istio.namespace", &identity.namespace),
            ],
            provider,
            spawn_upstream_span: gateway.then_some(true),
        }
    }
}
