//! `bookinfo up --mesh`: every workload with an Envoy sidecar, an ingress gateway in front,
//! configured as istiod would (the `bookinfo-mesh` crate renders the configuration).
//!
//! The applications listen on private ports and call their upstreams through their own
//! sidecar's outbound listeners; the sidecars take the public ports. The applications are
//! started first (on free ports), then every proxy at once with the applications' addresses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bookinfo_http::upstream::Upstream;
use bookinfo_mesh::Routing;
use bookinfo_mesh::envoy::{
    self, DataPlane, Gateway, GatewayListener, GatewayServes, Mesh, Namespace, Protocol, TcpUpstream, Tracer,
    WaypointScope, Workload,
};
use bookinfo_propagation::TracingMode;
use bookinfo_telemetry::settings::OTEL_PROPAGATORS;

use bookinfo_config::Source;

use super::child::{Ready, Spec, Started, Stops};
use super::envoy::Envoy;
use super::mysql;
use super::stack::{App, Common, Instance, RATINGS_V2_MYSQL, STACK, upstreams_of};
use super::supervisor::Supervisor;
use crate::blocking;
use crate::error::{Error, StackError};

/// How long a proxy holds spans before sending them (Envoy's default is 5 s).
pub(super) const FLUSH: Duration = Duration::from_millis(250);

/// What `--mesh` asks for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The namespaces and their tracing modes.
    pub namespaces: Vec<(String, TracingMode)>,
    /// Sidecars, or ambient.
    pub data_plane: DataPlane,
    /// Under ambient, each namespace's waypoint.
    pub waypoint: WaypointScope,
    /// The proxies' tracer.
    pub tracer: Tracer,
    /// Share of requests traced at the edge.
    pub sampling: f64,
    /// Envoy.
    pub envoy: Envoy,
    /// Envoy's log level.
    pub log_level: String,
    /// Where the proxies' spans go: Zipkin and OTLP receivers.
    pub zipkin: SocketAddr,
    /// Where the proxies' OTLP spans go.
    pub otlp: SocketAddr,
    /// Where the proxies' configuration files are written.
    pub dir: PathBuf,
    /// Under `--ratings-db`, the database: ratings v2-mysql reaches it through its sidecar's TCP
    /// listener, and the database's own sidecar in front of it, as in Istio.
    pub ratings_db: Option<RatingsDb>,
}

/// The database of ratings v2-mysql, and what its application is told of it.
#[derive(Debug, Clone)]
pub struct RatingsDb {
    /// Where the server listens.
    pub server: SocketAddr,
    /// ratings v2-mysql's variables (its `MYSQL_DB_HOST` and `MYSQL_DB_PORT` are replaced by
    /// its sidecar's listener).
    pub env: Vec<(String, String)>,
}

/// The database's name in the mesh, and its port, as Istio's bookinfo-mysql.yaml has them.
pub(super) const DATABASE_SERVICE: &str = "mysqldb";
pub(super) const DATABASE_PORT: u16 = 3306;

/// What runs, for the banner.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The gateway's listeners: address, and what it serves.
    pub gateway: Vec<(SocketAddr, String)>,
    /// Each application, and its sidecar.
    pub apps: Vec<PlacedApp>,
    /// The gateway's process id.
    pub gateway_pid: u32,
    /// Under ambient, the ztunnel and the waypoints: name, what it does, and process id.
    pub ambient: Vec<(String, &'static str, u32)>,
}

/// Where an application of the mesh listens, and its sidecar.
#[derive(Debug, Clone)]
pub struct PlacedApp {
    /// Its namespace.
    pub namespace: String,
    /// Its pod.
    pub pod: String,
    /// Its own, private, address.
    pub app: SocketAddr,
    /// Its sidecar's public address, the service's (none under ambient: the application's
    /// own is).
    pub sidecar: Option<SocketAddr>,
}

/// Ports held until the proxies start, so that no two get the same free port.
#[derive(Default)]
pub(super) struct Ports {
    held: Vec<TcpListener>,
}

/// Where a free port for a proxy is looked for: below Linux's default ephemeral range
/// (32768-60999). A port held here is let go just before its proxy binds it; a port of that
/// range could meanwhile become the local port of some outgoing connection, and the proxy
/// would not start. Connections never take ports below the range.
const PROXY_PORTS: std::ops::Range<u16> = 20_000..32_768;

impl Ports {
    /// `port` on loopback (0: a free one below the ephemeral range), held for now.
    pub(super) fn take(&mut self, port: u16) -> Result<SocketAddr, Error> {
        let listener = if port == 0 { self.free()? } else { bind(port)? };
        let addr = listener.local_addr()?;
        self.held.push(listener);
        Ok(addr)
    }

    /// A free port of [`PROXY_PORTS`], tried from a place of this process's own (stacks
    /// started at once look in different places), or any free one when all are taken.
    fn free(&self) -> Result<TcpListener, Error> {
        let span = u32::from(PROXY_PORTS.end - PROXY_PORTS.start);
        let start =
            std::process::id().wrapping_mul(2_654_435_761).wrapping_add(self.held.len() as u32 * 7) % span;
        for step in 0..span {
            let port = PROXY_PORTS.start + u16::try_from((start + step) % span).unwrap_or_default();
            if let Ok(listener) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
                return Ok(listener);
            }
        }
        bind(0)
    }
}

fn bind(port: u16) -> Result<TcpListener, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .map_err(|source| StackError::PortNotFree { port, source }.into())
}

/// Starts the applications, then their sidecars and the gateway, under `supervisor`; the
/// applications' variables on top of `source`.
///
/// # Errors
/// A port that is taken, an application or a proxy that does not start (with Envoy's own
/// words when it refuses its configuration).
pub async fn start(
    supervisor: &mut Supervisor,
    common: &Common,
    base_port: u16,
    routing: Routing,
    options: &Options,
    source: &(impl Source + ?Sized),
) -> Result<Layout, Error> {
    if options.data_plane == DataPlane::Ambient {
        return super::ambient::start(supervisor, common, base_port, routing, options, source).await;
    }
    let plan = Plan::new(options, base_port)?;
    // The applications, all at once, on free ports of their own.
    let started = supervisor.start_all(plan.app_specs(common, options, source)).await?;
    let Plan { ports, gateway, gateway_admin, workloads, databases } = plan;
    let (mut namespaces, apps) = listening(&workloads, &started, &options.namespaces)?;
    if let Some(db) = &options.ratings_db {
        for sidecar in databases {
            if let Some(namespace) = namespaces.iter_mut().find(|n| n.name == sidecar.namespace) {
                namespace.workloads.push(database_workload(&sidecar, db.server));
            }
        }
    }
    let mesh = mesh_of(namespaces, &gateway, gateway_admin, options, routing);
    let proxies = proxies(&mesh, common, options).await?;
    // Every proxy at once, once its ports are let go.
    drop(ports);
    let started = supervisor.start_all(proxies).await?;
    Ok(Layout {
        gateway: gateway.into_iter().map(|(addr, _, serves)| (addr, serves)).collect(),
        apps,
        gateway_pid: started.last().map(|s| s.pid).unwrap_or_default(),
        ambient: Vec::new(),
    })
}

/// The mesh the proxies are configured from: `namespaces` as they listen, the gateway's
/// listeners and admin interface, where spans go, `routing`.
pub(super) fn mesh_of(
    namespaces: Vec<Namespace>,
    gateway: &[(SocketAddr, GatewayServes, String)],
    admin: SocketAddr,
    options: &Options,
    routing: Routing,
) -> Mesh {
    Mesh {
        namespaces,
        gateway: Gateway {
            listeners: gateway
                .iter()
                .map(|(addr, serves, _)| GatewayListener { addr: *addr, serves: serves.clone() })
                .collect(),
            admin,
        },
        tracer: options.tracer,
        zipkin: options.zipkin,
        otlp: options.otlp,
        sampling: options.sampling,
        flush: FLUSH,
        routing,
    }
}

/// Namespaces with no workload yet.
fn empty(namespaces: &[(String, TracingMode)]) -> Vec<Namespace> {
    namespaces.iter().map(|(ns, _)| Namespace { name: ns.clone(), workloads: Vec::new() }).collect()
}

/// A workload's `version` label: ratings v2-mysql's is its own, the others' their version's.
fn version_label(instance: Instance) -> String {
    if instance == RATINGS_V2_MYSQL { mysql::VERSION.to_owned() } else { instance.version.to_string() }
}

/// An application's name in output: its pod, after its namespace when there are two.
pub(super) fn app_name(single: bool, namespace: &str, pod: &str) -> String {
    if single { pod.to_owned() } else { format!("{}/{pod}", short(namespace)) }
}

/// `spec` listening on loopback, where its proxies reach it (a pod's own address, private to
/// it and its proxies).
pub(super) fn on_loopback(mut spec: Spec) -> Spec {
    if let Some(host) = spec.args.iter().position(|a| a == "--host") {
        spec.args[host + 1] = IpAddr::V4(Ipv4Addr::LOCALHOST).to_string();
    }
    spec
}

/// One workload before anything starts: its namespace and mode, and its sidecar's ports.
struct Planned {
    namespace: String,
    mode: TracingMode,
    instance: Instance,
    /// The sidecar's inbound listener: the service's address.
    inbound: SocketAddr,
    /// The sidecar's outbound listener for each upstream: where the application calls it.
    outbound: Vec<(Upstream, SocketAddr)>,
    /// The sidecar's TCP listener for the database, for ratings v2-mysql.
    database: Option<SocketAddr>,
    /// The sidecar's admin interface.
    admin: SocketAddr,
}

/// The database's sidecar in a namespace: its inbound (TCP) listener and admin interface.
struct DatabaseSidecar {
    namespace: String,
    inbound: SocketAddr,
    admin: SocketAddr,
}

/// Every address but the applications' own, decided (and held) first.
struct Plan {
    ports: Ports,
    /// The gateway's listeners: address, what it serves, and that in words.
    gateway: Vec<(SocketAddr, GatewayServes, String)>,
    gateway_admin: SocketAddr,
    workloads: Vec<Planned>,
    databases: Vec<DatabaseSidecar>,
}

impl Plan {
    fn new(options: &Options, base_port: u16) -> Result<Self, Error> {
        let single = options.namespaces.len() == 1;
        let mut ports = Ports::default();
        let gateway = gateway_listeners(&mut ports, options, base_port)?;
        let mut workloads = Vec::new();
        let mut databases = Vec::new();
        let ratings_v2 = options.ratings_db.is_some().then_some(RATINGS_V2_MYSQL);
        for (namespace, mode) in &options.namespaces {
            for instance in STACK.into_iter().chain(ratings_v2) {
                // Single, the sidecars take the public ports of their services (the gateway
                // productpage's); side by side, only the gateway's are public.
                let inbound = if single && instance.offset != 0 {
                    ports.take(public(base_port, instance.offset))?
                } else {
                    ports.take(0)?
                };
                let outbound: Vec<(Upstream, SocketAddr)> = upstreams_of(instance.service)
                    .iter()
                    .map(|u| Ok((*u, ports.take(0)?)))
                    .collect::<Result<_, Error>>()?;
                let database = if instance == RATINGS_V2_MYSQL { Some(ports.take(0)?) } else { None };
                let admin = ports.take(0)?;
                workloads.push(Planned {
                    namespace: namespace.clone(),
                    mode: *mode,
                    instance,
                    inbound,
                    outbound,
                    database,
                    admin,
                });
            }
            if ratings_v2.is_some() {
                let (inbound, admin) = (ports.take(0)?, ports.take(0)?);
                databases.push(DatabaseSidecar { namespace: namespace.clone(), inbound, admin });
            }
        }
        let gateway_admin = ports.take(0)?;
        Ok(Self { ports, gateway, gateway_admin, workloads, databases })
    }

    /// The applications' children: each calls its upstreams through its own sidecar.
    fn app_specs(&self, common: &Common, options: &Options, source: &(impl Source + ?Sized)) -> Vec<Spec> {
        let single = options.namespaces.len() == 1;
        self.workloads
            .iter()
            .map(|planned| {
                let instance = planned.instance;
                let app = App {
                    instance,
                    name: app_name(single, &planned.namespace, instance.pod),
                    port: 0,
                    mode: planned.mode,
                    upstreams: planned.outbound.clone(),
                    reviews_subsets: Vec::new(),
                    ratings_subsets: Vec::new(),
                    extra: match (&options.ratings_db, planned.database) {
                        (Some(db), Some(listener)) => through_proxy(&db.env, listener),
                        _ => Vec::new(),
                    },
                    routes: &[],
                    propagators: propagators(planned.mode, options.tracer, source),
                };
                on_loopback(app.spec(common, source))
            })
            .collect()
    }
}

/// A workload as planned before its application starts, by either data plane.
pub(super) trait Pod {
    /// Its namespace.
    fn namespace(&self) -> &str;
    /// What runs in it.
    fn instance(&self) -> Instance;
    /// Its sidecar's public address, if it has one.
    fn sidecar(&self) -> Option<SocketAddr>;
    /// The workload the proxies are configured with, its application listening on `app_addr`.
    fn workload(&self, app_addr: SocketAddr) -> Workload;
}

/// Each namespace's workloads, now that their applications listen (`started`, in the order
/// `planned`); and, for the banner, where each application (and its sidecar) is.
pub(super) fn listening<P: Pod>(
    planned: &[P],
    started: &[Started],
    namespaces: &[(String, TracingMode)],
) -> Result<(Vec<Namespace>, Vec<PlacedApp>), Error> {
    let mut mesh = empty(namespaces);
    let mut apps = Vec::new();
    for (pod, app) in planned.iter().zip(started) {
        let instance = pod.instance();
        let app_addr = app.addr.ok_or_else(|| StackError::NoAddress(instance.pod.to_owned()))?;
        apps.push(PlacedApp {
            namespace: pod.namespace().to_owned(),
            pod: instance.pod.to_owned(),
            app: app_addr,
            sidecar: pod.sidecar(),
        });
        if let Some(namespace) = mesh.iter_mut().find(|n| n.name == pod.namespace()) {
            namespace.workloads.push(pod.workload(app_addr));
        }
    }
    Ok((mesh, apps))
}

impl Pod for Planned {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn instance(&self) -> Instance {
        self.instance
    }

    fn sidecar(&self) -> Option<SocketAddr> {
        Some(self.inbound)
    }

    fn workload(&self, app_addr: SocketAddr) -> Workload {
        Workload {
            inbound: self.inbound,
            outbound: self.outbound.iter().map(|(u, addr)| (u.name().to_owned(), *addr)).collect(),
            tcp_outbound: self
                .database
                .map(|listener| TcpUpstream {
                    service: DATABASE_SERVICE.to_owned(),
                    port: DATABASE_PORT,
                    listener,
                })
                .into_iter()
                .collect(),
            admin: self.admin,
            ..pod_alone(self.instance, app_addr)
        }
    }
}

/// The workload of `instance`, its application on `app_addr`, with no proxy of its own (an
/// ambient pod): the pod's address is the application's, and it calls through no listener of
/// its own.
pub(super) fn pod_alone(instance: Instance, app_addr: SocketAddr) -> Workload {
    Workload {
        app: instance.service.as_str().to_owned(),
        version: version_label(instance),
        pod: instance.pod.to_owned(),
        inbound: app_addr,
        app_addr,
        outbound: Vec::new(),
        tcp_outbound: Vec::new(),
        protocol: Protocol::Http,
        // No proxy in the pod, so no admin interface: never read for such a pod.
        admin: app_addr,
    }
}

/// ratings v2-mysql's variables with the database's address replaced by its proxy's listener,
/// as a pod reaches `mysqldb:3306` through its own sidecar (or, under ambient, the ztunnel).
pub(super) fn through_proxy(env: &[(String, String)], listener: SocketAddr) -> Vec<(String, String)> {
    env.iter()
        .map(|(name, value)| match name.as_str() {
            bookinfo_ratings::mysql::MYSQL_DB_HOST => (name.clone(), listener.ip().to_string()),
            bookinfo_ratings::mysql::MYSQL_DB_PORT => (name.clone(), listener.port().to_string()),
            _ => (name.clone(), value.clone()),
        })
        .collect()
}

/// The database's pod in the mesh: a sidecar that proxies TCP to the server (Istio's
/// `mysqldb-v1`, its Service port named `tcp`).
fn database_workload(sidecar: &DatabaseSidecar, server: SocketAddr) -> Workload {
    Workload {
        app: DATABASE_SERVICE.to_owned(),
        version: "v1".to_owned(),
        pod: DATABASE_SERVICE.to_owned(),
        inbound: sidecar.inbound,
        app_addr: server,
        outbound: Vec::new(),
        tcp_outbound: Vec::new(),
        protocol: Protocol::Tcp(DATABASE_PORT),
        admin: sidecar.admin,
    }
}

/// Every proxy's child, its configuration rendered and written (off the runtime) first.
async fn proxies(mesh: &Mesh, common: &Common, options: &Options) -> Result<Vec<Spec>, Error> {
    let single = mesh.namespaces.len() == 1;
    let (mut files, mut specs) = (Vec::new(), Vec::new());
    for namespace in &mesh.namespaces {
        for workload in &namespace.workloads {
            let file = options.dir.join(&namespace.name).join(format!("{}.json", workload.pod));
            let name = if single {
                format!("{} sidecar", workload.pod)
            } else {
                format!("{}/{} sidecar", short(&namespace.name), workload.pod)
            };
            specs.push(proxy(common, options, name, &file, workload.admin));
            files.push((file, mesh.sidecar(namespace, workload)));
        }
    }
    let file = options.dir.join("istio-ingressgateway.json");
    specs.push(proxy(common, options, "gateway".to_owned(), &file, mesh.gateway.admin));
    files.push((file, mesh.gateway()));
    blocking::run(move || files.iter().try_for_each(|(file, bootstrap)| write(file, bootstrap))).await?;
    Ok(specs)
}

/// A public port: `offset` after `base_port`, or any free one with `--base-port 0`.
pub(super) fn public(base_port: u16, offset: u16) -> u16 {
    if base_port == 0 { 0 } else { base_port + offset }
}

/// The gateway's listeners: address, what it serves, and that in words. Single, one for the
/// namespace on the first public port; side by side, one by host, then one per namespace.
pub(super) fn gateway_listeners(
    ports: &mut Ports,
    options: &Options,
    base_port: u16,
) -> Result<Vec<(SocketAddr, GatewayServes, String)>, Error> {
    if let [(namespace, _)] = options.namespaces.as_slice() {
        return Ok(vec![(
            ports.take(public(base_port, 0))?,
            GatewayServes::Namespace(namespace.clone()),
            "productpage".to_owned(),
        )]);
    }
    let mut listeners = vec![(ports.take(public(base_port, 0))?, GatewayServes::ByHost, by_host(options))];
    for (offset, (ns, _)) in (1..).zip(&options.namespaces) {
        listeners.push((
            ports.take(public(base_port, offset))?,
            GatewayServes::Namespace(ns.clone()),
            ns.clone(),
        ));
    }
    Ok(listeners)
}

/// `OTEL_PROPAGATORS` of an application in `mode` under `tracer`: in `otel` mode, the formats
/// the sidecars write, unless `source` (the shell) says otherwise (to show what goes wrong, say).
pub(super) fn propagators(
    mode: TracingMode,
    tracer: Tracer,
    source: &(impl Source + ?Sized),
) -> Option<&'static str> {
    let set_by_hand = source.get(OTEL_PROPAGATORS).is_some();
    (mode == TracingMode::Otel && !set_by_hand).then(|| tracer.app_propagators())
}

/// `bookinfo-otel` → `otel`.
pub(super) fn short(namespace: &str) -> &str {
    namespace.strip_prefix("bookinfo-").unwrap_or(namespace)
}

fn by_host(options: &Options) -> String {
    let hosts: Vec<String> = options.namespaces.iter().map(|(ns, _)| envoy::host_of(ns)).collect();
    format!("by host: {}", hosts.join(", "))
}

pub(super) fn write(file: &Path, bootstrap: &serde_json::Value) -> Result<(), Error> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_vec_pretty(bootstrap)
        .map_err(|source| StackError::Bootstrap { file: file.to_path_buf(), source })?;
    std::fs::write(file, text)?;
    Ok(())
}

/// An Envoy child: started through `bookinfo exec`, so the kernel stops it with the stack.
pub(super) fn proxy(
    common: &Common,
    options: &Options,
    name: String,
    file: &Path,
    admin: SocketAddr,
) -> Spec {
    let mut args = vec![
        "exec".to_owned(),
        options.envoy.path.display().to_string(),
        "-c".to_owned(),
        file.display().to_string(),
        "--disable-hot-restart".to_owned(),
        "--concurrency".to_owned(),
        "1".to_owned(),
        "-l".to_owned(),
        options.log_level.clone(),
        "--log-format".to_owned(),
        "[%l] %v".to_owned(),
    ];
    if options.log_level == "warning" {
        // Envoy acknowledges the stop signal `up` sends with a warning: no news to the user.
        args.extend(["--component-log-level".to_owned(), "main:error".to_owned()]);
    }
    Spec {
        name,
        program: common.exe.clone(),
        args,
        env: Vec::new(),
        scrub: Vec::new(),
        ready: Ready::Admin(admin),
        stops: Stops::Then,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otel_applications_read_the_sidecars_formats_unless_the_shell_says_otherwise() {
        let tracer = Tracer::Zipkin;
        let quiet = [("OTHER", "x")];
        assert_eq!(propagators(TracingMode::Otel, tracer, &quiet), Some(tracer.app_propagators()));
        assert_eq!(propagators(TracingMode::Otel, tracer, &[("OTEL_PROPAGATORS", "b3")]), None);
        assert_eq!(
            propagators(TracingMode::Otel, tracer, &[("OTEL_PROPAGATORS", "")]),
            Some(tracer.app_propagators()),
            "empty is unset"
        );
        assert_eq!(propagators(TracingMode::Propagate, tracer, &quiet), None);
    }
}
