//! The command line: `bookinfo up` (the default), `bookinfo serve <service>`, `bookinfo
//! traces ...`, `bookinfo curl ...`.
//!
//! The vocabulary is the libraries' own (services, tracing modes, reviews versions, mesh
//! tracers); the variables a flag falls back to are read here, from the [`Source`] the caller
//! hands in, so that a bad value is reported against the variable, with exit code 64, and a bad
//! flag against the flag, with 2.

mod traces;
mod up;
mod values;

use std::net::IpAddr;
use std::path::PathBuf;

use bookinfo_config::{ConfigError, Source};
use bookinfo_propagation::TracingMode;
use bookinfo_reviews::ReviewsVersion;
use clap::{Args, Parser, Subcommand};

pub use self::traces::{TraceSource, TracesArgs, TracesCommand};
pub use self::up::{BASE_PORT, MeshArgs, StoreArgs, UpArgs};
pub use self::values::{SizeError, parse_size};
use self::values::{choice, file_name, flag_or_env, routes, tracing_mode};
use crate::service::Service;

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

    /// Istio YAML files (VirtualService, DestinationRule, or Gateway API HTTPRoute),
    /// comma-separated, applied to outbound calls where no sidecar does it
    /// [env: BOOKINFO_ROUTES].
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

#[cfg(test)]
mod tests {
    use bookinfo_mesh::envoy::{DataPlane, Tracer, WaypointScope};
    use clap::CommandFactory;

    use super::*;

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
        assert!(cli.up.mesh.mesh == Some(DataPlane::Sidecar) && cli.up.mesh.compare);
        assert_eq!(cli.up.mesh.mesh_tracer, Tracer::Otel);
        let ambient = |args: &[&str]| {
            let mut all = vec!["bookinfo"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).map(|cli| (cli.up.mesh.mesh, cli.up.mesh.waypoint))
        };
        assert_eq!(ambient(&["--mesh", "sidecar"]).unwrap(), (Some(DataPlane::Sidecar), WaypointScope::None));
        assert_eq!(
            ambient(&["--mesh", "Ambient", "--waypoint", "namespace"]).unwrap(),
            (Some(DataPlane::Ambient), WaypointScope::Namespace)
        );
        assert_eq!(ambient(&["--mesh", "ambient"]).unwrap(), (Some(DataPlane::Ambient), WaypointScope::None));
        assert!(ambient(&["--mesh", "cilium"]).is_err());
        assert!(ambient(&["--waypoint", "namespace"]).is_err(), "needs the mesh");
        assert!(ambient(&["--mesh", "ambient", "--waypoint", "service"]).is_err());
        assert!(Cli::try_parse_from(["bookinfo", "--compare"]).is_err());
        assert!(Cli::try_parse_from(["bookinfo", "--mesh", "--mesh-sampling", "101"]).is_err());
    }

    #[test]
    fn unknown_services_are_refused() {
        assert!(Cli::try_parse_from(["bookinfo", "serve", "mongodb"]).is_err());
    }

    #[test]
    fn up_reads_its_variables_from_the_source_handed_in_and_its_flags_win() {
        let up = Cli::try_parse_from(["bookinfo"]).unwrap().up;
        let source = [
            ("BOOKINFO_BASE_PORT", "10080"),
            ("BOOKINFO_TRACING", "none"),
            ("BOOKINFO_ROUTES", "a.yaml, b.yaml"),
        ];
        assert_eq!(up.base_port(&source), Ok(10_080));
        assert_eq!(up.tracing(&source), Ok(TracingMode::None));
        assert_eq!(up.routes(&source), Ok(vec![PathBuf::from("a.yaml"), PathBuf::from("b.yaml")]));
        let unset = [("OTHER", "x")];
        assert_eq!((up.base_port(&unset), up.tracing(&unset)), (Ok(9080), Ok(TracingMode::Otel)));
        assert_eq!(up.routes(&[("BOOKINFO_ROUTES", "a.yaml,,b.yaml")]).unwrap_err().name, "BOOKINFO_ROUTES");
        let flags =
            Cli::try_parse_from(["bookinfo", "--base-port", "0", "--tracing", "propagate"]).unwrap().up;
        assert_eq!((flags.base_port(&source), flags.tracing(&source)), (Ok(0), Ok(TracingMode::Propagate)));
    }
}
