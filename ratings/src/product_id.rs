//! The product id as the original ratings service reads it.
//!
//! The original takes `parseInt(req.url.split('/').pop())`: JavaScript `parseInt` of the last
//! `/`-separated piece of the raw request target, query string included. So `/ratings/7?x=1` is 7,
//! `/ratings/1/2` is 2, `/ratings/12abc` is 12 and `/ratings/0x10` is 16.

/// Largest integer a JavaScript number holds exactly; larger ids are refused rather than
/// rounded.
const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// The product id of a raw request target (path and query), or `None` where the original gets
/// `NaN`.
pub fn from_target(target: &str) -> Option<i64> {
    parse_int(target.rsplit('/').next().unwrap_or_default())
}

/// JavaScript `parseInt(text)` with no radix, for integers up to 2^53 - 1.
pub fn parse_int(text: &str) -> Option<i64> {
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let (negative, text) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) = match text.get(..2) {
        Some("0x" | "0X") => (16, &text[2..]),
        _ => (10, text),
    };
    let mut value: i64 = 0;
    let mut any = false;
    for digit in digits.chars().map_while(|c| c.to_digit(radix)) {
        value = value
            .checked_mul(i64::from(radix))?
            .checked_add(i64::from(digit))
            .filter(|v| *v <= MAX_SAFE_INTEGER)?;
        any = true;
    }
    any.then_some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_segment_of_the_raw_target_like_the_original() {
        let cases = [
            ("/ratings/0", Some(0)),
            ("/ratings/7?x=1", Some(7)),
            ("/ratings/1/2", Some(2)),
            ("/ratings/12abc", Some(12)),
            ("/ratings/0x10", Some(16)),
            ("/ratings/-1", Some(-1)),
            ("/ratings/+5", Some(5)),
            ("/ratings/", None),
            ("/ratings/abc", None),
            ("/ratings/0x", None),
            ("/ratings/-", None),
            ("/ratings/9007199254740991", Some(9_007_199_254_740_991)),
            ("/ratings/9007199254740992", None),
            ("/ratings/99999999999999999999999", None),
        ];
        for (target, expected) in cases {
            assert_eq!(from_target(target), expected, "{target}");
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_target_is_an_id_or_none(target in ".{0,100}") {
            let _ = from_target(&target);
        }

        #[test]
        fn every_safe_integer_reads_back(n in -MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER, query in "(\\?[a-z=0-9]{0,8})?") {
            prop_assert_eq!(from_target(&format!("/ratings/{n}{query}")), Some(n));
        }
    }
}
