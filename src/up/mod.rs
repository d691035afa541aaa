//! `bookinfo up`: the whole stack on this machine.
//!
//! Each service runs as its own child process (`bookinfo serve ...`), so each has its own
//! telemetry identity, as pods do; with `--mesh`, each also gets an Envoy sidecar and an
//! ingress gateway fronts productpage ([`mesh`]). Children are supervised as a kubelet would:
//! one that dies is reported and started again after a back-off while the rest keeps serving
//! ([`supervisor`]). The trace store runs beside them on threads of its own. SIGINT or SIGTERM
//! stops everything; no child outlives `up`, even when it is killed.

mod child;
mod envoy;
mod mesh;
mod stack;
mod supervisor;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use bookinfo_config::{Env, Source};
use bookinfo_http::server;
use bookinfo_mesh::Routing;
use bookinfo_mesh::envoy::Tracer;
use bookinfo_propagation::TracingMode;
use bookinfo_telemetry::settings::{
    OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_TRACES_EXPORTER,
};
use bookinfo_traces::sink::Listener;
use bookinfo_traces::{Limits, Sink, SinkError, SinkOptions, file};
use tokio::time::Instant;

use self::stack::{App, Common, STACK, reachable};
use self::supervisor::{Event, Supervisor};
use crate::cli::{StoreArgs, UpArgs};
use crate::error::{Error, SetupError, StackError};
use crate::output;

/// How long all services may take to answer `/health`.
const HEALTH_DEADLINE: Duration = Duration::from_secs(10);

/// One line of the banner's table: name, URL, process id.
struct Row {
    name: String,
    url: String,
    pid: u32,
}

/// Starts the stack and runs until a signal.
pub async fn run(args: UpArgs) -> Result<(), Error> {
    let exe = match &args.exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()?,
    };
    let base_port = args.base_port()?;
    let mode = args.tracing()?;
    let routes = args.routes()?;
    let needed = if args.mesh.compare { 2 } else { 5 };
    if base_port != 0 && base_port > u16::MAX - needed {
        return Err(StackError::NoRoom(base_port).into());
    }
    let routing = load_routes(&routes)?;
    let envoy = if args.mesh.mesh { Some(envoy::find(args.mesh.envoy.as_deref())?) } else { None };
    if base_port != 0 && !args.mesh.mesh {
        check_ports(&args, base_port)?;
    }
    if args.mesh.mesh && exporter_configured() && args.mesh.mesh_tracer != Tracer::Otel {
        return Err(SetupError::ZipkinWithoutStore.into());
    }

    // With nowhere else to send spans, the stack receives them itself.
    let sink = if exporter_configured() { None } else { Some(start_sink(&args, base_port)?) };
    let common = Common {
        exe,
        host: args.host,
        otlp: sink.as_ref().and_then(|s| s.otlp).map(|addr| format!("http://{addr}")),
        log_level: args.log_level.clone(),
        workers: match args.workers {
            Some(workers) => usize::from(workers),
            None => crate::serve::workers(&Env)?.unwrap_or(1),
        },
        routed_users: routing.routed_users(),
    };
    let mut signals = Signals::new()?;
    let mut supervisor = Supervisor::new(!args.no_restarts);
    let started = match &envoy {
        None => start_plain(&mut supervisor, &common, base_port, mode, &routes).await,
        Some(envoy) => {
            start_mesh(
                &mut supervisor,
                &common,
                &args,
                base_port,
                mode,
                routing,
                envoy.clone(),
                sink.as_ref(),
            )
            .await
        }
    };
    let mut banner = match started {
        Ok(banner) => banner,
        Err(err) => {
            supervisor.stop_all().await;
            close(sink).await;
            return Err(err);
        }
    };
    if let Some(sink) = &sink {
        banner.push_str(&store_lines(sink));
    }
    banner.push_str("Open the productpage URL above; press Ctrl-C to stop.\n");
    output::line(&banner);

    loop {
        tokio::select! {
            signal = signals.recv() => {
                output::line(&format!("bookinfo: {signal}: stopping the stack"));
                break;
            }
            event = supervisor.next() => report(&event),
        }
    }
    supervisor.stop_all().await;
    // The services flushed their last spans as they stopped: show those traces too.
    close(sink).await;
    Ok(())
}

fn report(event: &Event) {
    let line = match event {
        Event::Died { name, status, restart_in: Some(wait) } => {
            format!(
                "bookinfo: {name} exited ({status}); restarting it in {}s (--no-restarts to leave it down)",
                wait.as_secs()
            )
        }
        Event::Died { name, status, restart_in: None } => {
            format!("bookinfo: {name} exited ({status}); not restarted")
        }
        Event::Restarted { name, pid } => format!("bookinfo: {name} is running again (pid {pid})"),
        Event::RestartFailed { name, error, retry_in } => {
            format!("bookinfo: {name} did not start again: {error}; trying again in {}s", retry_in.as_secs())
        }
    };
    output::error(&line);
}

async fn close(sink: Option<Sink>) {
    if let Some(sink) = sink {
        let _ = actix_web::rt::task::spawn_blocking(move || sink.close()).await;
    }
}

/// The plain stack: each service on its public port, calling the others directly.
async fn start_plain(
    supervisor: &mut Supervisor,
    common: &Common,
    base_port: u16,
    mode: TracingMode,
    routes: &[PathBuf],
) -> Result<String, Error> {
    let routes: Vec<PathBuf> = routes.iter().map(std::path::absolute).collect::<io::Result<_>>()?;
    let mut started: Vec<(stack::Instance, SocketAddr, u32)> = Vec::new();
    for instance in STACK {
        let find = |pod: &str| started.iter().find(|(i, _, _)| i.pod == pod).map(|(_, addr, _)| *addr);
        let mut upstreams = Vec::new();
        for (upstream, pod) in [
            (bookinfo_productpage::DETAILS, "details"),
            (bookinfo_productpage::REVIEWS, "reviews-v1"),
            (bookinfo_productpage::RATINGS, "ratings"),
        ] {
            if stack::upstreams_of(instance.service).contains(&upstream)
                && let Some(addr) = find(pod)
            {
                upstreams.push((upstream, addr));
            }
        }
        // Without a mesh, productpage spreads its calls over the reviews versions itself.
        let reviews_subsets = if instance.service == crate::service::Service::Productpage {
            started
                .iter()
                .filter(|(i, _, _)| i.service == crate::service::Service::Reviews)
                .map(|(i, addr, _)| (i.version, *addr))
                .collect()
        } else {
            Vec::new()
        };
        let app = App {
            instance,
            name: instance.pod.to_owned(),
            port: if base_port == 0 { 0 } else { base_port + instance.offset },
            mode,
            upstreams,
            reviews_subsets,
            routes: &routes,
            propagators: None,
        };
        let running = supervisor.start(app.spec(common)).await?;
        let addr = running.addr.ok_or_else(|| StackError::NoAddress(instance.pod.to_owned()))?;
        started.push((instance, addr, running.pid));
    }
    wait_healthy(started.iter().map(|(i, addr, _)| (i.pod.to_owned(), reachable(*addr)))).await?;

    let rows: Vec<Row> = STACK
        .iter()
        .rev()
        .filter_map(|i| started.iter().find(|(s, _, _)| s.pod == i.pod))
        .map(|(i, addr, pid)| {
            let path = if i.service == crate::service::Service::Productpage { "/productpage" } else { "" };
            Row { name: i.pod.to_owned(), url: format!("http://{}{path}", reachable(*addr)), pid: *pid }
        })
        .collect();
    let mut banner = table("Bookinfo is running:", &rows);
    banner.push_str(&if routes.is_empty() {
        "Routing: none (calls to reviews spread over v1, v2 and v3).\n".to_owned()
    } else {
        let files: Vec<String> = routes.iter().map(|f| f.display().to_string()).collect();
        format!("Routing: {} (applied by the services themselves)\n", files.join(", "))
    });
    banner.push_str(&tracing_lines(mode, None));
    Ok(banner)
}

/// The stack in a mesh: sidecars, a gateway, and the routing files rendered into them.
#[allow(clippy::too_many_arguments)]
async fn start_mesh(
    supervisor: &mut Supervisor,
    common: &Common,
    args: &UpArgs,
    base_port: u16,
    mode: TracingMode,
    routing: Routing,
    envoy: envoy::Envoy,
    sink: Option<&Sink>,
) -> Result<String, Error> {
    let tracer = args.mesh.mesh_tracer;
    let namespaces = if args.mesh.compare {
        vec![
            ("bookinfo-propagate".to_owned(), TracingMode::Propagate),
            ("bookinfo-otel".to_owned(), TracingMode::Otel),
        ]
    } else {
        vec![("default".to_owned(), mode)]
    };
    if args.mesh.compare && !routing.gateway.is_empty() {
        return Err(SetupError::CompareWithGateway.into());
    }
    let (zipkin, otlp) = match sink {
        Some(sink) => (sink.zipkin, sink.otlp),
        None => (None, exporter_addr()),
    };
    let unused = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
    let dir = match sink.and_then(|s| s.file.as_ref()).and_then(|f| f.parent()) {
        Some(run) => run.join("envoy"),
        None => std::env::temp_dir().join(format!("bookinfo-envoy-{}", std::process::id())),
    };
    let options = mesh::Options {
        namespaces: namespaces.clone(),
        tracer,
        sampling: args.mesh.mesh_sampling,
        envoy: envoy.clone(),
        log_level: args.mesh.mesh_log.clone(),
        zipkin: zipkin.unwrap_or(unused),
        otlp: otlp.unwrap_or(unused),
        dir: dir.clone(),
    };
    let layout = mesh::start(supervisor, common, base_port, routing.clone(), &options).await?;
    wait_healthy(layout.apps.iter().map(|(ns, pod, addr, _)| (format!("{ns}/{pod}"), *addr))).await?;

    let single = namespaces.len() == 1;
    let mut rows = Vec::new();
    for (i, (addr, serves)) in layout.gateway.iter().enumerate() {
        // Side by side: the first listener routes by Host, the others serve one namespace each.
        let name = if single || i == 0 {
            "gateway".to_owned()
        } else {
            format!("gateway/{}", serves.trim_start_matches("bookinfo-"))
        };
        // The listener by Host has no page of its own to open: a browser sends no such Host.
        let url =
            if single || i > 0 { format!("http://{addr}/productpage") } else { format!("http://{addr}") };
        rows.push(Row { name, url, pid: layout.gateway_pid });
    }
    for (ns, pod, app, sidecar) in layout.apps.iter().rev() {
        let name = if single { pod.clone() } else { format!("{ns}/{pod}") };
        // The sidecar's address is the service's; the application's own is private.
        rows.push(Row { name, url: format!("http://{sidecar}  (app {app})"), pid: 0 });
    }
    let title = format!(
        "Bookinfo is running in a mesh: Envoy {} sidecars and gateway, tracer {tracer}, namespace{} {}",
        envoy.version,
        if single { "" } else { "s" },
        namespaces.iter().map(|(ns, m)| format!("{ns} ({m})")).collect::<Vec<_>>().join(", ")
    );
    let mut banner = table(&title, &rows);
    if let Some((_, by_host)) = layout.gateway.first().filter(|_| !single) {
        banner.push_str(&format!("  (gateway: {by_host}, as the Host header says)\n"));
    }
    banner.push_str(&match &args.routes()?[..] {
        [] => "Routing: none (calls to reviews spread over v1, v2 and v3).\n".to_owned(),
        files => {
            let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            format!("Routing: {} (rendered into the sidecars' routes)\n", files.join(", "))
        }
    });
    banner.push_str(&format!("Envoy configuration: {}\n", dir.display()));
    if single {
        banner.push_str(&tracing_lines(mode, Some(tracer)));
    } else {
        banner.push_str(&format!(
            "Tracing: propagate in bookinfo-propagate, otel in bookinfo-otel, the sidecars through Istio's {tracer} provider.\n"
        ));
    }
    if !single {
        banner.push_str(
            "Compare a request of each: bookinfo traces compare latest:productpage.bookinfo-propagate latest:productpage.bookinfo-otel\n",
        );
    }
    Ok(banner)
}

/// The banner's table, then a line per part of the trace store.
fn table(title: &str, rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(0).max(12);
    let mut text = format!("\n{title}\n");
    for row in rows {
        let pid = if row.pid == 0 { String::new() } else { format!("  (pid {})", row.pid) };
        text.push_str(&format!("  {:<width$} {}{pid}\n", row.name, row.url));
    }
    text
}

fn tracing_lines(mode: TracingMode, tracer: Option<Tracer>) -> String {
    let services = match mode {
        TracingMode::Propagate => "propagate (headers forwarded; the services make no spans)".to_owned(),
        TracingMode::None => "none (no trace context forwarded: traces fall apart at every hop)".to_owned(),
        TracingMode::Otel => match exporter_endpoint() {
            None if exporter_configured() => "otel; spans exported as OTEL_TRACES_EXPORTER says".to_owned(),
            None => "otel; the services send their spans to the trace store".to_owned(),
            Some(endpoint) if answers(&endpoint) => format!("otel; spans exported to {endpoint}"),
            Some(endpoint) => format!(
                "otel; spans exported to {endpoint} (nothing answers there now: spans are dropped until it does)"
            ),
        },
    };
    let sidecars = tracer.map(|t| format!(", the sidecars through Istio's {t} provider")).unwrap_or_default();
    format!("Tracing: {services}{sidecars}.\n")
}

/// Whether the user said where spans go.
fn exporter_configured() -> bool {
    [OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_TRACES_EXPORTER]
        .iter()
        .any(|name| Env.get(name).is_some())
}

fn exporter_endpoint() -> Option<String> {
    [OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT].iter().find_map(|name| Env.get(name))
}

/// The exporter endpoint's address, where the sidecars' OTLP goes when it is set.
fn exporter_addr() -> Option<SocketAddr> {
    let endpoint = exporter_endpoint()?;
    let authority = endpoint.split("://").nth(1).unwrap_or(&endpoint).split('/').next()?.to_owned();
    authority.to_socket_addrs().ok()?.next()
}

/// Whether something accepts connections at `endpoint` (`http://host:port/...`).
fn answers(endpoint: &str) -> bool {
    let authority = endpoint.split("://").nth(1).unwrap_or(endpoint).split('/').next().unwrap_or_default();
    authority
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok())
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
fn check_ports(args: &UpArgs, base_port: u16) -> Result<(), Error> {
    let mut by_port: Vec<_> = STACK.iter().collect();
    by_port.sort_by_key(|instance| instance.offset);
    for instance in by_port {
        let port = base_port + instance.offset;
        match server::bind(Some(args.host), port) {
            Ok(listener) => drop(listener),
            Err(source @ server::BindError::InUse { .. }) => {
                return Err(StackError::PortTaken { source, pod: instance.pod }.into());
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Polls each service's `/health` until it answers 200 (health probes go to the application,
/// never through the mesh).
async fn wait_healthy(services: impl Iterator<Item = (String, SocketAddr)>) -> Result<(), Error> {
    let client = awc::Client::builder().timeout(Duration::from_secs(1)).finish();
    let deadline = Instant::now() + HEALTH_DEADLINE;
    for (name, addr) in services {
        let url = format!("http://{addr}/health");
        loop {
            match client.get(&url).send().await {
                Ok(response) if response.status().is_success() => break,
                _ if Instant::now() >= deadline => {
                    return Err(StackError::Unhealthy { name, url }.into());
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
    Ok(())
}

/// The trace store's receivers, viewer and file, on the ports the flags or `--base-port` say.
fn start_sink(args: &UpArgs, base_port: u16) -> Result<Sink, Error> {
    let store = &args.store;
    let at = |listener: Listener| -> Result<Option<SocketAddr>, StackError> {
        let port = store_port(store.port(listener), listener.default_port(), base_port)
            .ok_or(StackError::StorePortOutOfRange { base_port, flag: StoreArgs::port_flag(listener) })?;
        Ok(Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)))
    };
    let file = match &store.traces_file {
        Some(file) => file.clone(),
        None => file::new_run_dir(&file::runs_root())?.join(file::FILE_NAME),
    };
    let options = SinkOptions {
        otlp: at(Listener::Otlp)?,
        zipkin: at(Listener::Zipkin)?,
        query: at(Listener::Viewer)?,
        limits: Limits {
            bytes: usize::try_from(store.trace_memory).unwrap_or(usize::MAX),
            spans_per_trace: store.trace_spans.max(1),
        },
        body_limit: usize::try_from(store.trace_body_limit).unwrap_or(usize::MAX),
        file: Some((file, store.traces_file_size)),
        print: !store.quiet_traces,
        ..SinkOptions::default()
    };
    Sink::start(options).map_err(|err| store_error(err).into())
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

/// Where the trace store listens and writes, for the banner.
fn store_lines(sink: &Sink) -> String {
    let url = |addr: Option<SocketAddr>| addr.map(|a| format!("http://{a}")).unwrap_or_else(|| "-".into());
    let mut lines = format!("Traces: viewer {}\n", url(sink.query));
    lines.push_str(&format!(
        "        receiving OTLP on {} and Zipkin on {}\n",
        url(sink.otlp),
        url(sink.zipkin)
    ));
    if let Some(file) = &sink.file {
        lines.push_str(&format!("        written to {}\n", file.display()));
    }
    lines.push_str(if sink.printing() {
        "        and printed here once finished\n"
    } else {
        "        (not printed here: --quiet-traces)\n"
    });
    lines
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from the start, so none is missed.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Waits for either and names it.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
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
            let err = start_sink(&cli.up, 0).err().unwrap();
            assert_eq!(
                err.to_string(),
                format!("port {port} ({what}) is in use: see --base-port and --{flag}-port")
            );
        }
        let cli = Cli::try_parse_from(["bookinfo", "--traces-file", file.to_str().unwrap()]).unwrap();
        let err = start_sink(&cli.up, 65_000).err().unwrap();
        assert_eq!(
            err.to_string(),
            "--base-port 65000 moves the viewer port out of range: set --viewer-port"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
