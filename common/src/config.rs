//! Typed configuration read from the environment.
//!
//! Every service reads its settings through a [`Source`], so that tests can hand it a map of
//! variables instead of mutating the process environment (which races with other threads).
//! Errors name the variable, the value and what was expected.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Port every service listens on unless told otherwise (as in Istio's Bookinfo).
pub const DEFAULT_PORT: u16 = 9080;

/// `PORT`: the port a service listens on.
pub const PORT: &str = "PORT";
/// `BOOKINFO_HOST`: the address a service listens on (default: every IPv6 and IPv4 address).
pub const HOST: &str = "BOOKINFO_HOST";
/// `BOOKINFO_WORKERS`: number of HTTP worker threads (default: one per CPU core).
pub const WORKERS: &str = "BOOKINFO_WORKERS";
/// `HOSTNAME`: the pod name Kubernetes gives a container; reviews reports it as `podname`.
pub const HOSTNAME: &str = "HOSTNAME";
/// `SERVICE_VERSION`: the version a service reports (`v1`, `v2`, ...; ratings' fault modes).
pub const SERVICE_VERSION: &str = "SERVICE_VERSION";

/// `BOOKINFO_DETAILS_TIMEOUT`: deadline of productpage's call to details (default 3 s).
pub const DETAILS_TIMEOUT: &str = "BOOKINFO_DETAILS_TIMEOUT";
/// `BOOKINFO_REVIEWS_TIMEOUT`: deadline of each of productpage's attempts on reviews (default 3 s).
pub const REVIEWS_TIMEOUT: &str = "BOOKINFO_REVIEWS_TIMEOUT";
/// `BOOKINFO_REVIEWS_ATTEMPTS`: how often productpage tries reviews (default 2, the original's
/// deliberate retry).
pub const REVIEWS_ATTEMPTS: &str = "BOOKINFO_REVIEWS_ATTEMPTS";
/// `BOOKINFO_RATINGS_TIMEOUT`: deadline of a call to ratings (productpage: 3 s; reviews: 10 s
/// with black stars, 2.5 s otherwise).
pub const RATINGS_TIMEOUT: &str = "BOOKINFO_RATINGS_TIMEOUT";

/// Where configuration values come from: the process environment, or a map in tests.
pub trait Source {
    /// The raw value of `name`, if it is set.
    fn raw(&self, name: &str) -> Option<String>;

    /// The value of `name`; an empty value counts as unset.
    fn get(&self, name: &str) -> Option<String> {
        self.raw(name).filter(|value| !value.is_empty())
    }

    /// The value of `name`, or `default` when it is unset or empty.
    fn string_or(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    /// `name` parsed as a `T`, or `default` when unset.
    ///
    /// # Errors
    /// A value that does not parse gives a [`ConfigError`] naming `expected`.
    fn parse_or<T: FromStr>(&self, name: &str, default: T, expected: &str) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value.trim().parse().map_err(|_| ConfigError::new(name, &value, expected)),
        }
    }

    /// `name` parsed as a duration (`3s`, `2500ms`, `2.5s`; a bare number is seconds), or
    /// `default` when unset.
    ///
    /// # Errors
    /// A value that is not a duration gives a [`ConfigError`].
    fn duration_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => parse_duration(&value)
                .ok_or_else(|| ConfigError::new(name, &value, "a duration such as 3s or 2500ms")),
        }
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Env;

impl Source for Env {
    fn raw(&self, name: &str) -> Option<String> {
        std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
    }
}

impl Source for HashMap<String, String> {
    fn raw(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

impl Source for [(&str, &str)] {
    fn raw(&self, name: &str) -> Option<String> {
        self.iter().rev().find(|(key, _)| *key == name).map(|(_, value)| (*value).to_owned())
    }
}

impl<const N: usize> Source for [(&str, &str); N] {
    fn raw(&self, name: &str) -> Option<String> {
        self.as_slice().raw(name)
    }
}

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value:?} is not valid: expected {expected}")]
pub struct ConfigError {
    /// The variable (or option) that holds the value.
    pub name: String,
    /// The value as given.
    pub value: String,
    /// What would have been accepted.
    pub expected: String,
}

impl ConfigError {
    /// An error for `name=value`, which should have been `expected`.
    pub fn new(name: &str, value: &str, expected: &str) -> Self {
        Self { name: name.to_owned(), value: value.to_owned(), expected: expected.to_owned() }
    }
}

/// Parses `3s`, `2.5s`, `2500ms` or a bare number of seconds. Negative, non-finite and absurdly
/// large values are rejected.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let seconds = number.trim().parse::<f64>().ok()? * scale;
    // A day is far beyond any sensible request timeout; it also keeps the conversion exact.
    (seconds.is_finite() && (0.0..=86_400.0).contains(&seconds)).then(|| Duration::from_secs_f64(seconds))
}

/// The Java `Boolean.valueOf` reading the original services use: true only for `true`, in any
/// letter case.
pub fn java_bool(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_milliseconds_and_fractions() {
        assert_eq!(parse_duration("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("2500ms"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_duration("2.5s"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_duration(" 10 "), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
    }

    #[test]
    fn durations_reject_garbage_negative_and_huge_values() {
        for bad in ["", "s", "abc", "-1s", "NaN", "inf", "1e12", "3 minutes"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn errors_name_the_variable_the_value_and_the_expectation() {
        let source = [("PORT", "http")];
        let err = source.parse_or::<u16>(PORT, 9080, "a port number").unwrap_err();
        assert_eq!(err.to_string(), r#"PORT="http" is not valid: expected a port number"#);
    }

    #[test]
    fn empty_values_count_as_unset() {
        let source = [("PORT", "")];
        assert_eq!(source.parse_or::<u16>(PORT, 9080, "a port").unwrap(), 9080);
        assert_eq!(source.string_or(PORT, "x"), "x");
    }

    #[test]
    fn java_bool_is_true_only_for_true() {
        assert!(java_bool(Some("TRUE")));
        assert!(java_bool(Some("true")));
        assert!(!java_bool(Some("yes")));
        assert!(!java_bool(Some("1")));
        assert!(!java_bool(None));
    }
}
