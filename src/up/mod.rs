//! `bookinfo up`: the whole stack on this machine.
//!
//! Each service runs as its own child process (`bookinfo serve ...`), so each has its own
//! telemetry identity, as pods do; with `--mesh`, each also gets an Envoy sidecar and an
//! ingress gateway fronts productpage ([`mesh`]); with `--mesh ambient`, a ztunnel and a
//! waypoint stand between them instead ([`ambient`]). Children are supervised as a kubelet would:
//! one that dies is reported and started again after a back-off while the rest keeps serving
//! ([`supervisor`]). The trace store runs beside them on threads of its own. Under
//! `--ratings-db`, ratings v2-mysql joins ratings v1, on a database server of the stack's own
//! (supervised like the services) or a given one ([`mysql`]). SIGINT or SIGTERM stops
//! everything; no child outlives `up`, even when it is killed.
//!
//! What may block (files, sockets, Envoy, the store's threads) is done first, off the async
//! runtime ([`prepare`]); the variables come from the [`Source`] handed in, never from the
//! process environment directly.

mod ambient;
mod banner;
mod child;
mod envoy;
mod mesh;
mod mysql;
mod prepare;
mod stack;
mod supervisor;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bookinfo_config::Source;
use bookinfo_mesh::envoy::{DataPlane, WaypointScope};
use bookinfo_propagation::TracingMode;
use bookinfo_traces::{Sink, file};
use tokio::time::Instant;

use self::banner::Row;
use self::envoy::Envoy;
use self::prepare::{Database, Prepared};
use self::stack::{App, Common, RATINGS_V2_MYSQL, STACK, reachable};
use self::supervisor::{Event, Supervisor};
use crate::blocking;
use crate::cli::{MeshArgs, UpArgs};
use crate::error::{Error, StackError};
use crate::output;
use crate::service::Service;

pub use self::mysql::{BOOKINFO_MYSQLD, RatingsDb};

/// How long all services may take to answer `/health`.
const HEALTH_DEADLINE: Duration = Duration::from_secs(10);

/// Starts the stack, its variables read from `source`, and runs until a signal.
///
/// # Errors
/// A flag, variable or file that cannot be used, or a stack that cannot start.
pub async fn run<S>(args: UpArgs, source: S) -> Result<(), Error>
where
    S: Source + Clone + Send + 'static,
{
    let prepared = {
        let (args, source) = (args.clone(), source.clone());
        blocking::run(move || Prepared::new(&args, &source)).await?
    };
    let common = Common {
        exe: prepared.exe.clone(),
        host: args.host,
        otlp: prepared.sink.as_ref().and_then(|s| s.otlp).map(|addr| format!("http://{addr}")),
        log_level: args.log_level.clone(),
        workers: prepared.workers,
        routed_users: prepared.routing.routed_users(),
    };
    let mut signals = match Signals::new() {
        Ok(signals) => signals,
        Err(err) => {
            stop_store(prepared.sink, Sink::discard).await;
            return Err(err.into());
        }
    };
    let mut supervisor = Supervisor::new(!args.no_restarts);
    let started = match &prepared.envoy {
        Some(envoy) => start_mesh(&mut supervisor, &common, &args.mesh, envoy, &prepared, &source).await,
        None => start_plain(&mut supervisor, &common, &prepared, &source).await,
    };
    let sink = prepared.sink;
    let database = prepared.database;
    let mut banner = match started {
        Ok(banner) => banner,
        Err(err) => {
            supervisor.stop_all().await;
            remove_database(database).await;
            stop_store(sink, Sink::discard).await;
            return Err(err);
        }
    };
    if let Some(sink) = &sink {
        banner.push_str(&banner::store(sink));
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
    remove_database(database).await;
    // The services flushed their last spans as they stopped: show those traces too.
    stop_store(sink, Sink::close).await;
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

/// Stops the store off the runtime (its threads are joined): `Sink::close` shows and writes
/// its last traces; `Sink::discard`, for a stack that failed to start, also removes its run, so
/// that it never becomes the latest.
async fn stop_store(sink: Option<Sink>, stop: fn(Sink)) {
    if let Some(sink) = sink {
        let _ = blocking::run(move || {
            stop(sink);
            Ok(())
        })
        .await;
    }
}

/// Removes the stack's own database server's directory, once it has stopped: nothing of the
/// database outlives `up`.
async fn remove_database(database: Option<Database>) {
    if let Some(Database::Local(local)) = database {
        let _ = blocking::run(move || {
            local.remove();
            Ok(())
        })
        .await;
    }
}

/// Where the database server listens, its name looked up (off the runtime) when given by URL:
/// the database's sidecar proxies to that address.
async fn database_addr(database: &Database) -> Result<SocketAddr, Error> {
    match database {
        Database::Local(local) => Ok(local.addr()),
        Database::Url(remote) => {
            let (host, port) = (remote.host.clone(), remote.port);
            blocking::run(move || {
                use std::net::ToSocketAddrs as _;
                (host.as_str(), port).to_socket_addrs()?.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")).into()
                })
            })
            .await
        }
    }
}

/// Under `--ratings-db`: the stack's own database server, when it has one; answers ratings
/// v2's variables, and the banner's row (the server's) and line.
async fn start_database(
    supervisor: &mut Supervisor,
    common: &Common,
    database: &Database,
) -> Result<(Vec<(String, String)>, Option<Row>, String), Error> {
    let local = match database {
        Database::Local(local) => local,
        Database::Url(remote) => {
            let note = format!("Ratings database: mysql://{}:{}/test\n", remote.host, remote.port);
            return Ok((mysql::remote_env(remote), None, note));
        }
    };
    let mut local = local.clone();
    let mut tries = 0;
    let running = loop {
        match supervisor.start(local.spec(&common.exe)).await {
            // A free port picked may be taken before the server binds it: pick again.
            Err(err) if local.picked && tries < 3 && mysql::port_was_taken(&err) => {
                tries += 1;
                local.repick()?;
            }
            other => break other?,
        }
    };
    let row =
        Row { name: "mysqldb".to_owned(), url: format!("mysql://{}/test", local.addr()), pid: running.pid };
    let note = format!(
        "Ratings database: MariaDB/MySQL at {}, socket {} (removed when the stack stops)\n",
        local.addr(),
        local.socket().display()
    );
    let env = mysql::ratings_env("127.0.0.1", local.port, Some(mysql::USER), Some(mysql::PASSWORD));
    Ok((env, Some(row), note))
}

/// Under `--ratings-db`: the database server (see [`start_database`]) and ratings v2 on it;
/// answers where ratings v2 listens, the banner's rows and its line.
async fn start_ratings_db(
    supervisor: &mut Supervisor,
    common: &Common,
    prepared: &Prepared,
    database: &Database,
    source: &(impl Source + ?Sized),
) -> Result<(SocketAddr, Vec<Row>, String), Error> {
    let (env, row, note) = start_database(supervisor, common, database).await?;
    let mut rows: Vec<Row> = row.into_iter().collect();
    let instance = RATINGS_V2_MYSQL;
    let app = App {
        instance,
        name: instance.pod.to_owned(),
        port: if prepared.base_port == 0 { 0 } else { prepared.base_port + instance.offset },
        mode: prepared.mode,
        upstreams: Vec::new(),
        reviews_subsets: Vec::new(),
        ratings_subsets: Vec::new(),
        extra: env,
        routes: &[],
        propagators: None,
    };
    let running = supervisor.start(app.spec(common, source)).await?;
    let addr = running.addr.ok_or_else(|| StackError::NoAddress(instance.pod.to_owned()))?;
    rows.push(Row {
        name: instance.pod.to_owned(),
        url: format!("http://{}", reachable(addr)),
        pid: running.pid,
    });
    Ok((addr, rows, note))
}

/// The plain stack: each service on its public port, calling the others directly; answers
/// the banner.
async fn start_plain(
    supervisor: &mut Supervisor,
    common: &Common,
    prepared: &Prepared,
    source: &(impl Source + ?Sized),
) -> Result<String, Error> {
    let routes: Vec<PathBuf> = prepared.routes.iter().map(std::path::absolute).collect::<io::Result<_>>()?;
    let mut started: Vec<(stack::Instance, SocketAddr, u32)> = Vec::new();
    let mut ratings_subsets = Vec::new();
    let mut database_rows = Vec::new();
    let mut ratings_v2 = None;
    let mut database_note = String::new();
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
        let reviews_subsets = if instance.service == Service::Productpage {
            started
                .iter()
                .filter(|(i, _, _)| i.service == Service::Reviews)
                .map(|(i, addr, _)| (i.version, *addr))
                .collect()
        } else {
            Vec::new()
        };
        let app = App {
            instance,
            name: instance.pod.to_owned(),
            port: if prepared.base_port == 0 { 0 } else { prepared.base_port + instance.offset },
            mode: prepared.mode,
            upstreams,
            reviews_subsets,
            ratings_subsets: ratings_subsets.clone(),
            extra: Vec::new(),
            routes: &routes,
            propagators: None,
        };
        let running = supervisor.start(app.spec(common, source)).await?;
        let addr = running.addr.ok_or_else(|| StackError::NoAddress(instance.pod.to_owned()))?;
        started.push((instance, addr, running.pid));
        // Ratings v2 on MySQL joins ratings v1 behind the `ratings` service, as its Deployment
        // does in Istio's sample: calls spread over both unless the routing picks a subset.
        if instance.service == Service::Ratings
            && let Some(database) = &prepared.database
        {
            let (v2, rows, note) = start_ratings_db(supervisor, common, prepared, database, source).await?;
            ratings_subsets = vec![("v1", addr), (mysql::VERSION, v2)];
            database_rows = rows;
            ratings_v2 = Some(reachable(v2));
            database_note = note;
        }
    }
    let healthy = started.iter().map(|(i, addr, _)| (i.pod.to_owned(), reachable(*addr)));
    wait_healthy(healthy.chain(ratings_v2.map(|addr| (RATINGS_V2_MYSQL.pod.to_owned(), addr)))).await?;

    let rows: Vec<Row> = STACK
        .iter()
        .rev()
        .filter_map(|i| started.iter().find(|(s, _, _)| s.pod == i.pod))
        .map(|(i, addr, pid)| {
            let path = if i.service == Service::Productpage { "/productpage" } else { "" };
            Row { name: i.pod.to_owned(), url: format!("http://{}{path}", reachable(*addr)), pid: *pid }
        })
        .chain(database_rows)
        .collect();
    let mut text = banner::table("Bookinfo is running:", &rows);
    text.push_str(&database_note);
    text.push_str(&banner::routing(&routes, "applied by the services themselves"));
    text.push_str(&banner::tracing(prepared.mode, None, &prepared.exporter).await?);
    Ok(text)
}

/// The stack in a mesh: sidecars (or ambient's ztunnel and waypoints), a gateway, and the
/// routing files rendered into them; answers the banner.
async fn start_mesh(
    supervisor: &mut Supervisor,
    common: &Common,
    args: &MeshArgs,
    envoy: &Envoy,
    prepared: &Prepared,
    source: &(impl Source + ?Sized),
) -> Result<String, Error> {
    let tracer = args.mesh_tracer;
    let namespaces = if args.compare {
        vec![
            ("bookinfo-propagate".to_owned(), TracingMode::Propagate),
            ("bookinfo-otel".to_owned(), TracingMode::Otel),
        ]
    } else {
        vec![("default".to_owned(), prepared.mode)]
    };
    let sink = prepared.sink.as_ref();
    let (zipkin, otlp) = match sink {
        Some(sink) => (sink.zipkin, sink.otlp),
        None => (None, prepared.exporter_addr),
    };
    let unused = SocketAddr::from((Ipv4Addr::LOCALHOST, 9));
    let dir = match sink.and_then(|s| s.file.as_ref()).and_then(|f| f.parent()) {
        Some(run) => run.join("envoy"),
        None => file::temp_dir(source).join(format!("bookinfo-envoy-{}", std::process::id())),
    };
    let (ratings_db, database_row, database_note) = match &prepared.database {
        Some(database) => {
            let (env, row, note) = start_database(supervisor, common, database).await?;
            let server = database_addr(database).await?;
            (Some(mesh::RatingsDb { server, env }), row, note)
        }
        None => (None, None, String::new()),
    };
    let data_plane = args.mesh.unwrap_or_default();
    let options = mesh::Options {
        namespaces: namespaces.clone(),
        data_plane,
        waypoint: args.waypoint,
        tracer,
        sampling: args.mesh_sampling,
        envoy: envoy.clone(),
        log_level: args.mesh_log.clone(),
        zipkin: zipkin.unwrap_or(unused),
        otlp: otlp.unwrap_or(unused),
        dir: dir.clone(),
        ratings_db,
    };
    let layout =
        mesh::start(supervisor, common, prepared.base_port, prepared.routing.clone(), &options, source)
            .await?;
    wait_healthy(layout.apps.iter().map(|p| (format!("{}/{}", p.namespace, p.pod), p.app))).await?;

    let words = banner::Proxies::of(data_plane, args.waypoint, !prepared.routing.gateway.is_empty());
    let mut text = banner::mesh(&layout, &namespaces, tracer, &envoy.version, &words);
    if let Some(row) = database_row {
        text.push_str(&banner::table(words.database, &[row]));
    }
    text.push_str(&database_note);
    text.push_str(&banner::routing(&prepared.routes, words.applied));
    if data_plane == DataPlane::Ambient && args.waypoint == WaypointScope::None {
        text.push_str(&ambient::without_waypoint(&prepared.routing).unwrap_or_default());
    }
    text.push_str(&format!("Envoy configuration: {}\n", dir.display()));
    if args.compare {
        text.push_str(&banner::compare(tracer, &words));
    } else {
        text.push_str(
            &banner::tracing(prepared.mode, Some((tracer, words.tracing)), &prepared.exporter).await?,
        );
    }
    Ok(text)
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
