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

    /// Do not print each finished trace (they still go to the trace file).
    #[arg(long)]
    pub quiet_traces: bool,

    /// Where the local stack's traces are appended [default: bookinfo-traces.jsonl in the
    /// temporary directory].
    #[arg(long, value_name = "FILE")]
    pub traces_file: Option<PathBuf>,

    /// The program started for each service (default: this one).
    #[arg(long, hide = true)]
    pub exe: Option<PathBuf>,
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
    },
    /// Two traces side by side: spans per service and kind, sidecar and application spans,
    /// depth, duration, orphans, and both trees.
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
}

/// Where traces are read from.
#[derive(Debug, Clone, Args)]
pub struct TraceSource {
    /// A trace file written by `bookinfo up` [default: bookinfo-traces.jsonl in the temporary
    /// directory].
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
    fn unknown_services_are_refused() {
        assert!(Cli::try_parse_from(["bookinfo", "serve", "mongodb"]).is_err());
    }
}
