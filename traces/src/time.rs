//! RFC 3339 timestamps, as Jaeger's query API takes them (`2026-11-23T10:33:20.000000005Z`).

use std::time::SystemTime;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// `time` in UTC with nanoseconds.
pub fn rfc3339(time: SystemTime) -> String {
    OffsetDateTime::from(time).to_offset(UtcOffset::UTC).format(&Rfc3339).unwrap_or_default()
}

/// `time` in UTC to the second, such as `2026-11-23T10:33:20Z`.
pub fn rfc3339_seconds(time: SystemTime) -> String {
    let time = OffsetDateTime::from(time).to_offset(UtcOffset::UTC);
    time.replace_nanosecond(0).unwrap_or(time).format(&Rfc3339).unwrap_or_default()
}

/// A timestamp in any offset; `None` when it is not RFC 3339 or before the epoch.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let time = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    (time.unix_timestamp() >= 0).then(|| time.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_rfc3339_in_utc_and_read_back() {
        assert_eq!(rfc3339_seconds(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::new(1_795_430_000, 5);
        assert_eq!(rfc3339(t), "2026-11-23T10:33:20.000000005Z");
        assert_eq!(rfc3339_seconds(t), "2026-11-23T10:33:20Z");
        assert_eq!(parse_rfc3339("2026-11-23T10:33:20.000000005Z"), Some(t));
        assert_eq!(parse_rfc3339("2026-11-23T11:33:20.000000005+01:00"), Some(t));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), None);
    }
}
