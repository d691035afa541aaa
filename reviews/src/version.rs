//! reviews v1, v2 and v3: one code base, three sets of defaults.

use std::fmt;
use std::str::FromStr;

/// A reviews version, as baked into the original images' environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ReviewsVersion {
    /// No ratings.
    V1,
    /// Ratings as black stars.
    V2,
    /// Ratings as red stars.
    V3,
}

impl ReviewsVersion {
    /// Every version.
    pub const ALL: [ReviewsVersion; 3] = [ReviewsVersion::V1, ReviewsVersion::V2, ReviewsVersion::V3];

    /// `v1`, `v2` or `v3`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReviewsVersion::V1 => "v1",
            ReviewsVersion::V2 => "v2",
            ReviewsVersion::V3 => "v3",
        }
    }

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

impl fmt::Display for ReviewsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ReviewsVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "v1" => Ok(ReviewsVersion::V1),
            "v2" => Ok(ReviewsVersion::V2),
            "v3" => Ok(ReviewsVersion::V3),
            other => Err(format!("unknown reviews version {other:?}: expected v1, v2 or v3")),
        }
    }
}
