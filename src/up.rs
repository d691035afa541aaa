//! `bookinfo up`: the whole stack on this machine.
//!
//! Each service runs as its own child process (`bookinfo serve ...`), so each has its own
//! telemetry identity, as pods do. Children start in dependency order, each told where its
//! upstreams listen; their output is shown with a name prefix. On SIGINT or SIGTERM every child
//! is stopped; if one dies, it is reported with its exit status and the rest are stopped.

use std::collections::HashSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bookinfo_common::{router, server};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, BufReader, Lines};
use tokio::process::Command;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

use crate::cli::{Service, Tracing, UpArgs, Version};
use crate::error::Error;
use crate::serve::{READY, STACK_PARENT};
use bookinfo_traces::sink::{OTLP_PORT, VIEWER_PORT, ZIPKIN_PORT};
use bookinfo_traces::{Limits, Sink, SinkOptions, file};

/// How long a service may take to print that it listens.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long all services may take to answer `/health`.
const HEALTH_DEADLINE: Duration = Duration::from_secs(10);
/// How long services may take to stop after SIGTERM before they are killed (their own
/// graceful-stop budget is 10 s).
const STOP_DEADLINE: Duration = Duration::from_secs(15);

/// One process of the stack.
#[derive(Debug, Clone, Copy)]
struct Instance {
    /// Name shown in output and reported as the pod name (`HOSTNAME`).
    name: &'static str,
    service: Service,
    version: Option<Version>,
    /// Port offset from `--base-port`.
    offset: u16,
}

/// The stack, in start order: every service after the ones it calls.
const STACK: [Instance; 6] = [
    Instance { name: "ratings", service: Service::Ratings, version: None, offset: 5 },
    Instance { name: "details", service: Service::Details, version: None, offset: 1 },
    Instance { name: "reviews-v1", service: Service::Reviews, version: Some(Version::V1), offset: 2 },
    Instance { name: "reviews-v2", service: Service::Reviews, version: Some(Version::V2), offset: 3 },
    Instance { name: "reviews-v3", service: Service::Reviews, version: Some(Version::V3), offset: 4 },
    Instance { name: "productpage", service: Service::Productpage, version: None, offset: 0 },
];

/// Variables a child must not inherit from the shell: `up` sets what each child needs, and each
/// service has a telemetry identity of its own.
const SCRUBBED: [&str; 16] = [
    "OTEL_SERVICE_NAME",
    "BOOKINFO_ROUTES",
    "SERVICES_DOMAIN",
    "DETAILS_HOSTNAME",
    "DETAILS_SERVICE_PORT",
    "REVIEWS_HOSTNAME",
    "REVIEWS_SERVICE_PORT",
    "RATINGS_HOSTNAME",
    "RATINGS_SERVICE_PORT",
    "BOOKINFO_DETAILS_SUBSETS",
    "BOOKINFO_REVIEWS_SUBSETS",
    "BOOKINFO_RATINGS_SUBSETS",
    "ENABLE_RATINGS",
    "STAR_COLOR",
    "PORT",
    "BOOKINFO_HOST",
];

/// A started child.
#[derive(Debug, Clone)]
struct Running {
    instance: Instance,
    pid: u32,
    addr: SocketAddr,
}

type Exit = (&'static str, io::Result<ExitStatus>);

/// Starts the stack and runs until a signal or a child's death.
pub async fn run(args: UpArgs) -> Result<(), Error> {
    let exe = match &args.exe {
        Some(exe) => exe.clone(),
        None => std::env::current_exe()?,
    };
    if args.base_port != 0 && args.base_port > u16::MAX - 5 {
        return Err(Error::Stack(format!("--base-port {} leaves no room for six ports", args.base_port)));
    }
    check_ports(&args)?;
    let routes = check_routes(&args.routes)?;

    // With nowhere else to send spans, the stack receives them itself.
    let sink = if exporter_configured() { None } else { Some(start_sink(&args)?) };

    let (exits_tx, mut exits) = mpsc::unbounded_channel::<Exit>();
    let sink_endpoint = sink.as_ref().and_then(|sink| sink.otlp).map(|addr| format!("http://{addr}"));
    let mut stack =
        Stack { tracing: args.tracing, routes, sink_endpoint, workers: args.workers, ..Stack::default() };
    let started = match stack.start(&exe, &args, &exits_tx).await {
        Ok(()) => stack.wait_healthy().await,
        Err(err) => Err(err),
    };
    if let Err(err) = started {
        stack.stop(&mut exits).await;
        return Err(err);
    }
    stack.print_table(sink.as_ref());

    let outcome = tokio::select! {
        signal = stop_signal() => {
            println!("bookinfo: {signal}: stopping the stack");
            Ok(())
        }
        Some((name, status)) = exits.recv() => {
            // Said at once: stopping the rest takes a while.
            eprintln!("bookinfo: {name} exited ({})", describe(&status));
            stack.exited.insert(name);
            Err(Error::Stack(format!("{name} exited unexpectedly ({}); stopped the stack", describe(&status))))
        }
    };
    stack.stop(&mut exits).await;
    // The services flushed their last spans as they stopped: show those traces too.
    if let Some(sink) = sink {
        let _ = actix_web::rt::task::spawn_blocking(move || sink.close()).await;
    }
    outcome
}

/// The trace store's receivers, viewer and file, on the ports the flags or `--base-port` say.
fn start_sink(args: &UpArgs) -> Result<Sink, Error> {
    let store = &args.store;
    // The store's ports move with the services' (0 stays 0: every port picked free).
    let port = |flag: Option<u16>, default: u16, name: &str| -> Result<u16, Error> {
        if let Some(port) = flag {
            return Ok(port);
        }
        if args.base_port == 0 {
            return Ok(0);
        }
        let moved =
            i32::from(default) + i32::from(args.base_port) - i32::from(bookinfo_common::config::DEFAULT_PORT);
        u16::try_from(moved).ok().filter(|p| *p != 0).ok_or_else(|| {
            Error::Stack(format!(
                "--base-port {} moves the {name} port out of range: set --{name}-port",
                args.base_port
            ))
        })
    };
    let at = |port: u16| Some(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
    let file = match &store.traces_file {
        Some(file) => file.clone(),
        None => file::new_run_dir(&file::runs_root())?.join(file::FILE_NAME),
    };
    let options = SinkOptions {
        otlp: at(port(store.otlp_port, OTLP_PORT, "otlp")?),
        zipkin: at(port(store.zipkin_port, ZIPKIN_PORT, "zipkin")?),
        query: at(port(store.viewer_port, VIEWER_PORT, "viewer")?),
        limits: Limits {
            bytes: usize::try_from(store.trace_memory).unwrap_or(usize::MAX),
            spans_per_trace: store.trace_spans.max(1),
        },
        body_limit: usize::try_from(store.trace_body_limit).unwrap_or(usize::MAX),
        file: Some((file, store.traces_file_size)),
        print: !store.quiet_traces,
        ..SinkOptions::default()
    };
    Sink::start(options).map_err(|err| match err {
        bookinfo_traces::SinkError::Bind { addr, what, source }
            if source.kind() == io::ErrorKind::AddrInUse =>
        {
            Error::Stack(format!(
                "port {} ({what}) is in use: see --base-port and --{}-port",
                addr.port(),
                flag_of(what)
            ))
        }
        other => Error::Stack(other.to_string()),
    })
}

fn flag_of(what: &str) -> &'static str {
    match what {
        "Zipkin" => "zipkin",
        "trace viewer" => "viewer",
        _ => "otlp",
    }
}

/// Loads the routing files once, to fail early and to report what is not applied locally; the
/// services get them by absolute path.
fn check_routes(files: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let (_, notes) = router::load(files)?;
    for note in notes {
        println!("bookinfo: routes: {note}");
    }
    files.iter().map(|file| Ok(std::path::absolute(file)?)).collect()
}

/// Whether the user said where spans go.
fn exporter_configured() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Fails at once, naming the port, when one is taken: clearer than six children failing.
fn check_ports(args: &UpArgs) -> Result<(), Error> {
    if args.base_port == 0 {
        return Ok(());
    }
    let mut by_port: Vec<_> = STACK.iter().collect();
    by_port.sort_by_key(|instance| instance.offset);
    for instance in by_port {
        let port = args.base_port + instance.offset;
        match server::bind(Some(args.host), port) {
            Ok(listener) => drop(listener),
            Err(err @ server::BindError::InUse { .. }) => {
                return Err(Error::Stack(format!("{err}: {} needs it (see --base-port)", instance.name)));
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

#[derive(Default)]
struct Stack {
    tracing: Tracing,
    routes: Vec<PathBuf>,
    sink_endpoint: Option<String>,
    workers: u16,
    running: Vec<Running>,
    exited: HashSet<&'static str>,
}

impl Stack {
    async fn start(
        &mut self,
        exe: &Path,
        args: &UpArgs,
        exits: &mpsc::UnboundedSender<Exit>,
    ) -> Result<(), Error> {
        for instance in STACK {
            let port = if args.base_port == 0 { 0 } else { args.base_port + instance.offset };
            let env = self.child_env(instance.service);
            let running = spawn(exe, instance, args.host, port, &env, exits.clone()).await?;
            self.running.push(running);
        }
        Ok(())
    }

    /// The variables of a child: its tracing mode, where its upstreams listen.
    fn child_env(&self, service: Service) -> Vec<(String, String)> {
        let find = |name: &str| self.running.iter().find(|r| r.instance.name == name);
        let mode = match self.tracing {
            Tracing::Propagate => "propagate",
            Tracing::Otel => "otel",
        };
        let mut env = vec![
            ("BOOKINFO_TRACING".to_owned(), mode.to_owned()),
            (bookinfo_common::config::WORKERS.to_owned(), self.workers.to_string()),
        ];
        if matches!(service, Service::Productpage | Service::Reviews) && !self.routes.is_empty() {
            let files: Vec<String> = self.routes.iter().map(|f| f.display().to_string()).collect();
            env.push(("BOOKINFO_ROUTES".to_owned(), files.join(",")));
        }
        if let Some(endpoint) = &self.sink_endpoint {
            env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint.clone()));
            env.push(("OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(), "http/protobuf".to_owned()));
            if std::env::var_os("OTEL_BSP_SCHEDULE_DELAY").is_none() {
                // Traces show up as soon as they are done, not five seconds later.
                env.push(("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()));
            }
        }
        let mut point = |prefix: &str, running: Option<&Running>| {
            if let Some(running) = running {
                let addr = reachable(running.addr);
                env.push((format!("{prefix}_HOSTNAME"), addr.ip().to_string()));
                env.push((format!("{prefix}_SERVICE_PORT"), addr.port().to_string()));
            }
        };
        match service {
            Service::Productpage => {
                point("DETAILS", find("details"));
                point("REVIEWS", find("reviews-v1"));
                point("RATINGS", find("ratings"));
                let subsets: Vec<String> = self
                    .running
                    .iter()
                    .filter(|r| r.instance.service == Service::Reviews)
                    .filter_map(|r| {
                        Some(format!(
                            "{}=http://{}",
                            r.instance.name.strip_prefix("reviews-")?,
                            reachable(r.addr)
                        ))
                    })
                    .collect();
                env.push(("BOOKINFO_REVIEWS_SUBSETS".to_owned(), subsets.join(",")));
            }
            Service::Reviews => point("RATINGS", find("ratings")),
            Service::Details | Service::Ratings => {}
        }
        env
    }

    async fn wait_healthy(&self) -> Result<(), Error> {
        let client = awc::Client::builder().timeout(Duration::from_secs(1)).finish();
        let deadline = Instant::now() + HEALTH_DEADLINE;
        for running in &self.running {
            let url = format!("http://{}/health", reachable(running.addr));
            loop {
                match client.get(&url).send().await {
                    Ok(response) if response.status().is_success() => break,
                    _ if Instant::now() >= deadline => {
                        return Err(Error::Stack(format!("{} does not answer {url}", running.instance.name)));
                    }
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
        Ok(())
    }

    fn print_table(&self, sink: Option<&Sink>) {
        println!();
        println!("Bookinfo is running:");
        for running in
            STACK.iter().rev().filter_map(|i| self.running.iter().find(|r| r.instance.name == i.name))
        {
            let addr = reachable(running.addr);
            let path = if running.instance.service == Service::Productpage { "/productpage" } else { "" };
            println!("  {:<12} http://{addr}{path}  (pid {})", running.instance.name, running.pid);
        }
        if self.routes.is_empty() {
            println!("Routing: none (calls to reviews spread over v1, v2 and v3).");
        } else {
            let files: Vec<String> = self.routes.iter().map(|f| f.display().to_string()).collect();
            println!("Routing: {}", files.join(", "));
        }
        match (self.tracing, sink) {
            (Tracing::Propagate, _) => {
                println!("Tracing: propagate (headers forwarded; the services make no spans).");
            }
            (Tracing::Otel, Some(_)) => {
                println!("Tracing: otel; the services send their spans to the trace store.")
            }
            (Tracing::Otel, None) => {
                let endpoint = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
                    .iter()
                    .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()));
                match endpoint {
                    Some(endpoint) => println!("Tracing: otel; spans exported to {endpoint}."),
                    None => println!("Tracing: otel; spans exported as OTEL_TRACES_EXPORTER says."),
                }
            }
        }
        if let Some(sink) = sink {
            let url =
                |addr: Option<SocketAddr>| addr.map(|a| format!("http://{a}")).unwrap_or_else(|| "-".into());
            println!("Traces: viewer {}", url(sink.query));
            println!("        receiving OTLP on {} and Zipkin on {}", url(sink.otlp), url(sink.zipkin));
            if let Some(file) = &sink.file {
                println!("        written to {}", file.display());
            }
            if self.tracing == Tracing::Otel && !sink.printing() {
                println!("        (not printed here: --quiet-traces)");
            } else if self.tracing == Tracing::Otel {
                println!("        and printed here once finished");
            }
        }
        println!("Open the productpage URL above; press Ctrl-C to stop.");
        println!();
    }

    /// SIGTERM to every child still running, then SIGKILL to those not gone in time.
    async fn stop(&mut self, exits: &mut mpsc::UnboundedReceiver<Exit>) {
        let alive = |stack: &Stack| -> Vec<Running> {
            stack.running.iter().filter(|r| !stack.exited.contains(r.instance.name)).cloned().collect()
        };
        signal_all(&alive(self), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_DEADLINE;
        while !alive(self).is_empty() {
            match timeout_at(deadline, exits.recv()).await {
                Ok(Some((name, status))) => {
                    if !matches!(&status, Ok(s) if s.success()) {
                        eprintln!("bookinfo: {name} stopped ({})", describe(&status));
                    }
                    self.exited.insert(name);
                }
                Ok(None) => break,
                Err(_) => {
                    let stuck = alive(self);
                    let names: Vec<_> = stuck.iter().map(|r| r.instance.name).collect();
                    eprintln!("bookinfo: killing {} after {STOP_DEADLINE:?}", names.join(", "));
                    signal_all(&stuck, Signal::SIGKILL);
                    break;
                }
            }
        }
    }
}

fn signal_all(running: &[Running], signal: Signal) {
    for child in running {
        if let Ok(pid) = i32::try_from(child.pid) {
            // The child may have exited since; ESRCH is fine.
            let _ = kill(Pid::from_raw(pid), signal);
        }
    }
}

/// Starts one child and waits until it prints that it listens.
async fn spawn(
    exe: &Path,
    instance: Instance,
    host: IpAddr,
    port: u16,
    env: &[(String, String)],
    exits: mpsc::UnboundedSender<Exit>,
) -> Result<Running, Error> {
    let mut command = Command::new(exe);
    command
        .args(["serve", instance.service.name(), "--port", &port.to_string(), "--host", &host.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(version) = instance.version {
        command.args(["--version", version_name(version)]);
    }
    for name in SCRUBBED {
        command.env_remove(name);
    }
    if instance.service != Service::Ratings {
        // It selects ratings' fault modes; elsewhere it would only mislabel the service.
        command.env_remove("SERVICE_VERSION");
    }
    command
        .env(STACK_PARENT, std::process::id().to_string())
        .env("HOSTNAME", instance.name)
        .envs(env.iter().map(|(k, v)| (k, v)));
    let mut child =
        command.spawn().map_err(|err| Error::Stack(format!("cannot start {}: {err}", exe.display())))?;
    let pid = child.id().unwrap_or_default();
    let name = instance.name;
    if let Some(stderr) = child.stderr.take() {
        actix_web::rt::spawn(forward(name, BufReader::new(stderr).lines(), true));
    }
    let Some(stdout) = child.stdout.take() else {
        return Err(Error::Stack(format!("{name}: no standard output")));
    };
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + START_DEADLINE;
    let addr = loop {
        match timeout_at(deadline, lines.next_line()).await {
            Ok(Ok(Some(line))) => match ready_addr(&line) {
                Some(addr) => break addr,
                None => println!("{name:>11} | {line}"),
            },
            Ok(Ok(None) | Err(_)) => {
                let status = child.wait().await;
                return Err(Error::Stack(format!(
                    "{name} stopped before it was ready ({})",
                    describe(&status)
                )));
            }
            Err(_) => {
                return Err(Error::Stack(format!("{name} did not start within {START_DEADLINE:?}")));
            }
        }
    };
    actix_web::rt::spawn(forward(name, lines, false));
    actix_web::rt::spawn(async move {
        let status = child.wait().await;
        // The receiver is gone only once `up` is done with the children.
        let _ = exits.send((name, status));
    });
    Ok(Running { instance, pid, addr })
}

/// Shows a child's output lines, prefixed with its name.
async fn forward<R: AsyncBufRead + Unpin>(name: &'static str, mut lines: Lines<R>, to_stderr: bool) {
    while let Ok(Some(line)) = lines.next_line().await {
        if to_stderr {
            eprintln!("{name:>11} | {line}");
        } else {
            println!("{name:>11} | {line}");
        }
    }
}

/// The address in a `bookinfo: ready: NAME listening on http://ADDR` line.
fn ready_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.strip_prefix(READY)?;
    let (_, addr) = rest.split_once("http://")?;
    addr.trim().parse().ok()
}

/// Where to reach a listener: a wildcard address is reached on loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

fn version_name(version: Version) -> &'static str {
    match version {
        Version::V1 => "v1",
        Version::V2 => "v2",
        Version::V3 => "v3",
    }
}

fn describe(status: &io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(err) => format!("status unknown: {err}"),
    }
}

/// Waits for SIGINT (Ctrl-C) or SIGTERM and names it.
async fn stop_signal() -> &'static str {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        () = terminate => "SIGTERM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_give_the_address() {
        let line = format!("{READY} details listening on http://127.0.0.1:9081");
        assert_eq!(ready_addr(&line), Some("127.0.0.1:9081".parse().unwrap()));
        assert_eq!(ready_addr("2026-11-23 INFO access ..."), None);
    }

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        assert_eq!(reachable("0.0.0.0:1".parse().unwrap()), "127.0.0.1:1".parse().unwrap());
        assert_eq!(reachable("[::]:1".parse().unwrap()), "[::1]:1".parse().unwrap());
    }

    #[test]
    fn the_stack_starts_every_service_after_its_upstreams() {
        let position = |name: &str| STACK.iter().position(|i| i.name == name).unwrap();
        assert!(position("ratings") < position("reviews-v2"));
        assert!(position("details") < position("productpage"));
        assert!(position("reviews-v3") < position("productpage"));
        let mut offsets: Vec<_> = STACK.iter().map(|i| i.offset).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, [0, 1, 2, 3, 4, 5]);
    }
}
