//! The command line: `bookinfo up` (the default), `bookinfo serve <service>`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Print traces as trees, or compare two: from the local stack's file or from Jaeger.
    Traces(TracesArgs),
    /// A plain-HTTP subset of curl: what the image runs when called as `curl`.
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Curl {
        /// curl's options and URLs.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// Options of `bookinfo up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// First of six consecutive ports: productpage, details, reviews v1, v2, v3, ratings.
    /// 0 lets every service pick a free port.
    #[arg(long, env = "BOOKINFO_BASE_PORT", default_value_t = 9080)]
    pub base_port: u16,

    /// Address the services listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,

    /// Tracing mode of every service.
    #[arg(long, env = "BOOKINFO_TRACING", value_enum, default_value_t = Tracing::Otel)]
    pub tracing: Tracing,

    /// Istio YAML files (VirtualService, DestinationRule) applied to the services' calls, as
    /// the sidecars would; without them, calls to reviews spread over v1, v2 and v3.
    #[arg(long, env = "BOOKINFO_ROUTES", value_delimiter = ',', num_args = 1..)]
    pub routes: Vec<PathBuf>,

    /// HTTP worker threads of each service (its BOOKINFO_WORKERS). One serves a machine of
    /// a few cores best: six services of one worker each already keep every core busy, and
    /// more only switch between threads (see docs/performance.md).
    #[arg(long, env = "BOOKINFO_WORKERS", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: u16,

    /// The trace store: its ports, its memory, its file.
    #[command(flatten)]
    pub store: StoreArgs,

    /// The program started for each service (default: this one).
    #[arg(long, hide = true)]
    pub exe: Option<PathBuf>,
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
    #[arg(long, default_value = "1h", value_parser = crate::traces::parse_lookback)]
    pub lookback: std::time::Duration,
}

/// A size such as `64MiB`, `500KB` or `1048576` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
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
        _ => return Err(format!("{text:?} is not a size such as 64MiB")),
    };
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a size such as 64MiB"))?;
    number.checked_mul(scale).ok_or_else(|| format!("{text:?} is too large"))
}

/// Options of `bookinfo serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The service to run.
    #[arg(value_enum)]
    pub service: Service,

    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = bookinfo_common::config::DEFAULT_PORT)]
    pub port: u16,

    /// Address to listen on [default: every IPv6 and IPv4 address].
    #[arg(long, env = "BOOKINFO_HOST")]
    pub host: Option<IpAddr>,

    /// Tracing mode.
    #[arg(long, env = "BOOKINFO_TRACING", value_enum, default_value_t = Tracing::Otel)]
    pub tracing: Tracing,

    /// Istio YAML files (VirtualService, DestinationRule) applied to outbound calls, where no
    /// sidecar does it.
    #[arg(long, env = "BOOKINFO_ROUTES", value_delimiter = ',', num_args = 1..)]
    pub routes: Vec<PathBuf>,

    /// reviews only: the version whose defaults apply (ENABLE_RATINGS, STAR_COLOR); the
    /// variables still win.
    #[arg(long, value_enum, default_value_t = Version::V1)]
    pub version: Version,
}

/// A Bookinfo service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    /// The web page and API.
    Productpage,
    /// Book details.
    Details,
    /// Book reviews (v1, v2, v3).
    Reviews,
    /// Star ratings.
    Ratings,
}

impl Service {
    /// The service's name.
    pub fn name(self) -> &'static str {
        match self {
            Service::Productpage => "productpage",
            Service::Details => "details",
            Service::Reviews => "reviews",
            Service::Ratings => "ratings",
        }
    }
}

/// A tracing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Tracing {
    /// Forward the tracing headers only; the mesh's sidecars make the trace.
    Propagate,
    /// Instrument with OpenTelemetry; the app's spans nest inside the sidecars'.
    #[default]
    Otel,
}

impl From<Tracing> for bookinfo_common::TracingMode {
    fn from(tracing: Tracing) -> Self {
        match tracing {
            Tracing::Propagate => Self::Propagate,
            Tracing::Otel => Self::Otel,
        }
    }
}

/// A reviews version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Version {
    /// No ratings.
    V1,
    /// Black stars.
    V2,
    /// Red stars.
    V3,
}

impl From<Version> for bookinfo_reviews::ReviewsVersion {
    fn from(version: Version) -> Self {
        match version {
            Version::V1 => Self::V1,
            Version::V2 => Self::V2,
            Version::V3 => Self::V3,
        }
    }
}

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
        assert_eq!((args.service, args.port, args.version), (Service::Reviews, 0, Version::V3));
        assert_eq!(args.tracing, Tracing::Otel, "otel is the default");
    }

    #[test]
    fn no_command_means_up_with_its_options() {
        let cli = Cli::try_parse_from(["bookinfo", "--base-port", "0"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.up.base_port, 0);
    }

    #[test]
    fn the_tracing_mode_is_propagate_or_otel() {
        let cli = Cli::try_parse_from(["bookinfo", "serve", "ratings", "--tracing", "propagate"]).unwrap();
        let Some(Command::Serve(args)) = cli.command else { panic!("not serve") };
        assert_eq!(args.tracing, Tracing::Propagate);
        assert!(Cli::try_parse_from(["bookinfo", "--tracing", "zipkin"]).is_err());
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("500kb"), Ok(500_000));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn unknown_services_are_refused() {
        assert!(Cli::try_parse_from(["bookinfo", "serve", "mongodb"]).is_err());
    }
}
