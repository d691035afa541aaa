//! The stack's workloads, and what each is started with: its command line and its variables,
//! named by the constants of the crates that read them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use bookinfo_config::{HOST, HOSTNAME, PORT, SERVICE_VERSION, Source, WORKERS};
use bookinfo_http::routing::BOOKINFO_ROUTES;
use bookinfo_http::upstream::{SERVICES_DOMAIN, Upstream};
use bookinfo_propagation::BOOKINFO_TRACING;
use bookinfo_propagation::TracingMode;
use bookinfo_telemetry::RUST_LOG;
use bookinfo_telemetry::settings::{
    OTEL_BSP_SCHEDULE_DELAY, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_PROPAGATORS,
    OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME,
};

use crate::service::Service;
use bookinfo_productpage::session::ROUTED_USERS;
use bookinfo_reviews::{ENABLE_RATINGS, ReviewsVersion, STAR_COLOR};

use super::child::{Ready, Spec, Stops};

/// One workload of the stack: a Kubernetes Deployment's pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    /// The pod's name, reported as `HOSTNAME` (reviews shows it on the page).
    pub pod: &'static str,
    /// The service it runs.
    pub service: Service,
    /// Its version (reviews' decides its defaults).
    pub version: ReviewsVersion,
    /// Its public port's offset from `--base-port`.
    pub offset: u16,
}

/// The stack, in start order: every service after the ones it calls.
pub const STACK: [Instance; 6] = [
    Instance { pod: "ratings", service: Service::Ratings, version: ReviewsVersion::V1, offset: 5 },
    Instance { pod: "details", service: Service::Details, version: ReviewsVersion::V1, offset: 1 },
    Instance { pod: "reviews-v1", service: Service::Reviews, version: ReviewsVersion::V1, offset: 2 },
    Instance { pod: "reviews-v2", service: Service::Reviews, version: ReviewsVersion::V2, offset: 3 },
    Instance { pod: "reviews-v3", service: Service::Reviews, version: ReviewsVersion::V3, offset: 4 },
    Instance { pod: "productpage", service: Service::Productpage, version: ReviewsVersion::V1, offset: 0 },
];

/// Ratings v2 on MySQL, beside the stack under `--ratings-db`: after ratings, before reviews.
pub const RATINGS_V2_MYSQL: Instance =
    Instance { pod: super::mysql::POD, service: Service::Ratings, version: ReviewsVersion::V1, offset: 6 };

/// The services `service` calls.
pub fn upstreams_of(service: Service) -> &'static [Upstream] {
    match service {
        Service::Productpage => {
            &[bookinfo_productpage::DETAILS, bookinfo_productpage::REVIEWS, bookinfo_productpage::RATINGS]
        }
        Service::Reviews => &[bookinfo_reviews::RATINGS],
        Service::Details | Service::Ratings => &[],
    }
}

/// Variables a child must not inherit from the shell: `up` sets what each child needs, and
/// each service has a telemetry identity of its own.
pub fn scrubbed() -> Vec<String> {
    let mut names: Vec<String> =
        [OTEL_SERVICE_NAME, BOOKINFO_ROUTES, SERVICES_DOMAIN, ENABLE_RATINGS, STAR_COLOR, PORT, HOST]
            .map(str::to_owned)
            .to_vec();
    for upstream in upstreams_of(Service::Productpage) {
        names.extend(upstream.address_vars());
    }
    names
}

/// What every service of one stack shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// The program (this one).
    pub exe: PathBuf,
    /// The address the services listen on.
    pub host: IpAddr,
    /// Where the services send their spans, when the stack receives them.
    pub otlp: Option<String>,
    /// `RUST_LOG` for the services, unless the shell sets it.
    pub log_level: String,
    /// Worker threads per service.
    pub workers: usize,
    /// The users the routing tells apart, for productpage's sign-in form.
    pub routed_users: Vec<String>,
}

/// A service's child: `bookinfo serve` with its variables.
#[derive(Debug, Clone)]
pub struct App<'a> {
    /// The workload.
    pub instance: Instance,
    /// Its name in output.
    pub name: String,
    /// Its port (0: any free one).
    pub port: u16,
    /// Its tracing mode.
    pub mode: TracingMode,
    /// Where each upstream is reached.
    pub upstreams: Vec<(Upstream, SocketAddr)>,
    /// Per-version addresses of reviews (productpage, without a mesh to spread its calls).
    pub reviews_subsets: Vec<(ReviewsVersion, SocketAddr)>,
    /// Per-version addresses of ratings, when it has more than one version (`--ratings-db`).
    pub ratings_subsets: Vec<(&'static str, SocketAddr)>,
    /// Variables of this workload alone (ratings v2's database).
    pub extra: Vec<(String, String)>,
    /// Routing files the service applies itself (none under the mesh).
    pub routes: &'a [PathBuf],
    /// `OTEL_PROPAGATORS` to set (the mesh's tracer decides).
    pub propagators: Option<&'static str>,
}

impl App<'_> {
    /// The child's spec; `source` is the environment the child inherits, which `up` adds to and
    /// scrubs.
    pub fn spec(&self, common: &Common, source: &(impl Source + ?Sized)) -> Spec {
        Spec {
            name: self.name.clone(),
            program: common.exe.clone(),
            args: self.args(common),
            env: self.variables(common, source),
            scrub: self.scrub(),
            ready: Ready::Line,
            stops: if self.instance.service == Service::Productpage { Stops::First } else { Stops::Then },
        }
    }

    /// `serve SERVICE --port PORT --host HOST` (and reviews' `--version`).
    fn args(&self, common: &Common) -> Vec<String> {
        let instance = self.instance;
        let mut args = vec![
            "serve".to_owned(),
            instance.service.as_str().to_owned(),
            "--port".to_owned(),
            self.port.to_string(),
            "--host".to_owned(),
            common.host.to_string(),
        ];
        if instance.service == Service::Reviews {
            args.extend(["--version".to_owned(), instance.version.to_string()]);
        }
        args
    }

    /// The variables set for the child, on top of what it inherits from `source`.
    fn variables(&self, common: &Common, source: &(impl Source + ?Sized)) -> Vec<(String, String)> {
        let instance = self.instance;
        let mut env: Vec<(String, String)> =
            vec![(BOOKINFO_TRACING.into(), self.mode.to_string()), (HOSTNAME.into(), instance.pod.into())];
        // Set at all, even empty, the shell's own wins: the child inherits it.
        if source.raw(RUST_LOG).is_none() {
            env.push((RUST_LOG.into(), common.log_level.clone()));
        }
        env.push((WORKERS.into(), common.workers.to_string()));
        if instance.service == Service::Productpage {
            // Always set: under `up` the routing files decide, whatever the shell says.
            env.push((ROUTED_USERS.into(), common.routed_users.join(",")));
        }
        if !self.routes.is_empty() && !upstreams_of(instance.service).is_empty() {
            let files: Vec<String> = self.routes.iter().map(|f| f.display().to_string()).collect();
            env.push((BOOKINFO_ROUTES.into(), files.join(",")));
        }
        if let Some(endpoint) = &common.otlp {
            env.push((OTEL_EXPORTER_OTLP_ENDPOINT.into(), endpoint.clone()));
            env.push((OTEL_EXPORTER_OTLP_PROTOCOL.into(), "http/protobuf".into()));
            if source.raw(OTEL_BSP_SCHEDULE_DELAY).is_none() {
                // Traces show up as soon as they are done, not five seconds later.
                env.push((OTEL_BSP_SCHEDULE_DELAY.into(), "200".into()));
            }
        }
        // Each service names itself: a `service.name` in the shell's resource attributes would
        // name all six alike, as OTEL_SERVICE_NAME would (which is scrubbed).
        if let Some(attributes) = source.get(OTEL_RESOURCE_ATTRIBUTES) {
            let kept: Vec<&str> = attributes
                .split(',')
                .filter(|entry| entry.split('=').next().map(str::trim) != Some("service.name"))
                .collect();
            env.push((OTEL_RESOURCE_ATTRIBUTES.into(), kept.join(",")));
        }
        if let Some(propagators) = self.propagators {
            env.push((OTEL_PROPAGATORS.into(), propagators.into()));
        }
        for (upstream, addr) in &self.upstreams {
            let [host_var, port_var, _] = upstream.address_vars();
            let addr = reachable(*addr);
            env.push((host_var, addr.ip().to_string()));
            env.push((port_var, addr.port().to_string()));
        }
        if !self.ratings_subsets.is_empty() && !upstreams_of(instance.service).is_empty() {
            let [_, _, subsets_var] = bookinfo_reviews::RATINGS.address_vars();
            env.push((subsets_var, subsets(&self.ratings_subsets)));
        }
        env.extend(self.extra.iter().cloned());
        if !self.reviews_subsets.is_empty() {
            let [_, _, subsets_var] = bookinfo_productpage::REVIEWS.address_vars();
            env.push((subsets_var, subsets(&self.reviews_subsets)));
        }
        env
    }

    /// The inherited variables the child must not see.
    fn scrub(&self) -> Vec<String> {
        let mut scrub = scrubbed();
        if self.instance.service != Service::Ratings {
            // It selects ratings' fault modes; elsewhere it would only mislabel the service.
            scrub.push(SERVICE_VERSION.to_owned());
        }
        if self.propagators.is_none() && !matches!(self.mode, TracingMode::Otel) {
            scrub.push(OTEL_PROPAGATORS.to_owned());
        }
        scrub
    }
}

/// Where to reach a listener: a wildcard address is reached on loopback.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// A `BOOKINFO_*_SUBSETS` value: `v1=http://127.0.0.1:9082,v2=...`.
fn subsets(versions: &[(impl std::fmt::Display, SocketAddr)]) -> String {
    let list: Vec<String> =
        versions.iter().map(|(v, addr)| format!("{v}=http://{}", reachable(*addr))).collect();
    list.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_reached_on_loopback() {
        assert_eq!(reachable("0.0.0.0:1".parse().unwrap()), "127.0.0.1:1".parse().unwrap());
        assert_eq!(reachable("[::]:1".parse().unwrap()), "[::1]:1".parse().unwrap());
    }

    #[test]
    fn the_stack_starts_every_service_after_its_upstreams() {
        let position = |name: &str| STACK.iter().position(|i| i.pod == name).unwrap();
        assert!(position("ratings") < position("reviews-v2"));
        assert!(position("details") < position("productpage"));
        assert!(position("reviews-v3") < position("productpage"));
        let mut offsets: Vec<_> = STACK.iter().map(|i| i.offset).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, [0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_child_is_told_where_its_upstreams_are_in_the_services_own_variables() {
        let common = Common { routed_users: vec!["jason".into()], ..common() };
        let app = App {
            instance: STACK[5],
            name: "productpage".into(),
            port: 0,
            mode: TracingMode::Otel,
            upstreams: vec![(bookinfo_productpage::DETAILS, "0.0.0.0:9081".parse().unwrap())],
            reviews_subsets: vec![(ReviewsVersion::V2, "127.0.0.1:9083".parse().unwrap())],
            ratings_subsets: Vec::new(),
            extra: Vec::new(),
            routes: &[],
            propagators: Some("tracecontext,baggage"),
        };
        let spec = app.spec(&common, &[("OTHER", "x")]);
        let var = |name: &str| spec.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(var("DETAILS_HOSTNAME"), Some("127.0.0.1"));
        assert_eq!(var("DETAILS_SERVICE_PORT"), Some("9081"));
        assert_eq!(var("BOOKINFO_REVIEWS_SUBSETS"), Some("v2=http://127.0.0.1:9083"));
        assert_eq!(var("OTEL_PROPAGATORS"), Some("tracecontext,baggage"));
        assert_eq!(var("BOOKINFO_ROUTED_USERS"), Some("jason"));
        assert_eq!(var("BOOKINFO_TRACING"), Some("otel"));
        assert!(
            spec.scrub.iter().any(|s| s == "REVIEWS_HOSTNAME")
                && spec.scrub.iter().any(|s| s == "SERVICE_VERSION")
        );
        assert_eq!(spec.args, ["serve", "productpage", "--port", "0", "--host", "127.0.0.1"]);
    }

    fn common() -> Common {
        Common {
            exe: "bookinfo".into(),
            host: Ipv4Addr::LOCALHOST.into(),
            otlp: Some("http://127.0.0.1:4318".into()),
            log_level: "warn".into(),
            workers: 1,
            routed_users: Vec::new(),
        }
    }

    fn details() -> App<'static> {
        App {
            instance: STACK[1],
            name: "details".into(),
            port: 0,
            mode: TracingMode::Otel,
            upstreams: Vec::new(),
            reviews_subsets: Vec::new(),
            ratings_subsets: Vec::new(),
            extra: Vec::new(),
            routes: &[],
            propagators: None,
        }
    }

    fn var(spec: &Spec, name: &str) -> Option<String> {
        spec.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_shells_resource_attributes_go_on_without_its_service_name() {
        let source = [("OTEL_RESOURCE_ATTRIBUTES", "service.name=mine,team=a")];
        let spec = details().spec(&common(), &source);
        assert_eq!(var(&spec, "OTEL_RESOURCE_ATTRIBUTES").as_deref(), Some("team=a"));
        let spec = details().spec(&common(), &[("OTHER", "x")]);
        assert_eq!(var(&spec, "OTEL_RESOURCE_ATTRIBUTES"), None);
    }

    #[test]
    fn the_log_level_and_the_export_delay_are_set_unless_the_shell_sets_them() {
        let spec = details().spec(&common(), &[("OTHER", "x")]);
        assert_eq!(var(&spec, "RUST_LOG").as_deref(), Some("warn"));
        assert_eq!(var(&spec, "OTEL_BSP_SCHEDULE_DELAY").as_deref(), Some("200"));
        let shell = [("RUST_LOG", "debug"), ("OTEL_BSP_SCHEDULE_DELAY", "")];
        let spec = details().spec(&common(), &shell);
        assert_eq!(var(&spec, "RUST_LOG"), None, "inherited from the shell");
        assert_eq!(var(&spec, "OTEL_BSP_SCHEDULE_DELAY"), None, "set, though empty");
    }
}
