//! `bookinfo up --mesh ambient`: no sidecars. The applications take their services' ports
//! and call each other through a ztunnel (an Envoy of TCP proxies: no span, no header read);
//! with `--waypoint namespace`, the ztunnel hands each namespace's HTTP calls to its waypoint,
//! which routes them and makes one span for each. The ingress gateway stays as in sidecar mode.
//!
//! The applications start first (every address but theirs decided and held before), then the
//! ztunnel, the waypoints and the gateway at once.

use std::net::SocketAddr;

use bookinfo_config::Source;
use bookinfo_mesh::Routing;
use bookinfo_mesh::envoy::{
    Mesh, Namespace, Tunnel, Waypoint, WaypointListener, WaypointScope, Workload, Ztunnel, fqdn,
};
use bookinfo_propagation::TracingMode;

use super::child::Spec;
use super::mesh::{
    DATABASE_PORT, DATABASE_SERVICE, Layout, Options, Pod, Ports, app_name, gateway_listeners, listening,
    mesh_of, on_loopback, pod_alone, propagators, proxy, public, short, through_proxy, write,
};
use super::stack::{App, Common, Instance, RATINGS_V2_MYSQL, STACK, upstreams_of};
use super::supervisor::Supervisor;
use crate::blocking;
use crate::error::Error;

/// One workload before anything starts.
struct Planned {
    namespace: String,
    mode: TracingMode,
    instance: Instance,
    /// Its own port (a public one when alone; 0: any).
    port: u16,
    /// The ztunnel's tunnel for each service it calls: the service, its port, the tunnel.
    calls: Vec<Call>,
}

/// One calling workload's way to one service: through the ztunnel, and through the waypoint
/// (when there is one and the service speaks HTTP).
struct Call {
    service: String,
    port: u16,
    tunnel: SocketAddr,
    waypoint: Option<SocketAddr>,
}

/// Starts the applications, then the ztunnel, the waypoints and the gateway.
///
/// # Errors
/// A port that is taken, an application or a proxy that does not start.
pub async fn start(
    supervisor: &mut Supervisor,
    common: &Common,
    base_port: u16,
    routing: Routing,
    options: &Options,
    source: &(impl Source + ?Sized),
) -> Result<Layout, Error> {
    let single = options.namespaces.len() == 1;
    let with_waypoint = options.waypoint == WaypointScope::Namespace;
    let mut ports = Ports::default();
    let gateway = gateway_listeners(&mut ports, options, base_port)?;
    let ratings_v2 = options.ratings_db.is_some().then_some(RATINGS_V2_MYSQL);
    let mut planned = Vec::new();
    for (namespace, mode) in &options.namespaces {
        for instance in STACK.into_iter().chain(ratings_v2) {
            // Alone, each pod takes its service's public port (the gateway productpage's).
            let port = if single && instance.offset != 0 { public(base_port, instance.offset) } else { 0 };
            let mut calls = Vec::new();
            for upstream in upstreams_of(instance.service) {
                let waypoint = if with_waypoint { Some(ports.take(0)?) } else { None };
                calls.push(Call {
                    service: upstream.name().to_owned(),
                    port: bookinfo_mesh::envoy::SERVICE_PORT,
                    tunnel: ports.take(0)?,
                    waypoint,
                });
            }
            if instance == RATINGS_V2_MYSQL {
                // TCP: the ztunnel takes it to the database; no waypoint reads it.
                let tunnel = ports.take(0)?;
                calls.push(Call {
                    service: DATABASE_SERVICE.to_owned(),
                    port: DATABASE_PORT,
                    tunnel,
                    waypoint: None,
                });
            }
            planned.push(Planned { namespace: namespace.clone(), mode: *mode, instance, port, calls });
        }
    }
    let ztunnel_admin = ports.take(0)?;
    let waypoint_admins: Vec<SocketAddr> = if with_waypoint {
        options.namespaces.iter().map(|_| ports.take(0)).collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    let gateway_admin = ports.take(0)?;

    let started = supervisor.start_all(app_specs(&planned, common, options, source)).await?;
    let (namespaces, apps) = listening(&planned, &started, &options.namespaces)?;
    let mesh = mesh_of(namespaces, &gateway, gateway_admin, options, routing);
    let database = options.ratings_db.as_ref().map(|db| db.server);
    let ztunnel = Ztunnel { tunnels: tunnels(&planned, &mesh.namespaces, database), admin: ztunnel_admin };
    let waypoints: Vec<Waypoint> = options
        .namespaces
        .iter()
        .zip(&waypoint_admins)
        .map(|((namespace, _), admin)| waypoint(namespace, &planned, *admin))
        .collect();

    let (specs, names) = proxies(&mesh, &ztunnel, &waypoints, common, options, single).await?;
    drop(ports);
    let started = supervisor.start_all(specs).await?;
    let ambient = names.into_iter().zip(&started).map(|((name, what), s)| (name, what, s.pid)).collect();
    Ok(Layout {
        gateway: gateway.into_iter().map(|(addr, _, serves)| (addr, serves)).collect(),
        apps,
        gateway_pid: started.last().map(|s| s.pid).unwrap_or_default(),
        ambient,
    })
}

/// `namespace`'s waypoint: a listener for each call of its workloads.
fn waypoint(namespace: &str, planned: &[Planned], admin: SocketAddr) -> Waypoint {
    let mut listeners = Vec::new();
    for p in planned.iter().filter(|p| p.namespace == namespace) {
        for call in &p.calls {
            if let Some(addr) = call.waypoint {
                let (source, service) = (p.instance.pod.to_owned(), call.service.clone());
                listeners.push(WaypointListener { addr, source, service });
            }
        }
    }
    Waypoint { namespace: namespace.to_owned(), listeners, admin }
}

/// The applications' children: each calls its upstreams through the ztunnel.
fn app_specs(
    planned: &[Planned],
    common: &Common,
    options: &Options,
    source: &(impl Source + ?Sized),
) -> Vec<Spec> {
    let single = options.namespaces.len() == 1;
    planned
        .iter()
        .map(|p| {
            let instance = p.instance;
            let upstreams = upstreams_of(instance.service)
                .iter()
                .filter_map(|u| p.calls.iter().find(|c| c.service == u.name()).map(|c| (*u, c.tunnel)))
                .collect();
            let database = p.calls.iter().find(|c| c.service == DATABASE_SERVICE);
            let app = App {
                instance,
                name: app_name(single, &p.namespace, instance.pod),
                port: p.port,
                mode: p.mode,
                upstreams,
                reviews_subsets: Vec::new(),
                ratings_subsets: Vec::new(),
                extra: match (&options.ratings_db, database) {
                    (Some(db), Some(call)) => through_proxy(&db.env, call.tunnel),
                    _ => Vec::new(),
                },
                routes: &[],
                propagators: propagators(p.mode, options.tracer, source),
            };
            on_loopback(app.spec(common, source))
        })
        .collect()
}

impl Pod for Planned {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn instance(&self) -> Instance {
        self.instance
    }

    fn sidecar(&self) -> Option<SocketAddr> {
        None
    }

    fn workload(&self, app_addr: SocketAddr) -> Workload {
        pod_alone(self.instance, app_addr)
    }
}

/// The ztunnel's tunnels: each call to its waypoint listener, or (no waypoint, or TCP) to the
/// service's pods, or to the database.
fn tunnels(planned: &[Planned], namespaces: &[Namespace], database: Option<SocketAddr>) -> Vec<Tunnel> {
    let mut tunnels = Vec::new();
    for p in planned {
        let pods = namespaces.iter().find(|n| n.name == p.namespace).map(|n| n.workloads.as_slice());
        for call in &p.calls {
            let endpoints = match (call.waypoint, database) {
                (Some(waypoint), _) => vec![waypoint],
                (None, Some(server)) if call.service == DATABASE_SERVICE => vec![server],
                (None, _) => pods
                    .unwrap_or_default()
                    .iter()
                    .filter(|w| w.app == call.service)
                    .map(|w| w.app_addr)
                    .collect(),
            };
            tunnels.push(Tunnel {
                name: format!(
                    "{}/{}→{}:{}",
                    short(&p.namespace),
                    p.instance.pod,
                    fqdn(&call.service, &p.namespace),
                    call.port
                ),
                addr: call.tunnel,
                endpoints,
            });
        }
    }
    tunnels
}

/// The proxies' children (the gateway last), and the others' names and roles for the banner; their
/// configuration written first, off the runtime.
async fn proxies(
    mesh: &Mesh,
    ztunnel: &Ztunnel,
    waypoints: &[Waypoint],
    common: &Common,
    options: &Options,
    single: bool,
) -> Result<(Vec<Spec>, Vec<(String, &'static str)>), Error> {
    let (mut files, mut specs, mut names) = (Vec::new(), Vec::new(), Vec::new());
    let file = options.dir.join("ztunnel.json");
    specs.push(proxy(common, options, "ztunnel".to_owned(), &file, ztunnel.admin));
    names.push(("ztunnel".to_owned(), "(L4 only: no span)"));
    files.push((file, mesh.ztunnel(ztunnel)));
    for waypoint in waypoints {
        let file = options.dir.join(&waypoint.namespace).join("waypoint.json");
        let name =
            if single { "waypoint".to_owned() } else { format!("{}/waypoint", short(&waypoint.namespace)) };
        specs.push(proxy(common, options, name.clone(), &file, waypoint.admin));
        names.push((name, "(Envoy: L7, one span per call)"));
        files.push((file, mesh.waypoint(waypoint)));
    }
    let file = options.dir.join("istio-ingressgateway.json");
    specs.push(proxy(common, options, "gateway".to_owned(), &file, mesh.gateway.admin));
    files.push((file, mesh.gateway()));
    blocking::run(move || files.iter().try_for_each(|(file, bootstrap)| write(file, bootstrap))).await?;
    Ok((specs, names))
}

/// What Istio does with `routing` in an ambient namespace without a waypoint, in one line, if
/// anything is lost: the rules bound to the mesh wait for a waypoint (the gateway's still
/// apply).
pub fn without_waypoint(routing: &Routing) -> Option<String> {
    if routing.services.is_empty() {
        return None;
    }
    let services: Vec<&str> = routing.services.keys().map(String::as_str).collect();
    Some(format!(
        "Routing for {} is not applied: in ambient, L7 rules run at a waypoint and no namespace here has one \
         (Istio keeps them until one is applied: --waypoint namespace); calls go to any pod of the service.\n",
        services.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// reviews-v2 calling ratings, and ratings v2-mysql its database, in `default`.
    fn planned(waypoint: Option<SocketAddr>) -> Vec<Planned> {
        let call = |service: &str, port, tunnel, waypoint| Call {
            service: service.to_owned(),
            port,
            tunnel,
            waypoint,
        };
        vec![
            Planned {
                namespace: "default".to_owned(),
                mode: TracingMode::Otel,
                instance: STACK[3],
                port: 0,
                calls: vec![call("ratings", 9080, addr(1), waypoint)],
            },
            Planned {
                namespace: "default".to_owned(),
                mode: TracingMode::Otel,
                instance: RATINGS_V2_MYSQL,
                port: 0,
                calls: vec![call(DATABASE_SERVICE, DATABASE_PORT, addr(2), None)],
            },
        ]
    }

    fn namespaces() -> Vec<Namespace> {
        let pods = [(STACK[0], addr(10)), (RATINGS_V2_MYSQL, addr(11)), (STACK[1], addr(12))];
        let workloads = pods
            .iter()
            .map(|(instance, app)| {
                let pod = Planned {
                    namespace: "default".to_owned(),
                    mode: TracingMode::Otel,
                    instance: *instance,
                    port: 0,
                    calls: Vec::new(),
                };
                pod.workload(*app)
            })
            .collect();
        vec![Namespace { name: "default".to_owned(), workloads }]
    }

    #[test]
    fn without_a_waypoint_a_tunnel_goes_to_every_pod_of_the_service_and_the_database_to_its_server() {
        let tunnels = tunnels(&planned(None), &namespaces(), Some(addr(3306)));
        assert_eq!(tunnels[0].name, "default/reviews-v2→ratings.default.svc.cluster.local:9080");
        assert_eq!(tunnels[0].addr, addr(1));
        assert_eq!(tunnels[0].endpoints, [addr(10), addr(11)], "ratings v1 and v2-mysql");
        assert_eq!(tunnels[1].name, "default/ratings-v2-mysql→mysqldb.default.svc.cluster.local:3306");
        assert_eq!(tunnels[1].endpoints, [addr(3306)]);
    }

    #[test]
    fn with_a_waypoint_an_http_tunnel_goes_to_the_waypoint_and_tcp_still_to_the_database() {
        let tunnels = tunnels(&planned(Some(addr(20))), &namespaces(), Some(addr(3306)));
        assert_eq!(tunnels[0].endpoints, [addr(20)]);
        assert_eq!(tunnels[1].endpoints, [addr(3306)]);
    }
}
