//! JSON written the way the original productpage writes it: Python's `json.dumps` defaults,
//! that is `", "` and `": "` separators on one line and non-ASCII characters escaped as `\uXXXX`.
//! Keys keep the order of the upstream answer.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

/// Python-style JSON for `value`.
pub fn to_string(value: &impl Serialize) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    value.serialize(&mut Serializer::with_formatter(&mut out, PythonFormatter))?;
    // The formatter writes ASCII only.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        let mut units = [0u16; 2];
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            if c.is_ascii() {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..at])?;
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn separators_and_key_order_follow_python() {
        let value: Value =
            serde_json::from_str(r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4},"l":[1,2]}"#).unwrap();
        assert_eq!(
            to_string(&value).unwrap(),
            r#"{"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}, "l": [1, 2]}"#
        );
    }

    #[test]
    fn non_ascii_is_escaped_with_surrogate_pairs() {
        let value = Value::from("café 📚 \"q\"\n");
        assert_eq!(to_string(&value).unwrap(), r#""caf\u00e9 \ud83d\udcda \"q\"\n""#);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    proptest! {
        /// Any string comes out as ASCII JSON that reads back as the same string.
        #[test]
        fn any_string_is_written_as_ascii_json(text in ".{0,200}") {
            let written = to_string(&Value::from(text.as_str())).unwrap();
            prop_assert!(written.is_ascii());
            prop_assert_eq!(serde_json::from_str::<Value>(&written).unwrap(), Value::from(text));
        }
    }
}
