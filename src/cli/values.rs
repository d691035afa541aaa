//! Flag values and the variables flags fall back to: sizes, percentages, file lists, named
//! choices.

use std::path::PathBuf;
use std::str::FromStr;

use bookinfo_config::{ConfigError, Source};
use bookinfo_propagation::TracingMode;

/// A size such as `64MiB`, `500KB` or `1048576` (bytes).
///
/// # Errors
/// Not a number with one of the units, or more bytes than a `u64` holds.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        _ => return Err(SizeError::Malformed(text.to_owned())),
    };
    let number: u64 = number.parse().map_err(|_| SizeError::Malformed(text.to_owned()))?;
    match number.checked_mul(scale) {
        // Every size taken is room for something: none would hold nothing, and fail later.
        Some(0) => Err(SizeError::Zero),
        Some(bytes) => Ok(bytes),
        None => Err(SizeError::TooLarge(text.to_owned())),
    }
}

/// A text [`parse_size`] does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a number with one of the units.
    #[error("{0:?} is not a size such as 64MiB")]
    Malformed(String),
    /// More bytes than a `u64` holds.
    #[error("{0:?} is too large")]
    TooLarge(String),
    /// No bytes at all.
    #[error("0 holds nothing: give a size such as 64MiB")]
    Zero,
}

/// The parser of a named choice (`bookinfo_config::named!`): its names listed in `--help` and
/// in errors, read in any letter case (with `ignore_case`).
pub(super) fn choice<T>(names: &'static [&'static str]) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: FromStr<Err = bookinfo_config::UnknownName> + Clone + Send + Sync + 'static,
{
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(names).try_map(|name| name.parse::<T>())
}

/// The flag's value, or the variable's, parsed; a bad variable is a [`ConfigError`] naming it.
pub(super) fn flag_or_env<T: FromStr>(
    flag: Option<T>,
    name: &str,
    expected: &str,
    source: &(impl Source + ?Sized),
) -> Result<Option<T>, ConfigError> {
    match flag {
        Some(value) => Ok(Some(value)),
        None => source
            .get(name)
            .map(|value| value.trim().parse().map_err(|_| ConfigError::new(name, &value, expected)))
            .transpose(),
    }
}

/// The flag's tracing mode, or `BOOKINFO_TRACING` of `source`, or `otel`.
pub(super) fn tracing_mode(
    flag: Option<TracingMode>,
    source: &(impl Source + ?Sized),
) -> Result<TracingMode, ConfigError> {
    let expected = "propagate, otel or none";
    Ok(flag_or_env(flag, bookinfo_propagation::BOOKINFO_TRACING, expected, source)?.unwrap_or_default())
}

/// The flag's routing files, or the comma-separated `BOOKINFO_ROUTES` of `source`.
pub(super) fn routes(flag: &[PathBuf], source: &(impl Source + ?Sized)) -> Result<Vec<PathBuf>, ConfigError> {
    if !flag.is_empty() {
        return Ok(flag.to_vec());
    }
    let name = bookinfo_http::routing::BOOKINFO_ROUTES;
    let Some(list) = source.get(name) else { return Ok(Vec::new()) };
    list.split(',')
        .map(|f| file_name(f).map_err(|_| ConfigError::new(name, &list, "file names, comma-separated")))
        .collect()
}

/// One file name of a comma-separated list, spaces around it trimmed.
pub(super) fn file_name(text: &str) -> Result<PathBuf, EmptyFileName> {
    let text = text.trim();
    if text.is_empty() { Err(EmptyFileName) } else { Ok(PathBuf::from(text)) }
}

/// An empty name in a comma-separated list of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an empty file name in the list")]
pub(super) struct EmptyFileName;

/// `--mesh-sampling`: a percentage from 0 to 100.
pub(super) fn percent(text: &str) -> Result<f64, NotAPercentage> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|p| (0.0..=100.0).contains(p))
        .ok_or_else(|| NotAPercentage(text.to_owned()))
}

/// A `--mesh-sampling` that is not from 0 to 100.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a percentage from 0 to 100")]
pub(super) struct NotAPercentage(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("500kb"), Ok(500_000));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("lots"), Err(SizeError::Malformed("lots".into())));
        assert_eq!(parse_size("-1MiB"), Err(SizeError::Malformed("-1MiB".into())));
        assert_eq!(parse_size("99999999999GiB"), Err(SizeError::TooLarge("99999999999GiB".into())));
        assert_eq!(parse_size("0"), Err(SizeError::Zero));
        assert_eq!(parse_size("0MiB"), Err(SizeError::Zero));
    }
}
