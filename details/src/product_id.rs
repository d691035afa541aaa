//! The product id as the original details service reads it: Ruby's `Integer()` of the last
//! segment of the path (`/details/1/2` is 2, `/details/0x1A` is 26, a trailing `/` is ignored).

/// The product id of a raw request path, or `None` where Ruby's `Integer()` raises.
pub fn from_path(path: &str) -> Option<i64> {
    ruby_integer(path.trim_end_matches('/').rsplit('/').next().unwrap_or_default())
}

/// Ruby `Integer(text)` for values that fit an `i64`: optional surrounding white space and sign,
/// `0x`/`0b`/`0o`/`0d` prefixes, a leading `0` for octal, single underscores between digits.
pub fn ruby_integer(text: &str) -> Option<i64> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (negative, text) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = text.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, &text[2..]),
        Some("0b") => (2, &text[2..]),
        Some("0o") => (8, &text[2..]),
        Some("0d") => (10, &text[2..]),
        _ if text.len() > 1 && text.starts_with('0') => (8, &text[1..]),
        _ => (10, text),
    };
    // Underscores may only separate digits: not lead, trail or repeat.
    if digits.is_empty() || digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let mut value: i64 = 0;
    for c in digits.chars().filter(|c| *c != '_') {
        let digit = c.to_digit(radix)?;
        value = value.checked_mul(i64::from(radix))?.checked_add(i64::from(digit))?;
    }
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_ruby_integer() {
        let cases = [
            ("0", Some(0)),
            ("42", Some(42)),
            ("-3", Some(-3)),
            ("+7", Some(7)),
            ("0x1A", Some(26)),
            ("0b101", Some(5)),
            ("0o17", Some(15)),
            ("017", Some(15)),
            ("0d19", Some(19)),
            ("1_000", Some(1000)),
            (" 12 ", Some(12)),
            ("", None),
            ("abc", None),
            ("12abc", None),
            ("09", None),
            ("1__0", None),
            ("_1", None),
            ("1_", None),
            ("0x", None),
            ("99999999999999999999", None),
        ];
        for (text, expected) in cases {
            assert_eq!(ruby_integer(text), expected, "{text:?}");
        }
    }

    #[test]
    fn the_last_path_segment_is_the_id() {
        assert_eq!(from_path("/details/0"), Some(0));
        assert_eq!(from_path("/details/1/2"), Some(2));
        assert_eq!(from_path("/details/5/"), Some(5));
        assert_eq!(from_path("/details"), None);
        assert_eq!(from_path("/details/"), None);
        assert_eq!(from_path("/details/abc"), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_path_is_an_id_or_none(path in ".{0,100}") {
            let _ = from_path(&path);
        }

        #[test]
        fn every_integer_reads_back_in_decimal_and_hex(n in any::<i64>().prop_filter("has a positive", |n| *n != i64::MIN)) {
            prop_assert_eq!(from_path(&format!("/details/{n}")), Some(n));
            let hex = if n < 0 { format!("-0x{:x}", -n) } else { format!("0x{n:x}") };
            prop_assert_eq!(ruby_integer(&hex), Some(n));
        }
    }
}
