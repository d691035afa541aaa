//! reviews v1, v2 and v3: one code base, three sets of defaults.

/// A reviews version, as baked into the original images' environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReviewsVersion {
    /// No ratings.
    V1,
    /// Ratings as black stars.
    V2,
    /// Ratings as red stars.
    V3,
}

bookinfo_config::named!(ReviewsVersion, "reviews version", { V1 => "v1", V2 => "v2", V3 => "v3" });

impl ReviewsVersion {
    /// The image's `ENABLE_RATINGS` default.
    pub fn enable_ratings(self) -> bool {
        self != ReviewsVersion::V1
    }

    /// The image's `STAR_COLOR` default.
    pub fn star_color(self) -> &'static str {
        match self {
            ReviewsVersion::V3 => "red",
            _ => "black",
        }
    }

    /// The version whose defaults these settings are, for reporting.
    pub fn of(enable_ratings: bool, star_color: &str) -> Self {
        match (enable_ratings, star_color) {
            (false, _) => ReviewsVersion::V1,
            (true, "black") => ReviewsVersion::V2,
            (true, _) => ReviewsVersion::V3,
        }
    }
}
