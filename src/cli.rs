//! The command line: `bookinfo up` (the default), `bookinfo serve <service>`, `bookinfo
//! traces ...`, `bookinfo curl ...`.
//!
//! The vocabulary is the libraries' own (services, tracing modes, reviews versions, mesh
//! tracers); the variables a flag falls back to are read here, so that a bad value is reported
//! against the variable, with exit code 64, and a bad flag against the flag, with 2.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::str::FromStr;

use bookinfo_config::{ConfigError, Env, Source};
use bookinfo_propagation::TracingMode;

use crate::service::Service;
use bookinfo_mesh::envoy::Tracer;
use bookinfo_reviews::ReviewsVersion;
use bookinfo_traces::sink::Listener;
use clap::{Args, Parser, Subcommand};

/// Istio's Bookinfo sample in Rust: four services in one binary.
#[derive(Debug, Parser)]
#[command(
    name = "bookinfo",
    version,
    about,
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Options of `up`, the command run when none is given.
    #[command(flatten)]
    pub up: UpArgs,

    /// What to do; without a command, `up`.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the whole stack on this machine, each service as its own process (the default).
    Up(UpArgs),
    /// Run one service, as in a container.
    #[command(disable_version_flag = true)]
    Serve(ServeArgs),
    /// Print traces as trees, compare two, or serve the viewer over a saved file.
    Traces(TracesArgs),
    /// A plain-HTTP subset of curl: what the image runs when called as `curl`.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Curl {
        /// curl's options and URLs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run PROGRAM in place of this process, stopping when the stack that started it dies
    /// (how `bookinfo up` starts Envoy).
    #[command(hide = true)]
    Exec {
        /// The program and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
}

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

    /// Istio YAML files (VirtualService, DestinationRule, Gateway), comma-separated: applied to
    /// the services' calls by the services themselves, or by the sidecars with --mesh; without
    /// them, calls to reviews spread over v1, v2 and v3 [env: BOOKINFO_ROUTES].
    #[arg(long, value_delimiter = ',', num_args = 1.., value_parser = file_name)]
    pub routes: Vec<PathBuf>,

    /// The mesh: Envoy sidecars and an ingress gateway.
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
    /// `--base-port`, or `BOOKINFO_BASE_PORT`, or 9080.
    ///
    /// # Errors
    /// A `BOOKINFO_BASE_PORT` that is not a port.
    pub fn base_port(&self) -> Result<u16, ConfigError> {
        flag_or_env(self.base_port, BASE_PORT, "a port number", &Env)
            .map(|p| p.unwrap_or(bookinfo_config::DEFAULT_PORT))
    }

    /// `--tracing`, or `BOOKINFO_TRACING`, or `otel`.
    ///
    /// # Errors
    /// A `BOOKINFO_TRACING` that is not a mode.
    pub fn tracing(&self) -> Result<TracingMode, ConfigError> {
        tracing_mode(self.tracing, &Env)
    }

    /// `--routes`, or `BOOKINFO_ROUTES`.
    ///
    /// # Errors
    /// A `BOOKINFO_ROUTES` with an empty file name.
    pub fn routes(&self) -> Result<Vec<PathBuf>, ConfigError> {
        routes(&self.routes, &Env)
    }
}

/// `BOOKINFO_BASE_PORT`: `--base-port`'s variable.
pub const BASE_PORT: &str = "BOOKINFO_BASE_PORT";

/// The local mesh (`bookinfo up --mesh`).
#[derive(Debug, Clone, Args)]
pub struct MeshArgs {
    /// Put an Envoy sidecar beside every service and an ingress gateway in front, configured as
    /// istiod would: the sidecars make the trace, and route as the --routes files say.
    #[arg(long)]
    pub mesh: bool,

    /// The sidecars' tracer: Istio's zipkin (B3), zipkin-w3c (B3 and W3C) or otel (W3C, OTLP)
    /// provider.
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

    /// Port of the Zipkin receiver (the sidecars' spans under --mesh) [default: 9411, moved as
    /// --base-port moves the services].
    #[arg(long, value_name = "PORT")]
    pub zipkin_port: Option<u16>,

    /// Port of the trace viewer and its Jaeger-style query API [default: 16686, moved as
    /// --base-port moves the services].
    #[arg(long, value_name = "PORT")]
    pub viewer_port: Option<u16>,

    /// Memory the trace store holds spans in, at most (such as 32MiB); past it the oldest
    /// traces go first.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub trace_memory: u64,

    /// Spans kept of one trace; more are counted, not kept.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub trace_spans: usize,

    /// Largest request body the receivers take (gzip bodies once inflated); larger gets 413.
    #[arg(long, value_name = "SIZE", default_value = "4MiB", value_parser = parse_size)]
    pub trace_body_limit: u64,

    /// Do not print each finished trace (they still go to the trace file and the viewer).
    #[arg(long)]
    pub quiet_traces: bool,

    /// Write traces to this file instead of the run's own [default: traces.jsonl in a new run
    /// directory under $BOOKINFO_RUNS_DIR or ~/.local/state/bookinfo/runs].
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

/// `bookinfo traces`.
#[derive(Debug, Clone, Args)]
pub struct TracesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TracesCommand,
}

/// The `traces` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum TracesCommand {
    /// Print traces as indented trees with a waterfall.
    Show {
        /// Where the traces are.
        #[command(flatten)]
        source: TraceSource,
        /// Only traces with a span of this service (needed with --jaeger).
        #[arg(long)]
        service: Option<String>,
        /// How many traces, the latest.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// One trace, by id.
        #[arg(long, value_name = "ID")]
        trace: Option<String>,
        /// Show each span's attributes and its service's version under it.
        #[arg(long)]
        attributes: bool,
        /// Draw every span (by default 200 rows and 40 levels at most).
        #[arg(long)]
        all: bool,
    },
    /// Two traces side by side: spans per service and kind, sidecar and application spans,
    /// depth, duration, orphans, the reviews version, what each has on each hop, and both
    /// trees.
    Compare {
        /// Where the traces are.
        #[command(flatten)]
        source: TraceSource,
        /// The first trace: its id, or latest:SERVICE.
        a: String,
        /// The second trace: its id, or latest:SERVICE.
        b: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Serve the web viewer (and the Jaeger-style query API) over a saved trace file.
    Serve {
        /// The trace file [default: the latest run's].
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Port of the viewer.
        #[arg(long, default_value_t = 16686)]
        port: u16,
        /// Address of the viewer.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
        host: IpAddr,
        /// Memory the traces are held in, at most; the latest are loaded.
        #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
        trace_memory: u64,
    },
}

/// Where traces are read from.
#[derive(Debug, Clone, Args)]
pub struct TraceSource {
    /// A trace file written by `bookinfo up` [default: the latest run's].
    #[arg(long, value_name = "FILE", conflicts_with = "jaeger")]
    pub file: Option<PathBuf>,
    /// A Jaeger (v2) query service, such as http://127.0.0.1:16686 (Istio's /jaeger base path
    /// is found by itself).
    #[arg(long, value_name = "URL")]
    pub jaeger: Option<String>,
    /// How far back to search Jaeger.
    #[arg(long, default_value = "1h", value_parser = bookinfo_config::parse_duration)]
    pub lookback: std::time::Duration,
}

/// A size such as `64MiB`, `500KB` or `1048576` (bytes).
///
/// # Errors
/// Not a number with one of the units, or more bytes than a `u64` holds.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        _ => return Err(SizeError::Malformed(text.to_owned())),
    };
    let number: u64 = number.parse().map_err(|_| SizeError::Malformed(text.to_owned()))?;
    number.checked_mul(scale).ok_or_else(|| SizeError::TooLarge(text.to_owned()))
}

/// A text [`parse_size`] does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number with one of the units.
    #[error("{0:?} is not a size such as 64MiB")]
    Malformed(String),
    /// More bytes than a `u64` holds.
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// Options of `bookinfo serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The service to run.
    #[arg(ignore_case = true, value_parser = choice::<Service>(Service::NAMES))]
    pub service: Service,

    /// Port to listen on [env: PORT] [default: 9080].
    #[arg(long)]
    pub port: Option<u16>,

    /// Address to listen on [env: BOOKINFO_HOST] [default: every IPv6 and IPv4 address].
    #[arg(long)]
    pub host: Option<IpAddr>,

    /// Tracing mode [env: BOOKINFO_TRACING] [default: otel].
    #[arg(long, ignore_case = true, value_parser = choice::<TracingMode>(TracingMode::NAMES))]
    pub tracing: Option<TracingMode>,

    /// Istio YAML files (VirtualService, DestinationRule), comma-separated, applied to
    /// outbound calls where no sidecar does it [env: BOOKINFO_ROUTES].
    #[arg(long, value_delimiter = ',', num_args = 1.., value_parser = file_name)]
    pub routes: Vec<PathBuf>,

    /// reviews only: the version whose defaults apply (ENABLE_RATINGS, STAR_COLOR); the
    /// variables still win.
    #[arg(long, ignore_case = true, value_parser = choice::<ReviewsVersion>(ReviewsVersion::NAMES), default_value_t = ReviewsVersion::V1)]
    pub version: ReviewsVersion,
}

impl ServeArgs {
    /// `--port`, or `PORT` of `source`, or 9080.
    ///
    /// # Errors
    /// A `PORT` that is not a port.
    pub fn port(&self, source: &(impl Source + ?Sized)) -> Result<u16, ConfigError> {
        let port = flag_or_env(self.port, bookinfo_config::PORT, "a port number", source)?;
        Ok(port.unwrap_or(bookinfo_config::DEFAULT_PORT))
    }

    /// `--host`, or `BOOKINFO_HOST` of `source`; `None` for every address.
    ///
    /// # Errors
    /// A `BOOKINFO_HOST` that is not an address.
    pub fn host(&self, source: &(impl Source + ?Sized)) -> Result<Option<IpAddr>, ConfigError> {
        flag_or_env(self.host, bookinfo_config::HOST, "an IP address", source)
    }

    /// `--tracing`, or `BOOKINFO_TRACING`, or `otel`.
    ///
    /// # Errors
    /// A `BOOKINFO_TRACING` that is not a mode.
    pub fn tracing(&self, source: &(impl Source + ?Sized)) -> Result<TracingMode, ConfigError> {
        tracing_mode(self.tracing, source)
    }

    /// `--routes`, or `BOOKINFO_ROUTES`.
    ///
    /// # Errors
    /// A `BOOKINFO_ROUTES` with an empty file name.
    pub fn routes(&self, source: &(impl Source + ?Sized)) -> Result<Vec<PathBuf>, ConfigError> {
        routes(&self.routes, source)
    }
}

/// The parser of a named choice (`bookinfo_config::named!`): its names listed in `--help` and
/// in errors, read in any letter case (with `ignore_case`).
fn choice<T>(names: &'static [&'static str]) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: FromStr<Err = bookinfo_config::UnknownName> + Clone + Send + Sync + 'static,
{
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(names).try_map(|name| name.parse::<T>())
}

/// The flag's value, or the variable's, parsed; a bad variable is a [`ConfigError`] naming it.
fn flag_or_env<T: FromStr>(
    flag: Option<T>,
    name: &str,
    expected: &str,
    source: &(impl Source + ?Sized),
) -> Result<Option<T>, ConfigError> {
    match flag {
        Some(value) => Ok(Some(value)),
        None => source
            .get(name)
            .map(|value| value.trim().parse().map_err(|_| ConfigError::new(name, &value, expected)))
            .transpose(),
    }
}

fn tracing_mode(
    flag: Option<TracingMode>,
    source: &(impl Source + ?Sized),
) -> Result<TracingMode, ConfigError> {
    let expected = "propagate, otel or none";
    Ok(flag_or_env(flag, bookinfo_propagation::BOOKINFO_TRACING, expected, source)?.unwrap_or_default())
}

fn routes(flag: &[PathBuf], source: &(impl Source + ?Sized)) -> Result<Vec<PathBuf>, ConfigError> {
    if !flag.is_empty() {
        return Ok(flag.to_vec());
    }
    let name = bookinfo_http::routing::BOOKINFO_ROUTES;
    let Some(list) = source.get(name) else { return Ok(Vec::new()) };
    list.split(',')
        .map(|f| file_name(f).map_err(|_| ConfigError::new(name, &list, "file names, comma-separated")))
        .collect()
}

/// One file name of a comma-separated list, spaces around it trimmed.
fn file_name(text: &str) -> Result<PathBuf, EmptyFileName> {
    let text = text.trim();
    if text.is_empty() { Err(EmptyFileName) } else { Ok(PathBuf::from(text)) }
}

/// An empty name in a comma-separated list of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an empty file name in the list")]
struct EmptyFileName;

fn percent(text: &str) -> Result<f64, NotAPercentage> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| NotAPercentage(text.to_owned()))
}

/// A `--mesh-sampling` that is not from 0 to 100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a percentage from 0 to 100")]
struct NotAPercentage(String);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_takes_the_service_port_and_version() {
        let cli =
            Cli::try_parse_from(["bookinfo", "serve", "reviews", "--port", "0", "--version", "v3"]).unwrap();
        let Some(Command::Serve(args)) = cli.command else {
            panic!("not serve: {cli:?}");
        };
        assert_eq!((args.service, args.port, args.version), (Service::Reviews, Some(0), ReviewsVersion::V3));
        assert_eq!(args.tracing, None, "the variable, or otel, decides later");
    }

    #[test]
    fn no_command_means_up_with_its_options() {
        let cli = Cli::try_parse_from(["bookinfo", "--base-port", "0"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.up.base_port, Some(0));
    }

    #[test]
    fn the_tracing_mode_is_propagate_otel_or_none_in_any_case() {
        let cli = Cli::try_parse_from(["bookinfo", "serve", "ratings", "--tracing", "PROPAGATE"]).unwrap();
        let Some(Command::Serve(args)) = cli.command else { panic!("not serve") };
        assert_eq!(args.tracing, Some(TracingMode::Propagate));
        assert!(Cli::try_parse_from(["bookinfo", "--tracing", "zipkin"]).is_err());
        assert_eq!(
            Cli::try_parse_from(["bookinfo", "--tracing", "none"]).unwrap().up.tracing,
            Some(TracingMode::None)
        );
    }

    #[test]
    fn routes_are_trimmed_and_empty_names_refused() {
        let cli = Cli::try_parse_from(["bookinfo", "--routes", "a.yaml, b.yaml"]).unwrap();
        assert_eq!(cli.up.routes, [PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]);
        assert!(Cli::try_parse_from(["bookinfo", "--routes", "a.yaml,,b.yaml"]).is_err());
    }

    #[test]
    fn mesh_options_need_the_mesh() {
        let cli = Cli::try_parse_from(["bookinfo", "--mesh", "--mesh-tracer", "otel", "--compare"]).unwrap();
        assert!(cli.up.mesh.mesh && cli.up.mesh.compare);
        assert_eq!(cli.up.mesh.mesh_tracer, Tracer::Otel);
        assert!(Cli::try_parse_from(["bookinfo", "--compare"]).is_err());
        assert!(Cli::try_parse_from(["bookinfo", "--mesh", "--mesh-sampling", "101"]).is_err());
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("500kb"), Ok(500_000));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("lots"), Err(SizeError::Malformed("lots".into())));
        assert_eq!(parse_size("-1MiB"), Err(SizeError::Malformed("-1MiB".into())));
        assert_eq!(parse_size("99999999999GiB"), Err(SizeError::TooLarge("99999999999GiB".into())));
    }

    #[test]
    fn unknown_services_are_refused() {
        assert!(Cli::try_parse_from(["bookinfo", "serve", "mongodb"]).is_err());
    }
}
