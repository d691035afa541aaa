//! The original ratings service's `SERVICE_VERSION` modes, as pure decisions.
//!
//! Each decision takes the time since start and a random draw, so tests can pin both.

use std::time::Duration;

/// How long `v-delayed` holds half of its answers.
pub const DELAY: Duration = Duration::from_secs(7);
/// `v-unavailable` flips between available and unavailable this often, starting available.
pub const UNAVAILABLE_PERIOD: Duration = Duration::from_secs(60);
/// `v-unhealthy` flips health and availability this often, starting healthy.
pub const UNHEALTHY_PERIOD: Duration = Duration::from_secs(15 * 60);

/// The behaviour chosen by `SERVICE_VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `v1` and any unknown value: ratings from memory.
    Normal,
    /// `v2`: ratings from the database (MySQL; see [`crate::mysql`]).
    Database,
    /// `v-faulty`: half of the reads answer 503.
    Faulty,
    /// `v-delayed`: half of the reads answer after [`DELAY`].
    Delayed,
    /// `v-unavailable`: reads answer 503 every other [`UNAVAILABLE_PERIOD`].
    Unavailable,
    /// `v-unhealthy`: every other [`UNHEALTHY_PERIOD`], reads answer 503 and `/health` 500.
    Unhealthy,
}

impl Mode {
    /// The mode for a `SERVICE_VERSION` value; anything unknown behaves like `v1`, as in the
    /// original.
    pub fn from_version(version: &str) -> Self {
        match version {
            "v2" => Mode::Database,
            "v-faulty" => Mode::Faulty,
            "v-delayed" => Mode::Delayed,
            "v-unavailable" => Mode::Unavailable,
            "v-unhealthy" => Mode::Unhealthy,
            _ => Mode::Normal,
        }
    }

    /// What a read does, `elapsed` after start, given a uniform draw in `[0, 1)`.
    pub fn read(&self, elapsed: Duration, draw: f64) -> Read {
        match self {
            Mode::Normal => Read::Answer,
            Mode::Database => Read::Database,
            // The original tests `Math.random() <= 0.5`.
            Mode::Faulty if draw <= 0.5 => Read::Unavailable,
            Mode::Delayed if draw <= 0.5 => Read::After(DELAY),
            Mode::Faulty | Mode::Delayed => Read::Answer,
            Mode::Unavailable if flipped(elapsed, UNAVAILABLE_PERIOD) => Read::Unavailable,
            Mode::Unhealthy if flipped(elapsed, UNHEALTHY_PERIOD) => Read::Unavailable,
            Mode::Unavailable | Mode::Unhealthy => Read::Answer,
        }
    }

    /// Whether `/health` reports healthy, `elapsed` after start.
    pub fn healthy(&self, elapsed: Duration) -> bool {
        !(matches!(self, Mode::Unhealthy) && flipped(elapsed, UNHEALTHY_PERIOD))
    }
}

/// What one read of ratings does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Answer at once.
    Answer,
    /// Answer after a delay.
    After(Duration),
    /// Answer 503 "Service unavailable".
    Unavailable,
    /// Answer what the database holds.
    Database,
}

/// True in every odd period: the state has flipped an odd number of times.
fn flipped(elapsed: Duration, period: Duration) -> bool {
    (elapsed.as_millis() / period.as_millis()) % 2 == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn versions_map_to_modes_and_unknown_ones_behave_like_v1() {
        assert_eq!(Mode::from_version("v1"), Mode::Normal);
        assert_eq!(Mode::from_version("v3"), Mode::Normal);
        assert_eq!(Mode::from_version("v-faulty"), Mode::Faulty);
        assert_eq!(Mode::from_version("v2"), Mode::Database);
    }

    #[test]
    fn faulty_fails_when_the_draw_is_at_most_one_half() {
        assert_eq!(Mode::Faulty.read(S(0), 0.0), Read::Unavailable);
        assert_eq!(Mode::Faulty.read(S(0), 0.5), Read::Unavailable);
        assert_eq!(Mode::Faulty.read(S(0), 0.51), Read::Answer);
    }

    #[test]
    fn delayed_holds_half_of_the_answers_for_seven_seconds() {
        assert_eq!(Mode::Delayed.read(S(0), 0.2), Read::After(S(7)));
        assert_eq!(Mode::Delayed.read(S(0), 0.9), Read::Answer);
    }

    #[test]
    fn unavailable_flips_every_minute_starting_available() {
        let m = Mode::Unavailable;
        assert_eq!(m.read(S(0), 0.0), Read::Answer);
        assert_eq!(m.read(S(59), 0.0), Read::Answer);
        assert_eq!(m.read(S(60), 0.0), Read::Unavailable);
        assert_eq!(m.read(S(119), 0.0), Read::Unavailable);
        assert_eq!(m.read(S(120), 0.0), Read::Answer);
        assert!(m.healthy(S(60)), "v-unavailable never reports unhealthy");
    }

    #[test]
    fn unhealthy_flips_health_and_reads_every_fifteen_minutes() {
        let m = Mode::Unhealthy;
        assert!(m.healthy(S(899)));
        assert_eq!(m.read(S(899), 0.0), Read::Answer);
        assert!(!m.healthy(S(900)));
        assert_eq!(m.read(S(900), 0.0), Read::Unavailable);
        assert!(m.healthy(S(1800)));
    }

    #[test]
    fn the_database_version_reads_its_database() {
        assert_eq!(Mode::Database.read(S(0), 0.0), Read::Database);
        assert!(Mode::Database.healthy(S(0)));
    }
}
