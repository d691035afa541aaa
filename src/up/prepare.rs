//! What `bookinfo up` reads, checks and opens before its first child starts: its settings
//! from the flags and the variables, the routing files, Envoy, the services' ports, the trace
//! store. Most of it blocks (files, sockets, Envoy asked for its version, the store's threads
//! started), so [`Prepared::new`] runs off the async runtime, in one go.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use bookinfo_config::Source;
use bookinfo_http::server;
use bookinfo_mesh::Routing;
use bookinfo_mesh::envoy::{DataPlane, Tracer, WaypointScope};
use bookinfo_propagation::TracingMode;
use bookinfo_telemetry::settings::{
    OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_TRACES_EXPORTER,
};
use bookinfo_traces::sink::Listener;
use bookinfo_traces::{Limits, Sink, SinkError, SinkOptions, file};

use super::envoy::{self, Envoy};
use super::mysql::{self, RatingsDb, Remote};
use super::stack::{RATINGS_V2_MYSQL, STACK};
use crate::cli::{StoreArgs, UpArgs};
use crate::error::{Error, SetupError, StackError, UsageError};
use crate::output;

/// Everything decided before the first child starts.
pub struct Prepared {
    /// The program each service runs (this one, unless `--exe` says otherwise).
    pub exe: PathBuf,
    /// `--base-port`/`BOOKINFO_BASE_PORT`.
    pub base_port: u16,
    /// `--tracing`/`BOOKINFO_TRACING`.
    pub mode: TracingMode,
    /// `--routes`/`BOOKINFO_ROUTES`, as given.
    pub routes: Vec<PathBuf>,
    /// The routing files, loaded.
    pub routing: Routing,
    /// Envoy, under `--mesh`.
    pub envoy: Option<Envoy>,
    /// Where the user sends spans, if anywhere.
    pub exporter: Exporter,
    /// The exporter's address, where the sidecars send OTLP, under `--mesh` with an exporter.
    pub exporter_addr: Option<SocketAddr>,
    /// Worker threads per service.
    pub workers: usize,
    /// The trace store, unless spans go elsewhere.
    pub sink: Option<Sink>,
    /// Ratings v2's database, under `--ratings-db`.
    pub database: Option<Database>,
}

/// Ratings v2's database.
#[derive(Debug, Clone)]
pub enum Database {
    /// A server the stack starts, its data directory made.
    Local(mysql::Local),
    /// A server at `--ratings-db`'s URL.
    Url(Remote),
}

impl Prepared {
    /// Reads `args` and `source`, loads and checks what they name, and starts the trace store
    /// (blocking).
    ///
    /// # Errors
    /// A variable or file that cannot be used, no Envoy for `--mesh`, a port that is taken, or
    /// a store that cannot start.
    pub fn new(args: &UpArgs, source: &(impl Source + ?Sized)) -> Result<Self, Error> {
        let exe = match &args.exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe()?,
        };
        let base_port = args.base_port(source)?;
        let mode = args.tracing(source)?;
        let routes = args.routes(source)?;
        let needed = if args.mesh.compare {
            2
        } else if args.ratings_db.is_some() {
            RATINGS_V2_MYSQL.offset
        } else {
            5
        };
        if base_port != 0 && base_port > u16::MAX - needed {
            let highest = u16::MAX - needed;
            return Err(UsageError::NoRoom { base_port, more: needed, highest }.into());
        }
        check_port_flags(&args.store, base_port, args.ratings_db.is_some())?;
        if args.mesh.waypoint != WaypointScope::None && args.mesh.mesh != Some(DataPlane::Ambient) {
            return Err(UsageError::WaypointWithoutAmbient.into());
        }
        let routing = load_routes(&routes)?;
        let server = match &args.ratings_db {
            Some(RatingsDb::Local) => Some(mysql::find(source)?),
            _ => None,
        };
        let envoy = if args.mesh.mesh.is_some() {
            Some(envoy::find(args.mesh.envoy.as_deref(), source)?)
        } else {
            None
        };
        // The pods take their public ports themselves without a mesh and, alone, under ambient
        // (the sidecars' are held by `up` before anything starts).
        let pods_public = match args.mesh.mesh {
            None => true,
            Some(DataPlane::Ambient) => !args.mesh.compare,
            Some(DataPlane::Sidecar) => false,
        };
        if base_port != 0 && pods_public {
            let host = if args.mesh.mesh.is_some() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { args.host };
            check_ports(host, base_port, args.ratings_db.is_some())?;
        }
        let exporter = Exporter::read(source);
        if args.mesh.mesh.is_some() && exporter.configured && args.mesh.mesh_tracer != Tracer::Otel {
            return Err(SetupError::ZipkinWithoutStore.into());
        }
        if args.mesh.compare && !routing.gateway.is_empty() {
            return Err(SetupError::CompareWithGateway.into());
        }
        let workers = match args.workers {
            Some(workers) => usize::from(workers),
            None => crate::serve::workers(source)?.unwrap_or(1),
        };
        // Each service's own settings, as its child will read them: a mistake is said once,
        // here, rather than by a child that does not start.
        for instance in STACK {
            crate::serve::Configured::from_source(instance.service, instance.version, source)?;
        }
        // With nowhere else to send spans, the stack receives them itself.
        let sink = if exporter.configured {
            None
        } else {
            Some(start_sink(&args.store, base_port, || file::runs_root(source))?)
        };
        let exporter_addr = if args.mesh.mesh.is_some() && sink.is_none() { exporter.addr() } else { None };
        let database = match (server, &args.ratings_db) {
            (Some(server), _) => {
                // In the run's directory, which `up` prunes with the run, or a directory of its own.
                let dir = match sink.as_ref().and_then(|s| s.file.as_ref()).and_then(|f| f.parent()) {
                    Some(run) => run.join("mysql"),
                    None => file::temp_dir(source).join(format!("bookinfo-mysql-{}", std::process::id())),
                };
                match mysql::prepare(server, dir.clone(), base_port, source) {
                    Ok(local) => Some(Database::Local(local)),
                    Err(err) => {
                        let _ = std::fs::remove_dir_all(dir);
                        if let Some(sink) = sink {
                            sink.discard();
                        }
                        return Err(err);
                    }
                }
            }
            (None, Some(RatingsDb::Url(remote))) => Some(Database::Url(remote.clone())),
            (None, Some(RatingsDb::Local) | None) => None,
        };
        Ok(Self {
            exe,
            base_port,
            mode,
            routes,
            routing,
            envoy,
            exporter,
            exporter_addr,
            workers,
            sink,
            database,
        })
    }
}

/// Where the user says the services' spans go (`OTEL_EXPORTER_OTLP_*`, `OTEL_TRACES_EXPORTER`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exporter {
    /// Whether the user said so at all: then the stack keeps no store of its own.
    pub configured: bool,
    /// The OTLP endpoint, if one is set (the traces' own first).
    pub endpoint: Option<String>,
}

impl Exporter {
    /// The exporter `source` sets.
    pub fn read(source: &(impl Source + ?Sized)) -> Self {
        let configured =
            [OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_TRACES_EXPORTER]
                .iter()
                .any(|name| source.get(name).is_some());
        let endpoint = [OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT]
            .iter()
            .find_map(|n| source.get(n));
        Self { configured, endpoint }
    }

    /// The endpoint's address (a name look-up: blocking).
    pub fn addr(&self) -> Option<SocketAddr> {
        let endpoint = self.endpoint.as_deref()?;
        authority(endpoint).to_socket_addrs().ok()?.next()
    }

    /// Whether something accepts connections at the endpoint (blocking, for half a second at
    /// most).
    pub fn answers(&self) -> bool {
        self.addr().is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
    }
}

/// `host:port` of `http://host:port/...`.
fn authority(endpoint: &str) -> &str {
    endpoint.split("://").nth(1).unwrap_or(endpoint).split('/').next().unwrap_or_default()
}

/// Loads the routing files once, to fail early and to say what may surprise.
fn load_routes(files: &[PathBuf]) -> Result<Routing, Error> {
    if files.is_empty() {
        return Ok(Routing::default());
    }
    let routing = Routing::load(files)?;
    for warning in &routing.warnings {
        output::line(&format!("bookinfo: routes: {warning}"));
    }
    Ok(routing)
}

/// Fails at once, naming the port, when one is taken: clearer than six children failing.
fn check_ports(host: IpAddr, base_port: u16, ratings_db: bool) -> Result<(), Error> {
    let mut by_port: Vec<_> = STACK.iter().chain(ratings_db.then_some(&RATINGS_V2_MYSQL)).collect();
    by_port.sort_by_key(|instance| instance.offset);
    for instance in by_port {
        let port = base_port + instance.offset;
        match server::bind(Some(host), port) {
            Ok(listener) => drop(listener),
            Err(source @ server::BindError::InUse { .. }) => {
                return Err(StackError::PortTaken { source, pod: instance.pod }.into());
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// The trace store's receivers, viewer and file, on the ports the flags or `--base-port` say;
/// its file in a new run directory under `runs_root()` unless `--traces-file` names one.
fn start_sink(store: &StoreArgs, base_port: u16, runs_root: impl FnOnce() -> PathBuf) -> Result<Sink, Error> {
    let at = |listener: Listener| -> Result<Option<SocketAddr>, StackError> {
        let port = store_port(store.port(listener), listener.default_port(), base_port)
            .ok_or(StackError::StorePortOutOfRange { base_port, flag: StoreArgs::port_flag(listener) })?;
        Ok(Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)))
    };
    let (otlp, zipkin, query) = (at(Listener::Otlp)?, at(Listener::Zipkin)?, at(Listener::Viewer)?);
    // The run's directory is held (locked) by the sink for as long as it runs.
    let (file, run) = match &store.traces_file {
        Some(file) => (file.clone(), None),
        None => {
            let root = runs_root();
            let run =
                file::Run::create(&root).map_err(|source| SetupError::RunsDir { path: root, source })?;
            (run.file(), Some(run))
        }
    };
    let memory = usize::try_from(store.trace_memory).unwrap_or(usize::MAX);
    let body_limit = usize::try_from(store.trace_body_limit).unwrap_or(usize::MAX);
    let options = SinkOptions {
        otlp,
        zipkin,
        query,
        limits: Limits { bytes: memory, spans_per_trace: store.trace_spans.max(1) },
        body_limit,
        // Bodies being received take a quarter of the store's memory again, at least one body.
        receiving: (memory / 4).max(body_limit),
        file: Some((file, store.traces_file_size)),
        run,
        print: !store.quiet_traces,
        ..SinkOptions::default()
    };
    Sink::start(options).map_err(|err| store_error(err).into())
}

/// A store port given by its flag must not be a service's (from a `--base-port` other than 0)
/// nor another store port's: each listener would refuse the other, with a message about neither flag.
fn check_port_flags(store: &StoreArgs, base_port: u16, ratings_db: bool) -> Result<(), UsageError> {
    let mut taken: Vec<(u16, String, String)> = STACK
        .iter()
        .chain(ratings_db.then_some(&RATINGS_V2_MYSQL))
        // With --base-port 0 the services take free ports, never a flag's.
        .filter(|_| base_port != 0)
        .filter_map(|i| {
            let port = base_port.checked_add(i.offset)?;
            Some((
                port,
                i.pod.to_owned(),
                format!(" (--base-port {base_port} puts the services from {base_port} on)"),
            ))
        })
        .collect();
    for listener in [Listener::Otlp, Listener::Zipkin, Listener::Viewer] {
        let flag = StoreArgs::port_flag(listener);
        let Some(port) = store.port(listener).filter(|p| *p != 0) else { continue };
        if let Some((_, owner, why)) = taken.iter().find(|(p, _, _)| *p == port) {
            return Err(UsageError::PortCollision { flag, port, taken: owner.clone(), why: why.clone() });
        }
        taken.push((port, format!("--{flag}-port"), String::new()));
    }
    Ok(())
}

/// A port of the store: its flag's, or its default moved as `--base-port` moves the services'
/// (0 stays 0: every port picked free); `None` when moved out of range.
fn store_port(flag: Option<u16>, default: u16, base_port: u16) -> Option<u16> {
    if flag.is_some() {
        return flag;
    }
    if base_port == 0 {
        return Some(0);
    }
    let moved = i32::from(default) + i32::from(base_port) - i32::from(bookinfo_config::DEFAULT_PORT);
    u16::try_from(moved).ok().filter(|p| *p != 0)
}

/// A store that cannot start; a port in use is named with the flag that moves it.
fn store_error(err: SinkError) -> StackError {
    match err {
        SinkError::Bind { addr, what, source } if source.kind() == io::ErrorKind::AddrInUse => {
            StackError::StorePortInUse { port: addr.port(), listener: what, flag: StoreArgs::port_flag(what) }
        }
        other => StackError::Store(other),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn store_ports_move_with_the_base_port_unless_a_flag_sets_them() {
        assert_eq!(store_port(None, 4318, 9080), Some(4318));
        assert_eq!(store_port(None, 4318, 10_080), Some(5318));
        assert_eq!(store_port(Some(4000), 4318, 10_080), Some(4000));
        assert_eq!(store_port(None, 4318, 0), Some(0), "all free");
        assert_eq!(store_port(None, 16_686, 65_000), None, "past 65535");
        assert_eq!(store_port(None, 4318, 4762), None, "moved to 0");
    }

    #[test]
    fn a_store_port_in_use_is_named_with_the_flag_that_moves_it() {
        let nowhere = || -> PathBuf { unreachable!("--traces-file is given") };
        let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = taken.local_addr().unwrap().port().to_string();
        let dir = std::env::temp_dir().join(format!("bookinfo-up-store-{}", std::process::id()));
        let file = dir.join("traces.jsonl");
        for (flag, what) in [("zipkin", "Zipkin"), ("viewer", "trace viewer"), ("otlp", "OTLP/HTTP")] {
            let cli = Cli::try_parse_from([
                "bookinfo",
                "--base-port",
                "0",
                &format!("--{flag}-port"),
                &port,
                "--traces-file",
                file.to_str().unwrap(),
            ])
            .unwrap();
            let err = start_sink(&cli.up.store, 0, nowhere).err().unwrap();
            assert_eq!(
                err.to_string(),
                format!("port {port} ({what}) is in use: see --base-port and --{flag}-port")
            );
        }
        let cli = Cli::try_parse_from(["bookinfo", "--traces-file", file.to_str().unwrap()]).unwrap();
        let err = start_sink(&cli.up.store, 65_000, nowhere).err().unwrap();
        assert_eq!(
            err.to_string(),
            "--base-port 65000 moves the viewer port out of range: set --viewer-port"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_settings_come_from_the_source_handed_in() {
        let cli = Cli::try_parse_from(["bookinfo", "--exe", "bookinfo"]).unwrap();
        let source = [
            ("BOOKINFO_BASE_PORT", "0"),
            ("BOOKINFO_TRACING", "propagate"),
            ("BOOKINFO_WORKERS", "3"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        ];
        let prepared = Prepared::new(&cli.up, &source).unwrap();
        assert_eq!((prepared.base_port, prepared.mode, prepared.workers), (0, TracingMode::Propagate, 3));
        assert!(prepared.sink.is_none(), "spans go to the exporter, not to a store");
        assert_eq!(prepared.exporter.endpoint.as_deref(), Some("http://127.0.0.1:4318"));
        let err = Prepared::new(&cli.up, &[("BOOKINFO_BASE_PORT", "lots")]).err().unwrap();
        assert!(matches!(&err, Error::Config(e) if e.name == "BOOKINFO_BASE_PORT"), "{err}");
    }

    #[test]
    fn without_an_exporter_the_store_writes_in_the_sources_runs_directory() {
        let root = std::env::temp_dir().join(format!("bookinfo-up-runs-{}", std::process::id()));
        let cli = Cli::try_parse_from(["bookinfo", "--exe", "bookinfo", "--base-port", "0"]).unwrap();
        let prepared = Prepared::new(&cli.up, &[("BOOKINFO_RUNS_DIR", root.to_str().unwrap())]).unwrap();
        let sink = prepared.sink.unwrap();
        let file = sink.file.clone().unwrap();
        sink.close();
        assert!(file.starts_with(&root), "{}", file.display());
        assert_eq!(prepared.workers, 1, "one worker per service unless told");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_exporter_is_the_sources() {
        assert_eq!(Exporter::read(&[("OTHER", "x")]), Exporter::default());
        let both = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2/v1/traces"),
        ];
        assert_eq!(
            Exporter::read(&both),
            Exporter { configured: true, endpoint: Some("http://b:2/v1/traces".into()) }
        );
        let console = Exporter::read(&[("OTEL_TRACES_EXPORTER", "console")]);
        assert_eq!(console, Exporter { configured: true, endpoint: None });
        assert_eq!(authority("http://b:2/v1/traces"), "b:2");
    }

    #[test]
    fn an_endpoint_answers_while_something_listens_there() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let exporter = Exporter { configured: true, endpoint: Some(format!("http://{addr}/v1/traces")) };
        assert_eq!(exporter.addr(), Some(addr));
        assert!(exporter.answers());
        drop(listener);
        // Not the freed port, which a test running beside this one may take at once: port 0,
        // where nothing can listen.
        let nowhere =
            Exporter { configured: true, endpoint: Some("http://127.0.0.1:0/v1/traces".to_owned()) };
        assert!(!nowhere.answers());
    }
}
