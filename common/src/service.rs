//! The Bookinfo services, by name: what `bookinfo serve` runs and `bookinfo up` starts.

use std::fmt;

/// A Bookinfo service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum Service {
    /// The web page and API.
    Productpage,
    /// Book details.
    Details,
    /// Book reviews (v1, v2, v3).
    Reviews,
    /// Star ratings.
    Ratings,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 4] =
        [Service::Productpage, Service::Details, Service::Reviews, Service::Ratings];

    /// Its name: its Kubernetes Service, its `app` label, its `service.name`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Productpage => "productpage",
            Service::Details => "details",
            Service::Reviews => "reviews",
            Service::Ratings => "ratings",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
