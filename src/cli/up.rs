//! The options of `bookinfo up`: the stack, its mesh, its trace store.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use bookinfo_config::{ConfigError, Source};
use bookinfo_mesh::envoy::{DataPlane, Tracer, WaypointScope};
use bookinfo_propagation::TracingMode;
use bookinfo_traces::sink::Listener;
use clap::Args;

use super::values::{choice, file_name, flag_or_env, parse_size, percent, routes, tracing_mode};

/// Options of `bookinfo up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// First of the public ports: productpage (or the gateway, with --mesh), details, reviews
    /// v1, v2, v3, ratings; 0 picks free ones [env: BOOKINFO_BASE_PORT] [default: 9080].
    #[arg(long, value_name = "PORT")]
    pub base_port: Option<u16>,

    /// Address the services listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,

    /// Tracing mode of every service [env: BOOKINFO_TRACING] [default: otel].
    #[arg(long, ignore_case = true, value_parser = choice::<TracingMode>(TracingMode::NAMES))]
    pub tracing: Option<TracingMode>,

    /// Istio YAML files (VirtualService, DestinationRule, Gateway; or Gateway API HTTPRoute),
    /// comma-separated: applied to the services' calls by the services themselves, or by the
    /// sidecars with --mesh (by the gateway and the waypoint with --mesh ambient); without
    /// them, calls to reviews spread over v1, v2 and v3
    /// [env: BOOKINFO_ROUTES].
    #[arg(long, value_delimiter = ',', num_args = 1.., value_parser = file_name)]
    pub routes: Vec<PathBuf>,

    /// Ratings v2 on MySQL beside ratings v1, as pod ratings-v2-mysql (version v2-mysql; route
    /// to it with a DestinationRule subset): `mysql` starts a MariaDB or MySQL server of the
    /// stack's own (mariadbd or mysqld on PATH, or BOOKINFO_MYSQLD) on 127.0.0.1:3306, moved
    /// with --base-port; `mysql://USER:PASSWORD@HOST:PORT/test` uses that server instead.
    /// Under --mesh the database has its own sidecar (a TCP proxy: no span), and ratings v2
    /// reaches it through its own sidecar, as on Istio; under --mesh ambient, through the
    /// ztunnel (no span either).
    #[arg(long, value_name = "mysql|URL")]
    pub ratings_db: Option<crate::up::RatingsDb>,

    /// The mesh: Envoy sidecars (or ambient's ztunnel and waypoint) and an ingress gateway.
    #[command(flatten)]
    pub mesh: MeshArgs,

    /// HTTP worker threads of each service [env: BOOKINFO_WORKERS] [default: 1]. One serves a
    /// machine of a few cores best: six services of one worker each already keep every core
    /// busy, and more only switch between threads (docs/performance.md).
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=crate::serve::MAX_WORKERS as i64))]
    pub workers: Option<u16>,

    /// The trace store: its ports, its memory, its file.
    #[command(flatten)]
    pub store: StoreArgs,

    /// Do not restart a service (or sidecar) that dies; it is reported, and the rest of the
    /// stack keeps serving without it.
    #[arg(long)]
    pub no_restarts: bool,

    /// Log level of the services (their access log is `info`); RUST_LOG, when set, wins.
    #[arg(long, value_name = "LEVEL", default_value = "warn", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: String,

    /// The program started for each service (default: this one).
    #[arg(long, hide = true)]
    pub exe: Option<PathBuf>,
}

impl UpArgs {
    /// `--base-port`, or `BOOKINFO_BASE_PORT` of `source`, or 9080.
    ///
    /// # Errors
    /// A `BOOKINFO_BASE_PORT` that is not a port.
    pub fn base_port(&self, source: &(impl Source + ?Sized)) -> Result<u16, ConfigError> {
        flag_or_env(self.base_port, BASE_PORT, "a port number", source)
            .map(|p| p.unwrap_or(bookinfo_config::DEFAULT_PORT))
    }

    /// `--tracing`, or `BOOKINFO_TRACING` of `source`, or `otel`.
    ///
    /// # Errors
    /// A `BOOKINFO_TRACING` that is not a mode.
    pub fn tracing(&self, source: &(impl Source + ?Sized)) -> Result<TracingMode, ConfigError> {
        tracing_mode(self.tracing, source)
    }

    /// `--routes`, or `BOOKINFO_ROUTES` of `source`.
    ///
    /// # Errors
    /// A `BOOKINFO_ROUTES` with an empty file name.
    pub fn routes(&self, source: &(impl Source + ?Sized)) -> Result<Vec<PathBuf>, ConfigError> {
        routes(&self.routes, source)
    }
}

/// `BOOKINFO_BASE_PORT`: `--base-port`'s variable.
pub const BASE_PORT: &str = "BOOKINFO_BASE_PORT";

/// The local mesh (`bookinfo up --mesh`).
#[derive(Debug, Clone, Args)]
pub struct MeshArgs {
    /// Put the stack in a mesh, an ingress gateway in front, configured as istiod would:
    /// `sidecar` (the default) puts an Envoy sidecar beside every service, which make the trace
    /// and route as the --routes files say; `ambient` has none: a ztunnel (L4, no span) carries
    /// the calls, and a waypoint (--waypoint namespace) makes one span per call and routes.
    #[arg(long, value_name = "sidecar|ambient", num_args = 0..=1, default_missing_value = "sidecar",
          ignore_case = true, value_parser = choice::<DataPlane>(DataPlane::NAMES))]
    pub mesh: Option<DataPlane>,

    /// Under --mesh ambient, the namespace's waypoint: `none` (as Istio starts: no L7 routing,
    /// no span inside the mesh) or `namespace` (one Envoy for every service).
    #[arg(long, value_name = "none|namespace", ignore_case = true,
          value_parser = choice::<WaypointScope>(WaypointScope::NAMES), default_value_t = WaypointScope::None,
          requires = "mesh")]
    pub waypoint: WaypointScope,

    /// The proxies' tracer (sidecars, gateway, waypoint): Istio's zipkin (B3), zipkin-w3c (B3
    /// and W3C) or otel (W3C, OTLP) provider.
    #[arg(long, ignore_case = true, value_parser = choice::<Tracer>(Tracer::NAMES), default_value_t = Tracer::Zipkin, requires = "mesh")]
    pub mesh_tracer: Tracer,

    /// Share of requests the gateway traces, 0-100 (Istio's randomSamplingPercentage).
    #[arg(long, value_name = "PERCENT", default_value_t = 100.0, value_parser = percent, requires = "mesh")]
    pub mesh_sampling: f64,

    /// Run the application twice behind one gateway, in namespaces bookinfo-propagate and
    /// bookinfo-otel (as the two Kubernetes overlays), by host (propagate.bookinfo.local,
    /// otel.bookinfo.local) and by port; --tracing does not apply.
    #[arg(long, requires = "mesh")]
    pub compare: bool,

    /// The Envoy binary [env: BOOKINFO_ENVOY] [default: envoy on PATH].
    #[arg(long, value_name = "PATH", requires = "mesh")]
    pub envoy: Option<PathBuf>,

    /// Envoy's log level (its logs are shown, prefixed, at warning and above by default).
    #[arg(long, value_name = "LEVEL", default_value = "warning", requires = "mesh",
          value_parser = ["trace", "debug", "info", "warning", "error", "critical", "off"])]
    pub mesh_log: String,
}

/// The local stack's trace store (`bookinfo up`).
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Port of the OTLP/HTTP receiver [default: 4318, moved as --base-port moves the services;
    /// 0 with --base-port 0].
    #[arg(long, value_name = "PORT")]
    pub otlp_port: Option<u16>,

    /// Port of the Zipkin receiver (the proxies' spans under --mesh) [default: 9411, moved as
    /// --base-port moves the services].
    #[arg(long, value_name = "PORT")]
    pub zipkin_port: Option<u16>,

    /// Port of the trace viewer and its Jaeger-style query API [default: 16686, moved as
    /// --base-port moves the services].
    #[arg(long, value_name = "PORT")]
    pub viewer_port: Option<u16>,

    /// Memory the trace store holds spans in, at most (such as 32MiB); past it the least
    /// recently updated traces go, once written. While spans not yet written fill it, exports
    /// are answered 429 (exporters send them again). Bodies being received take a quarter as
    /// much again.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub trace_memory: u64,

    /// Spans kept of one trace; more are counted, not kept (and keep the trace from being
    /// finished while they come).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub trace_spans: usize,

    /// Largest request body the receivers take (gzip bodies once inflated); larger gets 413.
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_size)]
    pub trace_body_limit: u64,

    /// Do not print each finished trace (they still go to the trace file and the viewer).
    #[arg(long)]
    pub quiet_traces: bool,

    /// Write traces to this file instead of the run's own [default: traces.jsonl in a new run
    /// directory under $BOOKINFO_RUNS_DIR or ~/.local/state/bookinfo/runs; the ten newest runs
    /// are kept, and any a stack still runs in].
    #[arg(long, value_name = "FILE")]
    pub traces_file: Option<PathBuf>,

    /// Size of the trace file past which it is rotated (one older part is kept).
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    pub traces_file_size: u64,
}

impl StoreArgs {
    /// The port `--otlp-port`, `--zipkin-port` or `--viewer-port` gives `listener`, if any.
    pub fn port(&self, listener: Listener) -> Option<u16> {
        match listener {
            Listener::Otlp => self.otlp_port,
            Listener::Zipkin => self.zipkin_port,
            Listener::Viewer => self.viewer_port,
        }
    }

    /// The flag that sets `listener`'s port: `--{name}-port`.
    pub fn port_flag(listener: Listener) -> &'static str {
        match listener {
            Listener::Otlp => "otlp",
            Listener::Zipkin => "zipkin",
            Listener::Viewer => "viewer",
        }
    }
}
