//! The Bookinfo services, by name: what `bookinfo serve` runs and `bookinfo up` starts.

/// A Bookinfo service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

// Each name is its Kubernetes Service, its `app` label, its `service.name`.
bookinfo_config::named!(Service, "service", {
    Productpage => bookinfo_productpage::NAME,
    Details => bookinfo_details::NAME,
    Reviews => bookinfo_reviews::NAME,
    Ratings => bookinfo_ratings::NAME,
});
