//! Configuration read from the environment, the one seam every crate reads it through.
//!
//! Every setting is read through a [`Source`], so that tests hand it a map of variables instead
//! of mutating the process environment (which races with other threads), and so that a
//! [`Recording`] source can tell which variables a configuration reads. Errors name the
//! variable, the value and what was expected. The duration grammar ([`parse_duration`]) is the
//! one of variables, flags and Istio's YAML alike, and [`named!`] is how every named choice
//! (a tracing mode, a service, a mesh tracer) reads and prints.

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

    /// `name` parsed as a request deadline ([`parse_duration`], a day at most), or `default`
    /// when unset.
    ///
    /// # Errors
    /// A value that is not such a duration gives a [`ConfigError`].
    fn duration_or(&self, name: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(value) => parse_duration(&value).ok().filter(|d| *d <= MAX_DEADLINE).ok_or_else(|| {
                ConfigError::new(name, &value, "a duration of a day at most, such as 3s or 2500ms")
            }),
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

/// A [`Source`] that notes the name of every variable looked up in it: which variables a
/// configuration reads, set or not (how the image test holds the manifests to the binary).
#[derive(Debug)]
pub struct Recording<S> {
    inner: S,
    names: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl<S: Source> Recording<S> {
    /// Records the look-ups made in `inner`.
    pub fn new(inner: S) -> Self {
        Self { inner, names: std::sync::Mutex::default() }
    }

    /// The names looked up so far, sorted.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        self.names.lock().map(|names| names.clone()).unwrap_or_default()
    }
}

impl<S: Source> Source for Recording<S> {
    fn raw(&self, name: &str) -> Option<String> {
        if let Ok(mut names) = self.names.lock() {
            names.insert(name.to_owned());
        }
        self.inner.raw(name)
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

/// A name that is none of a choice's (`named!`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}: expected {}", expected.join(", "))]
pub struct UnknownName {
    /// What was being named: `tracing mode`, `service`, ...
    pub what: &'static str,
    /// The text given.
    pub given: String,
    /// The names there are.
    pub expected: &'static [&'static str],
}

/// Gives an enum its names, one per variant, and from them `NAMES`, `ALL`, `as_str`,
/// `Display` and a `FromStr` that ignores letter case and surrounding spaces and whose error
/// ([`UnknownName`]) lists the names: every named choice of the project reads and prints this
/// one way.
///
/// ```
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// enum Colour { Red, Black }
/// bookinfo_config::named!(Colour, "colour", { Red => "red", Black => "black" });
/// assert_eq!(" RED".parse::<Colour>(), Ok(Colour::Red));
/// assert_eq!(Colour::Black.to_string(), "black");
/// assert!("blue".parse::<Colour>().unwrap_err().to_string().contains("red, black"));
/// ```
#[macro_export]
macro_rules! named {
    ($ty:ident, $what:literal, { $($variant:ident => $name:expr),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];
            /// Every name, in the order of [`Self::ALL`].
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// Its name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::UnknownName;

            fn from_str(text: &str) -> ::std::result::Result<Self, Self::Err> {
                let text = text.trim();
                $ty::ALL.iter().copied().find(|v| v.as_str().eq_ignore_ascii_case(text)).ok_or_else(|| {
                    $crate::UnknownName { what: $what, given: text.to_owned(), expected: $ty::NAMES }
                })
            }
        }
    };
}

/// The longest request deadline a variable may set: a day is far beyond any sensible one.
pub const MAX_DEADLINE: Duration = Duration::from_secs(86_400);

/// The one duration grammar of the project (variables, flags, Istio's YAML): a number with a
/// unit, `ns`, `us` (`µs`), `ms`, `s`, `m`, `h` or `d`, fractions allowed, several in a row as
/// Go writes them (`1m30s`); a bare number is seconds. `3s`, `2.5s`, `2500ms`, `1h`, `2d`, `90`.
///
/// # Errors
/// Anything else (no number, an unknown unit, a negative value, a duration past what a
/// [`Duration`] holds), as an [`InvalidDuration`] saying what is expected.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let text = text.trim();
    let invalid = || InvalidDuration(text.to_owned());
    if text.is_empty() {
        return Err(invalid());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|_| invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_end);
        let unit_end = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let seconds_per: f64 = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return Err(invalid()),
        };
        let number: f64 = number.parse().map_err(|_| invalid())?;
        let part = Duration::try_from_secs_f64(number * seconds_per).map_err(|_| invalid())?;
        total = total.checked_add(part).ok_or_else(invalid)?;
        rest = next;
    }
    Ok(total)
}

/// A text that is not a duration of [`parse_duration`]'s grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a duration such as 3s, 2500ms, 1m30s or 2d")]
pub struct InvalidDuration(pub String);

/// The Java `Boolean.valueOf` reading the original services use: true only for `true`, in any
/// letter case.
pub fn java_bool(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_units_fractions_and_go_style_runs() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2500ms"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("2.5s"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration(" 10 "), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
    }

    #[test]
    fn durations_reject_garbage_negative_and_huge_values() {
        for bad in [
            "",
            "s",
            "abc",
            "-1s",
            "NaN",
            "inf",
            "1e400",
            "3 minutes",
            "1y",
            "18446744073709551615d",
            "1..5s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        let source = [("BOOKINFO_REVIEWS_TIMEOUT", "2d")];
        assert!(
            source.duration_or("BOOKINFO_REVIEWS_TIMEOUT", Duration::ZERO).is_err(),
            "a deadline is a day at most"
        );
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
    fn a_recording_source_notes_every_lookup_set_or_not() {
        let source = Recording::new([("PORT", "1"), ("UNREAD", "x")]);
        assert_eq!(source.get(PORT).as_deref(), Some("1"));
        assert_eq!(source.get(HOST), None);
        let names: Vec<String> = source.names().into_iter().collect();
        assert_eq!(names, [HOST, PORT]);
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Mode {
        Fast,
        Slow,
    }
    named!(Mode, "mode", { Fast => "fast", Slow => "slow-ish" });

    #[test]
    fn named_choices_read_any_case_and_name_the_others_when_wrong() {
        assert_eq!("FAST".parse::<Mode>(), Ok(Mode::Fast));
        assert_eq!(" slow-ish ".parse::<Mode>(), Ok(Mode::Slow));
        assert_eq!(Mode::Slow.to_string(), "slow-ish");
        assert_eq!(Mode::ALL, [Mode::Fast, Mode::Slow]);
        let err = "medium".parse::<Mode>().unwrap_err();
        assert_eq!(err.to_string(), r#"unknown mode "medium": expected fast, slow-ish"#);
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
