//! The services a Bookinfo service calls, and where they live.
//!
//! Addresses come from the same variables as in Istio's Bookinfo (`DETAILS_HOSTNAME`,
//! `DETAILS_SERVICE_PORT`, ..., `SERVICES_DOMAIN`). In the local stack, where no Kubernetes
//! Service spreads requests over versions, an upstream can also list one address per version
//! (`BOOKINFO_REVIEWS_SUBSETS=v1=http://127.0.0.1:9082,...`).
//!
//! details v2 also calls one service outside the mesh, the Google Books API ([`Upstream::Books`]).

use std::fmt;

use actix_web::http::Uri;

use crate::config::{ConfigError, Source};

/// `SERVICES_DOMAIN`: when set, `.` and this value are appended to every upstream host name.
pub const SERVICES_DOMAIN: &str = "SERVICES_DOMAIN";
/// `DO_NOT_ENCRYPT`: `true` makes details v2 call the Google Books API in plain HTTP on port 80,
/// leaving TLS to the mesh (Istio's `bookinfo-details-v2.yaml` sets it).
pub const DO_NOT_ENCRYPT: &str = "DO_NOT_ENCRYPT";
/// `BOOKINFO_BOOKS_URL`: overrides the Google Books API address (a local stand-in, say).
pub const BOOKS_URL: &str = "BOOKINFO_BOOKS_URL";

/// A service that another Bookinfo service calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Upstream {
    /// details: book details.
    Details,
    /// reviews: book reviews (v1, v2, v3).
    Reviews,
    /// ratings: star ratings.
    Ratings,
    /// The Google Books API, outside the mesh (details v2 only).
    Books,
}

impl Upstream {
    /// The service name, as in Kubernetes and in metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Upstream::Details => "details",
            Upstream::Reviews => "reviews",
            Upstream::Ratings => "ratings",
            Upstream::Books => "books",
        }
    }

    /// The variables that place a service of the mesh: host name, port, per-version addresses
    /// (`DETAILS_HOSTNAME`, `DETAILS_SERVICE_PORT`, `BOOKINFO_DETAILS_SUBSETS`). The originals
    /// stopped reading `DETAILS_PORT` because Kubernetes sets it to `tcp://10.0.0.1:9080`.
    /// `None` for [`Upstream::Books`], placed by [`BOOKS_URL`] and [`DO_NOT_ENCRYPT`].
    pub fn address_vars(self) -> Option<[&'static str; 3]> {
        match self {
            Upstream::Details => {
                Some(["DETAILS_HOSTNAME", "DETAILS_SERVICE_PORT", "BOOKINFO_DETAILS_SUBSETS"])
            }
            Upstream::Reviews => {
                Some(["REVIEWS_HOSTNAME", "REVIEWS_SERVICE_PORT", "BOOKINFO_REVIEWS_SUBSETS"])
            }
            Upstream::Ratings => {
                Some(["RATINGS_HOSTNAME", "RATINGS_SERVICE_PORT", "BOOKINFO_RATINGS_SUBSETS"])
            }
            Upstream::Books => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

/// The addresses of every upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstreams {
    endpoints: [Endpoint; 4],
}

impl Upstreams {
    /// Reads `*_HOSTNAME`, `*_SERVICE_PORT`, `SERVICES_DOMAIN`, `BOOKINFO_*_SUBSETS`,
    /// `DO_NOT_ENCRYPT` and `BOOKINFO_BOOKS_URL`.
    ///
    /// # Errors
    /// A port that is not a number, or a subset list that is not `version=http://host:port,...`.
    pub fn from_source(source: &(impl Source + ?Sized)) -> Result<Self, ConfigError> {
        let domain = source.get(SERVICES_DOMAIN);
        let endpoint = |upstream: Upstream| -> Result<Endpoint, ConfigError> {
            let Some([host_var, port_var, subsets_var]) = upstream.address_vars() else {
                return books_endpoint(source);
            };
            let host = source.string_or(host_var, upstream.name());
            let port: u16 = source.parse_or(port_var, 9080, "a port number")?;
            let host = match &domain {
                Some(domain) => format!("{host}.{domain}"),
                None => host,
            };
            let host = if host.contains(':') { format!("[{host}]") } else { host };
            let base = format!("http://{host}:{port}");
            check_base(host_var, &base)?;
            let subsets = match source.get(subsets_var) {
                Some(list) => parse_subsets(subsets_var, &list)?,
                None => Vec::new(),
            };
            Ok(Endpoint { base, subsets })
        };
        Ok(Self {
            endpoints: [
                endpoint(Upstream::Details)?,
                endpoint(Upstream::Reviews)?,
                endpoint(Upstream::Ratings)?,
                endpoint(Upstream::Books)?,
            ],
        })
    }

    /// Where `upstream` lives.
    pub fn endpoint(&self, upstream: Upstream) -> &Endpoint {
        &self.endpoints[upstream.index()]
    }
}

/// The original calls `https://www.googleapis.com` unless `DO_NOT_ENCRYPT=true`, when it uses
/// plain HTTP on port 80 and lets the sidecar originate TLS.
fn books_endpoint(source: &(impl Source + ?Sized)) -> Result<Endpoint, ConfigError> {
    let base = match source.get(BOOKS_URL) {
        Some(url) => {
            let url = url.trim_end_matches('/').to_owned();
            check_base(BOOKS_URL, &url)?;
            url
        }
        None if source.get(DO_NOT_ENCRYPT).as_deref() == Some("true") => {
            "http://www.googleapis.com:80".to_owned()
        }
        None => "https://www.googleapis.com:443".to_owned(),
    };
    Ok(Endpoint { base, subsets: Vec::new() })
}

fn check_base(name: &str, base: &str) -> Result<(), ConfigError> {
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

    #[test]
    fn defaults_are_the_kubernetes_service_names() {
        let upstreams = Upstreams::from_source(&[]).unwrap();
        assert_eq!(upstreams.endpoint(Upstream::Details).base(), "http://details:9080");
        assert_eq!(upstreams.endpoint(Upstream::Reviews).base(), "http://reviews:9080");
        assert_eq!(upstreams.endpoint(Upstream::Ratings).base(), "http://ratings:9080");
    }

    #[test]
    fn services_domain_and_ports_are_applied() {
        let source = [
            ("SERVICES_DOMAIN", "bookinfo.svc.cluster.local"),
            ("RATINGS_HOSTNAME", "stars"),
            ("RATINGS_SERVICE_PORT", "8080"),
        ];
        let upstreams = Upstreams::from_source(&source).unwrap();
        assert_eq!(
            upstreams.endpoint(Upstream::Ratings).base(),
            "http://stars.bookinfo.svc.cluster.local:8080"
        );
    }

    #[test]
    fn a_bad_port_names_the_variable() {
        let err = Upstreams::from_source(&[("DETAILS_SERVICE_PORT", "tcp://10.0.0.1:9080")]).unwrap_err();
        assert_eq!(err.name, "DETAILS_SERVICE_PORT");
    }

    #[test]
    fn subsets_are_parsed_and_picked_among() {
        let source = [("BOOKINFO_REVIEWS_SUBSETS", "v1=http://127.0.0.1:9082, v2=http://127.0.0.1:9083/")];
        let upstreams = Upstreams::from_source(&source).unwrap();
        let reviews = upstreams.endpoint(Upstream::Reviews);
        assert_eq!(reviews.subsets().len(), 2);
        assert_eq!(reviews.subsets()[1].base, "http://127.0.0.1:9083");
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            seen.insert(reviews.pick().to_owned());
        }
        assert_eq!(seen.len(), 2, "both subsets get requests");
    }

    #[test]
    fn the_books_api_is_https_unless_told_not_to_encrypt() {
        let none: [(&str, &str); 0] = [];
        let books = |source: &[(&str, &str)]| {
            Upstreams::from_source(source).unwrap().endpoint(Upstream::Books).base().to_owned()
        };
        assert_eq!(books(&none), "https://www.googleapis.com:443");
        assert_eq!(books(&[("DO_NOT_ENCRYPT", "true")]), "http://www.googleapis.com:80");
        assert_eq!(books(&[("BOOKINFO_BOOKS_URL", "http://127.0.0.1:1234/")]), "http://127.0.0.1:1234");
    }

    #[test]
    fn malformed_subsets_are_rejected() {
        for bad in ["v1", "v1=ftp://x:1", "v1=http://x:1/path", "v1=not a url"] {
            let source = [("BOOKINFO_REVIEWS_SUBSETS", bad)];
            assert!(Upstreams::from_source(&source).is_err(), "{bad}");
        }
    }
}
