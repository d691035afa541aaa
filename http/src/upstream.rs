//! The services a Bookinfo service calls, and where they live.
//!
//! A service names the services it calls ([`Upstream`]); their addresses come from the same
//! variables as in Istio's Bookinfo (`DETAILS_HOSTNAME`, `DETAILS_SERVICE_PORT`, ...,
//! `SERVICES_DOMAIN`). In the local stack, where no Kubernetes Service spreads requests over
//! versions, an upstream can also list one address per version
//! (`BOOKINFO_REVIEWS_SUBSETS=v1=http://127.0.0.1:9082,...`). A service outside the mesh
//! (details v2's book service) is given its address by the service that calls it.

use std::fmt;

use actix_web::http::Uri;
use bookinfo_config::{ConfigError, Source};

/// `SERVICES_DOMAIN`: when set, `.` and this value are appended to every upstream host name.
pub const SERVICES_DOMAIN: &str = "SERVICES_DOMAIN";

/// A service another Bookinfo service calls, by name (`details`, `reviews`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Upstream(&'static str);

impl Upstream {
    /// The service called `name`, as in Kubernetes and in metrics labels.
    pub const fn named(name: &'static str) -> Self {
        Self(name)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        self.0
    }

    /// The variables that place it in the mesh: host name, port, per-version addresses
    /// (`DETAILS_HOSTNAME`, `DETAILS_SERVICE_PORT`, `BOOKINFO_DETAILS_SUBSETS`). The originals
    /// stopped reading `DETAILS_PORT` because Kubernetes sets it to `tcp://10.0.0.1:9080`.
    pub fn address_vars(self) -> [String; 3] {
        let upper = self.0.to_ascii_uppercase().replace('-', "_");
        [format!("{upper}_HOSTNAME"), format!("{upper}_SERVICE_PORT"), format!("BOOKINFO_{upper}_SUBSETS")]
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One version of an upstream with its own address (the local stack's stand-in for the pods
/// behind a Kubernetes Service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subset {
    /// The version label, such as `v2`.
    pub version: String,
    /// Base URL, such as `http://127.0.0.1:9083`.
    pub base: String,
}

/// Where one upstream lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    base: String,
    subsets: Vec<Subset>,
}

impl Endpoint {
    /// The service address, such as `http://reviews:9080`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The per-version addresses, empty unless configured.
    pub fn subsets(&self) -> &[Subset] {
        &self.subsets
    }

    /// The base URL for a request routed to pods of `version` (`None`: any): with subsets, that
    /// version's (`None` when there is none), or one at random; without, the service address
    /// (in Kubernetes the sidecar routes).
    pub fn choose(&self, version: Option<&str>) -> Option<&str> {
        match version {
            Some(version) if !self.subsets.is_empty() => {
                self.subsets.iter().find(|s| s.version == version).map(|s| s.base.as_str())
            }
            _ => Some(self.pick()),
        }
    }

    /// The base URL for one request: with subsets, one at random (as kube-proxy spreads
    /// connections over pods); otherwise the service address.
    pub fn pick(&self) -> &str {
        match self.subsets.len() {
            0 => &self.base,
            n => &self.subsets[rand::random_range(0..n)].base,
        }
    }
}

/// The addresses of the upstreams one service calls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Upstreams {
    endpoints: Vec<(Upstream, Endpoint)>,
}

impl Upstreams {
    /// Reads where each of `upstreams` lives in the mesh: `*_HOSTNAME` (default: its name),
    /// `*_SERVICE_PORT` (default 9080), `SERVICES_DOMAIN` and `BOOKINFO_*_SUBSETS`.
    ///
    /// # Errors
    /// A port that is not a number, or a subset list that is not `version=http://host:port,...`.
    pub fn from_source(upstreams: &[Upstream], source: &(impl Source + ?Sized)) -> Result<Self, ConfigError> {
        let domain = if upstreams.is_empty() { None } else { source.get(SERVICES_DOMAIN) };
        let endpoint = |upstream: Upstream| -> Result<Endpoint, ConfigError> {
            let [host_var, port_var, subsets_var] = upstream.address_vars();
            let host = source.string_or(&host_var, upstream.name());
            let port: u16 = source.parse_or(&port_var, 9080, "a port number")?;
            let host = match &domain {
                Some(domain) => format!("{host}.{domain}"),
                None => host,
            };
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            let base = format!("http://{host}:{port}");
            check_base(&host_var, &base)?;
            let subsets = match source.get(&subsets_var) {
                Some(list) => parse_subsets(&subsets_var, &list)?,
                None => Vec::new(),
            };
            Ok(Endpoint { base, subsets })
        };
        let endpoints =
            upstreams.iter().map(|u| Ok((*u, endpoint(*u)?))).collect::<Result<_, ConfigError>>()?;
        Ok(Self { endpoints })
    }

    /// These and `upstream`, outside the mesh, at `base` (`https://host:port`).
    pub fn with_external(mut self, upstream: Upstream, base: String) -> Self {
        self.endpoints.push((upstream, Endpoint { base, subsets: Vec::new() }));
        self
    }

    /// Where `upstream` lives, if it is one of these.
    pub fn endpoint(&self, upstream: Upstream) -> Option<&Endpoint> {
        self.endpoints.iter().find(|(u, _)| *u == upstream).map(|(_, endpoint)| endpoint)
    }

    /// Every upstream, with where it lives.
    pub fn iter(&self) -> impl Iterator<Item = (Upstream, &Endpoint)> {
        self.endpoints.iter().map(|(u, e)| (*u, e))
    }
}

/// Checks that `base` (the value of variable `name`, or made from it) is an `http://host:port`
/// address.
///
/// # Errors
/// A [`ConfigError`] naming `name` when it is not.
pub fn check_base(name: &str, base: &str) -> Result<(), ConfigError> {
    let uri: Uri =
        base.parse().map_err(|_| ConfigError::new(name, base, "a host name that forms a valid URL"))?;
    if uri.scheme_str() == Some("http") && uri.host().is_some() && uri.path() == "/" {
        Ok(())
    } else {
        Err(ConfigError::new(name, base, "an http://host:port address"))
    }
}

fn parse_subsets(name: &str, list: &str) -> Result<Vec<Subset>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (version, base) = item
                .split_once('=')
                .ok_or_else(|| ConfigError::new(name, list, "version=http://host:port,..."))?;
            let base = base.trim().trim_end_matches('/').to_owned();
            check_base(name, &base)?;
            Ok(Subset { version: version.trim().to_owned(), base })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETAILS: Upstream = Upstream::named("details");
    const REVIEWS: Upstream = Upstream::named("reviews");
    const RATINGS: Upstream = Upstream::named("ratings");
    const ALL: [Upstream; 3] = [DETAILS, REVIEWS, RATINGS];

    fn base(upstreams: &Upstreams, upstream: Upstream) -> &str {
        upstreams.endpoint(upstream).unwrap().base()
    }

    #[test]
    fn defaults_are_the_kubernetes_service_names() {
        let upstreams = Upstreams::from_source(&ALL, &[]).unwrap();
        assert_eq!(base(&upstreams, DETAILS), "http://details:9080");
        assert_eq!(base(&upstreams, REVIEWS), "http://reviews:9080");
        assert_eq!(base(&upstreams, RATINGS), "http://ratings:9080");
        assert_eq!(Upstreams::from_source(&[RATINGS], &[]).unwrap().endpoint(DETAILS), None);
    }

    #[test]
    fn services_domain_and_ports_are_applied() {
        let source = [
            ("SERVICES_DOMAIN", "bookinfo.svc.cluster.local"),
            ("RATINGS_HOSTNAME", "stars"),
            ("RATINGS_SERVICE_PORT", "8080"),
        ];
        let upstreams = Upstreams::from_source(&ALL, &source).unwrap();
        assert_eq!(base(&upstreams, RATINGS), "http://stars.bookinfo.svc.cluster.local:8080");
    }

    #[test]
    fn a_bad_port_names_the_variable() {
        let err =
            Upstreams::from_source(&ALL, &[("DETAILS_SERVICE_PORT", "tcp://10.0.0.1:9080")]).unwrap_err();
        assert_eq!(err.name, "DETAILS_SERVICE_PORT");
    }

    #[test]
    fn subsets_are_parsed_and_picked_among() {
        let source = [("BOOKINFO_REVIEWS_SUBSETS", "v1=http://127.0.0.1:9082, v2=http://127.0.0.1:9083/")];
        let upstreams = Upstreams::from_source(&ALL, &source).unwrap();
        let reviews = upstreams.endpoint(REVIEWS).unwrap();
        assert_eq!(reviews.subsets().len(), 2);
        assert_eq!(reviews.subsets()[1].base, "http://127.0.0.1:9083");
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(reviews.pick().to_owned());
        }
        assert_eq!(seen.len(), 2, "both subsets get requests");
    }

    #[test]
    fn an_external_upstream_keeps_its_address() {
        let books = Upstream::named("books");
        let upstreams = Upstreams::default().with_external(books, "https://www.googleapis.com:443".into());
        assert_eq!(base(&upstreams, books), "https://www.googleapis.com:443");
    }

    #[test]
    fn malformed_subsets_are_rejected() {
        for bad in ["v1", "v1=ftp://x:1", "v1=http://x:1/path", "v1=not a url"] {
            let source = [("BOOKINFO_REVIEWS_SUBSETS", bad)];
            assert!(Upstreams::from_source(&ALL, &source).is_err(), "{bad}");
        }
    }
}
