//! The trace sink of the local stack: receivers for the services' and sidecars' spans, the
//! bounded store behind them, a query API and web viewer on it, and a background thread that
//! shows each finished trace on the terminal and writes it to the run's file.
//!
//! Nothing here runs on the caller's thread: the servers run on a thread of their own, with
//! one worker each, and printing and writing on another, so a flood of spans, a huge trace or
//! a slow terminal never delays whoever started the sink. What the store takes is written, or
//! counted and said on standard error within a second ([`Reporter`]): spans past a trace's cap,
//! values cut to the span limits, exports refused for now (429), spans the file did not take.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};

use crate::file::{Run, Writer, WriterCounts};
use crate::intake::Intake;
use crate::render::{self, Options};
use crate::store::{Limits, Stats, Store};
use crate::trace::{Trace, only_health_checks};
use crate::{intake, limits, query};

/// The port OTLP/HTTP collectors listen on.
pub const OTLP_PORT: u16 = 4318;
/// The port Zipkin servers listen on.
pub const ZIPKIN_PORT: u16 = 9411;
/// The port of Jaeger's query service and UI.
pub const VIEWER_PORT: u16 = 16686;

/// A trace is shown and written once no span of it has arrived for this long.
pub const QUIET: Duration = Duration::from_millis(1000);
/// How often the flusher looks for quiet traces.
const TICK: Duration = Duration::from_millis(100);
/// Bytes of spans the flusher takes out of the store at a time: spans handed out may be
/// evicted while they are written, so what is in hand stays small.
const BATCH_BYTES: usize = 1024 * 1024;

/// What a sink listens on and keeps.
#[derive(Debug)]
pub struct SinkOptions {
    /// OTLP/HTTP receiver (`/v1/traces`), if any.
    pub otlp: Option<SocketAddr>,
    /// Zipkin v2 receiver (`/api/v2/spans`), if any.
    pub zipkin: Option<SocketAddr>,
    /// Query API and web viewer, if any.
    pub query: Option<SocketAddr>,
    /// Memory bounds of the store.
    pub limits: Limits,
    /// Largest request body accepted (inflated, for gzip).
    pub body_limit: usize,
    /// Memory the bodies being received may take together (past it, exports get 429).
    pub receiving: usize,
    /// Where finished traces are written, and the size past which the file is rotated.
    pub file: Option<(PathBuf, u64)>,
    /// The run directory the file is in, held for as long as the sink runs.
    pub run: Option<Run>,
    /// Print finished traces on standard output.
    pub print: bool,
    /// Trees printed per second at most; the rest are counted.
    pub prints_per_second: u32,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            otlp: None,
            zipkin: None,
            query: None,
            limits: Limits::default(),
            body_limit: 4 * 1024 * 1024,
            receiving: 4 * 1024 * 1024,
            file: None,
            run: None,
            print: false,
            prints_per_second: 10,
        }
    }
}

/// What a sink listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// The OTLP/HTTP receiver.
    Otlp,
    /// The Zipkin receiver.
    Zipkin,
    /// The query API and web viewer.
    Viewer,
}

impl Listener {
    /// The port it takes by default, the one the tools it stands in for take.
    pub fn default_port(self) -> u16 {
        match self {
            Listener::Otlp => OTLP_PORT,
            Listener::Zipkin => ZIPKIN_PORT,
            Listener::Viewer => VIEWER_PORT,
        }
    }
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Listener::Otlp => "OTLP/HTTP",
            Listener::Zipkin => "Zipkin",
            Listener::Viewer => "trace viewer",
        })
    }
}

/// Why a sink cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A port is taken or cannot be bound.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What it is for.
        what: Listener,
        /// The system's error.
        source: io::Error,
    },
    /// The trace file cannot be opened.
    #[error("cannot write traces to {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// A thread or server cannot start.
    #[error("cannot start the trace sink: {0}")]
    Start(#[from] io::Error),
}

/// What the receivers, the query API and the flusher share.
pub struct Shared {
    /// The store.
    pub store: Mutex<Store>,
    /// Largest request body.
    pub body_limit: usize,
    /// The file traces are written to, if any.
    pub file: Option<PathBuf>,
    /// The receivers' counts, and their memory for bodies.
    pub intake: Intake,
    /// The file writer's counts, if a file is written.
    pub writer: Option<WriterCounts>,
}

impl Shared {
    /// The store, locked (a panic elsewhere never makes it unusable).
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running sink.
pub struct Sink {
    /// Where OTLP/HTTP is received.
    pub otlp: Option<SocketAddr>,
    /// Where Zipkin v2 is received.
    pub zipkin: Option<SocketAddr>,
    /// Where the query API and viewer listen.
    pub query: Option<SocketAddr>,
    /// The file traces are written to.
    pub file: Option<PathBuf>,
    run: Option<Run>,
    printing: bool,
    shared: Arc<Shared>,
    servers: Vec<ServerHandle>,
    server_thread: Option<JoinHandle<()>>,
    stop_flusher: Option<mpsc::Sender<()>>,
    flusher: Option<JoinHandle<()>>,
}

impl Sink {
    /// Binds every port (so a taken one fails here, named), then starts the servers and the
    /// flusher on threads of their own, and waits until the servers run (blocking: call it off
    /// an async runtime's thread).
    ///
    /// # Errors
    /// A port cannot be bound, the file cannot be opened, or a thread cannot start.
    pub fn start(options: SinkOptions) -> Result<Self, SinkError> {
        let store = Store::new(options.limits);
        Self::start_with(options, store)
    }

    /// [`start`](Self::start), with a store filled beforehand (from a saved file, say); the
    /// store's own limits hold.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_with(mut options: SinkOptions, store: Store) -> Result<Self, SinkError> {
        let run = options.run.take();
        match Self::start_on(options, store) {
            Ok(sink) => Ok(Self { run, ..sink }),
            Err(err) => {
                // A sink that never ran leaves no run behind.
                if let Some(run) = run {
                    run.discard();
                }
                Err(err)
            }
        }
    }

    fn start_on(options: SinkOptions, store: Store) -> Result<Self, SinkError> {
        let listeners = Listeners::bind(&options)?;
        let (otlp, zipkin, query) = (
            listeners.addr(Listener::Otlp),
            listeners.addr(Listener::Zipkin),
            listeners.addr(Listener::Viewer),
        );
        let writer = match &options.file {
            Some((path, max)) => Some(
                Writer::start(path.clone(), *max)
                    .map_err(|source| SinkError::File { path: path.clone(), source })?,
            ),
            None => None,
        };
        let file = writer.as_ref().map(|w| w.path().to_path_buf());
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            body_limit: options.body_limit,
            file: file.clone(),
            intake: Intake::new(options.receiving.max(options.body_limit)),
            writer: writer.as_ref().map(Writer::counts),
        });
        let (server_thread, servers) = serve(listeners, shared.clone())?;
        let printer = Printer::new(options.print, options.prints_per_second, query);
        let reporter = Reporter::new(options.limits, file.clone());
        let (stop_flusher, stopped) = mpsc::channel();
        let flusher = Flusher { shared: shared.clone(), writer, printer, reporter };
        let flusher =
            std::thread::Builder::new().name("trace-flush".into()).spawn(move || flusher.run(&stopped))?;
        Ok(Self {
            otlp,
            zipkin,
            query,
            file,
            run: None,
            printing: options.print,
            shared,
            servers,
            server_thread: Some(server_thread),
            stop_flusher: Some(stop_flusher),
            flusher: Some(flusher),
        })
    }

    /// Whether finished traces are printed.
    pub fn printing(&self) -> bool {
        self.printing
    }

    /// The store's counts.
    pub fn stats(&self) -> Stats {
        self.shared.store().stats()
    }

    /// Stops, as [`close`](Self::close) does, and removes the run directory it wrote in, if
    /// it made one: a stack that failed to start leaves no run behind to be taken for the
    /// latest.
    pub fn discard(mut self) {
        let run = self.run.take();
        self.close();
        if let Some(run) = run {
            run.discard();
        }
    }

    /// Stops receiving, shows and writes what is left, and waits for the threads (blocking:
    /// call it off an async runtime's thread).
    pub fn close(mut self) {
        for server in &self.servers {
            // Stopping drops the server future; waiting on it needs no runtime of ours.
            drop(server.stop(true));
        }
        if let Some(thread) = self.server_thread.take() {
            let _ = thread.join();
        }
        self.stop_flusher.take();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.join();
        }
    }
}

/// The sink's sockets, bound before any thread starts.
struct Listeners {
    otlp: Option<TcpListener>,
    zipkin: Option<TcpListener>,
    query: Option<TcpListener>,
}

impl Listeners {
    fn bind(options: &SinkOptions) -> Result<Self, SinkError> {
        let bind = |addr: Option<SocketAddr>, what| -> Result<Option<TcpListener>, SinkError> {
            addr.map(|addr| TcpListener::bind(addr).map_err(|source| SinkError::Bind { addr, what, source }))
                .transpose()
        };
        Ok(Self {
            otlp: bind(options.otlp, Listener::Otlp)?,
            zipkin: bind(options.zipkin, Listener::Zipkin)?,
            query: bind(options.query, Listener::Viewer)?,
        })
    }

    /// Where `listener` listens, if it does.
    fn addr(&self, listener: Listener) -> Option<SocketAddr> {
        let socket = match listener {
            Listener::Otlp => &self.otlp,
            Listener::Zipkin => &self.zipkin,
            Listener::Viewer => &self.query,
        };
        socket.as_ref().and_then(|s| s.local_addr().ok())
    }
}

/// Runs the receivers and the query API on a thread of their own, one worker each; answers
/// once they run, with their handles.
fn serve(
    listeners: Listeners,
    shared: Arc<Shared>,
) -> Result<(JoinHandle<()>, Vec<ServerHandle>), SinkError> {
    let (handles_tx, handles_rx) = mpsc::channel();
    let thread = std::thread::Builder::new().name("trace-sink".into()).spawn(move || {
        let report = handles_tx.clone();
        let result = actix_web::rt::System::new().block_on(async move {
            let running = servers(listeners, &shared)?;
            let _ =
                handles_tx.send(Ok(running.iter().map(actix_web::dev::Server::handle).collect::<Vec<_>>()));
            // Each server runs as its own task; this thread waits for all to stop.
            let tasks: Vec<_> = running.into_iter().map(actix_web::rt::spawn).collect();
            for task in tasks {
                if let Ok(result) = task.await {
                    result?;
                }
            }
            Ok::<(), io::Error>(())
        });
        if let Err(err) = result {
            let _ = report.send(Err(err));
        }
    })?;
    match handles_rx.recv() {
        Ok(Ok(handles)) => Ok((thread, handles)),
        Ok(Err(err)) => Err(SinkError::Start(err)),
        Err(_) => Err(SinkError::Start(io::Error::other("the server thread stopped"))),
    }
}

/// The intake server (OTLP and Zipkin on one) and the query server, as their listeners ask.
fn servers(listeners: Listeners, shared: &Arc<Shared>) -> io::Result<Vec<actix_web::dev::Server>> {
    let mut running = Vec::new();
    let intake_listeners: Vec<TcpListener> = listeners.otlp.into_iter().chain(listeners.zipkin).collect();
    if !intake_listeners.is_empty() {
        let data = web::Data::from(shared.clone());
        let mut server = HttpServer::new(move || App::new().app_data(data.clone()).configure(intake::routes))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1);
        for listener in intake_listeners {
            server = server.listen(listener)?;
        }
        running.push(server.run());
    }
    if let Some(listener) = listeners.query {
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(query::routes))
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen(listener)?
            .run();
        running.push(server);
    }
    Ok(running)
}

/// Shows and writes each trace once it is quiet, until told to stop; then everything left.
struct Flusher {
    shared: Arc<Shared>,
    writer: Option<Writer>,
    printer: Printer,
    reporter: Reporter,
}

impl Flusher {
    fn run(mut self, stopped: &mpsc::Receiver<()>) {
        loop {
            let last = match stopped.recv_timeout(TICK) {
                Err(RecvTimeoutError::Timeout) => false,
                Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
            };
            self.flush((!last).then_some(QUIET));
            if last {
                break;
            }
        }
        if let Some(writer) = self.writer.take() {
            writer.close();
        }
        self.reporter.report(&self.shared, Instant::now(), true, &mut self.printer);
    }

    /// Hands out the traces quiet for `quiet` (all of them with `None`), and what pressure
    /// asks to be written early, a batch at a time (writing waits while the file is behind).
    fn flush(&mut self, quiet: Option<Duration>) {
        loop {
            let handouts = self.shared.store().take(Instant::now(), quiet, BATCH_BYTES);
            if handouts.is_empty() {
                break;
            }
            let mut spans = Vec::new();
            for handout in handouts {
                // `up` polls every service's /health as it starts: nothing worth keeping.
                if only_health_checks(&handout.write)
                    && handout.show.as_ref().is_none_or(Trace::is_health_check)
                {
                    continue;
                }
                if let Some(trace) = &handout.show {
                    self.printer.print(trace);
                }
                spans.extend(handout.write);
            }
            if let Some(writer) = &self.writer {
                writer.write(spans);
            }
            self.tick();
        }
        self.tick();
    }

    fn tick(&mut self) {
        let now = Instant::now();
        self.reporter.report(&self.shared, now, false, &mut self.printer);
        self.printer.tick(now);
    }
}

/// Says on standard error, at most once a second, what the sink did not keep as it came: spans
/// past their trace's cap, values cut, exports refused for now, spans the file did not take.
struct Reporter {
    at: Instant,
    said: Said,
    limits: Limits,
    file: Option<PathBuf>,
}

/// The counts said so far.
#[derive(Debug, Clone, Copy, Default)]
struct Said {
    capped: u64,
    throttled: u64,
    values: u64,
    attributes: u64,
    not_written: u64,
    unshown: u64,
}

impl Reporter {
    fn new(limits: Limits, file: Option<PathBuf>) -> Self {
        Self { at: Instant::now(), said: Said::default(), limits, file }
    }

    /// Says what changed since it last spoke, once a second has passed (or at once, when
    /// `closing`).
    fn report(&mut self, shared: &Shared, now: Instant, closing: bool, printer: &mut Printer) {
        if !closing && now.duration_since(self.at) < Duration::from_secs(1) {
            return;
        }
        self.at = now;
        let store = shared.store().stats();
        let intake = shared.intake.stats();
        let writer = shared.writer.as_ref().map(WriterCounts::get).unwrap_or_default();
        let counts = Said {
            capped: store.capped_traces,
            throttled: intake.throttled,
            values: intake.values_cut,
            attributes: intake.attributes_dropped,
            not_written: writer.spans_not_written,
            unshown: store.unshown_traces,
        };
        let was = std::mem::replace(&mut self.said, counts);
        let mut lines = Vec::new();
        match counts.capped - was.capped {
            0 => {}
            1 => lines.push(format!(
                "1 trace reached its cap of {} spans: the rest of it is counted, not kept (see its tree)",
                self.limits.spans_per_trace
            )),
            n => lines.push(format!(
                "{n} traces reached their cap of {} spans: the rest of each is counted, not kept (see their trees)",
                self.limits.spans_per_trace
            )),
        }
        if counts.values > was.values || counts.attributes > was.attributes {
            lines.push(format!(
                "{} attribute values cut and {} attributes dropped in the last second: a span keeps {} attributes and {} KiB of text at most",
                counts.values - was.values,
                counts.attributes - was.attributes,
                limits::ATTRIBUTES,
                limits::TEXT / 1024
            ));
        }
        if counts.throttled > was.throttled {
            lines.push(format!(
                "{} exports refused with 429 in the last second: spans not yet written, or bodies being received, fill the memory they have (--trace-memory {} MiB); OTLP exporters send them again, Envoy's Zipkin tracer does not",
                counts.throttled - was.throttled,
                self.limits.bytes >> 20
            ));
        }
        if counts.not_written > was.not_written {
            let file = self.file.as_ref().map(|f| f.display().to_string()).unwrap_or_default();
            let error = writer.error.unwrap_or_default();
            lines.push(format!(
                "{} spans not written to {file}: {error}",
                counts.not_written - was.not_written
            ));
        }
        for line in lines {
            eprintln!("bookinfo: traces: {line}");
        }
        // Evicted before they were shown: written, and counted with the traces not printed.
        if printer.on {
            printer.skipped += counts.unshown - was.unshown;
        }
    }
}

/// Prints finished traces, at most so many a second; a closed standard output ends printing
/// quietly.
struct Printer {
    on: bool,
    per_second: u32,
    printed: u32,
    skipped: u64,
    window: Instant,
    viewer: Option<SocketAddr>,
}

impl Printer {
    fn new(on: bool, per_second: u32, viewer: Option<SocketAddr>) -> Self {
        Self { on, per_second, printed: 0, skipped: 0, window: Instant::now(), viewer }
    }

    fn print(&mut self, trace: &Trace) {
        if !self.on {
            return;
        }
        if self.printed >= self.per_second {
            self.skipped += 1;
            return;
        }
        self.printed += 1;
        let text = render::tree(trace, Options::default());
        self.write(&format!("\n{text}"));
    }

    /// Starts a new second, saying how many traces were not printed in the last one.
    fn tick(&mut self, now: Instant) {
        if now.duration_since(self.window) < Duration::from_secs(1) {
            return;
        }
        if self.skipped > 0 {
            let hint =
                self.viewer.map(|v| format!(": see http://{v} and the trace file")).unwrap_or_default();
            let line = format!(
                "\nbookinfo: traces: {} more traces finished in the last second, not printed{hint}\n",
                self.skipped
            );
            self.write(&line);
        }
        (self.window, self.printed, self.skipped) = (now, 0, 0);
    }

    fn write(&mut self, text: &str) {
        let mut out = io::stdout().lock();
        if out.write_all(text.as_bytes()).and_then(|()| out.flush()).is_err() {
            // Nobody reads any more (`bookinfo up | head`): stop printing, keep serving.
            self.on = false;
        }
    }
}
