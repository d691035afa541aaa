//! W3C Baggage: the codec, the edge rule for the `user` member (applied to requests by
//! [`crate::edge`]), and the OpenTelemetry propagator built on them.
//!
//! Members keep their order and their exact text when they pass through: only what a service
//! changes is written anew. Several `baggage` headers combine into one list, as the
//! specification says of repeated headers. Limits (64 members, 8192 bytes) drop whole members
//! from the end; a header that does not parse is dropped whole, never turned into an error.

use std::sync::LazyLock;

use opentelemetry::Context;
use opentelemetry::baggage::{BaggageExt, BaggageMetadata, KeyValueMetadata};
use opentelemetry::propagation::text_map_propagator::FieldIter;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// The header.
pub const BAGGAGE: &str = "baggage";
/// Most members a baggage list carries.
pub const MAX_MEMBERS: usize = 64;
/// Most bytes a baggage list takes, separators included.
pub const MAX_BYTES: usize = 8192;
/// The member the edge service owns: who is signed in.
pub const USER: &str = "user";

/// Value bytes that must be percent-encoded: everything outside the W3C `baggage-octet` set.
const VALUE_ENCODED: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b',').add(b';').add(b'\\').add(b'%');

/// One list member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its key.
    pub key: String,
    /// Its value, percent-decoded.
    pub value: String,
    /// Its properties, as received (`;a=1;b`), without surrounding white space.
    pub properties: String,
    /// The member's text as it goes on the wire.
    raw: String,
}

impl Member {
    /// A new member; the value is percent-encoded as needed.
    pub fn new(key: &str, value: &str) -> Self {
        let raw = format!("{key}={}", utf8_percent_encode(value, VALUE_ENCODED));
        Self { key: key.to_owned(), value: value.to_owned(), properties: String::new(), raw }
    }

    /// The member as written in a header.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

/// A baggage list, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Baggage {
    members: Vec<Member>,
}

impl Baggage {
    /// Parses every `baggage` header value, in order, as one list. A value that does not parse
    /// is dropped (and logged at debug level); members past the limits are dropped.
    pub fn from_headers<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut baggage = Self::default();
        for value in values {
            match parse(value) {
                Ok(members) => baggage.members.extend(members),
                Err(reason) => {
                    tracing::debug!(%reason, header = %value.chars().take(80).collect::<String>(), "baggage dropped")
                }
            }
        }
        baggage.enforce_limits();
        baggage
    }

    /// The members, in order.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members.iter().find(|m| m.key == key).map(|m| m.value.as_str())
    }

    /// The edge rule on a list: drops every `user` member the client sent, then puts
    /// `user=<name>` first for a signed-in user. Everything else keeps its place and text; at
    /// the limits, members are dropped from the end, so the user's always stays.
    pub fn set_user(&mut self, user: Option<&str>) {
        self.members.retain(|m| m.key != USER);
        if let Some(user) = user.filter(|u| !u.is_empty()) {
            self.members.insert(0, Member::new(USER, user));
        }
        self.enforce_limits();
    }

    /// The header value, or `None` for an empty list.
    pub fn to_header(&self) -> Option<String> {
        (!self.members.is_empty())
            .then(|| self.members.iter().map(Member::as_str).collect::<Vec<_>>().join(","))
    }

    fn enforce_limits(&mut self) {
        let mut bytes = 0;
        let mut keep = 0;
        for member in &self.members {
            let cost = member.raw.len() + usize::from(keep > 0);
            if keep == MAX_MEMBERS || bytes + cost > MAX_BYTES {
                break;
            }
            bytes += cost;
            keep += 1;
        }
        if keep < self.members.len() {
            tracing::debug!(dropped = self.members.len() - keep, "baggage members over the limits dropped");
            self.members.truncate(keep);
        }
    }
}

/// `key = value *(; property)` members separated by commas, with optional white space.
fn parse(header: &str) -> Result<Vec<Member>, &'static str> {
    let mut members = Vec::new();
    for item in header.split(',') {
        let item = item.trim_matches(is_ows);
        if item.is_empty() {
            continue;
        }
        let (pair, properties) = item.split_once(';').unwrap_or((item, ""));
        let (key, value) = pair.split_once('=').ok_or("a member without '='")?;
        let key = key.trim_matches(is_ows);
        let value = value.trim_matches(is_ows);
        if key.is_empty() || !key.bytes().all(is_tchar) {
            return Err("a key that is not a token");
        }
        if !value.bytes().all(is_baggage_octet) {
            return Err("a value with a character that must be encoded");
        }
        let decoded = percent_decode_str(value).decode_utf8().map_err(|_| "a value that is not UTF-8")?;
        for property in properties.split(';').filter(|_| !properties.is_empty()) {
            let property = property.trim_matches(is_ows);
            let (name, value) = property.split_once('=').unwrap_or((property, ""));
            let name = name.trim_matches(is_ows);
            if name.is_empty()
                || !name.bytes().all(is_tchar)
                || !value.trim_matches(is_ows).bytes().all(is_baggage_octet)
            {
                return Err("a malformed property");
            }
        }
        let properties = if properties.is_empty() { String::new() } else { format!(";{properties}") };
        members.push(Member {
            key: key.to_owned(),
            value: decoded.into_owned(),
            raw: item.to_owned(),
            properties: properties.trim_matches(is_ows).to_owned(),
        });
    }
    Ok(members)
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// W3C `baggage-octet`: visible ASCII but `"`, `,`, `;`, `\`.
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

/// The list as received, kept in the context beside OpenTelemetry's (unordered) baggage so that
/// unchanged members go on in order and exactly as they came.
#[derive(Debug, Clone)]
struct Received(Baggage);

static FIELDS: LazyLock<[String; 1]> = LazyLock::new(|| [BAGGAGE.to_owned()]);

/// The W3C baggage propagator of `OTEL_PROPAGATORS=baggage`: reads every `baggage` header into
/// OpenTelemetry's baggage, writes that baggage back, keeping the received order and text of
/// the members that did not change.
#[derive(Debug, Default)]
pub struct BaggagePropagator;

impl TextMapPropagator for BaggagePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let current = cx.baggage();
        if current.is_empty() {
            return;
        }
        let received = cx.get::<Received>().map(|r| &r.0);
        let unchanged = |m: &Member| {
            current.get_with_metadata(m.key.as_str()).is_some_and(|(value, metadata)| {
                value.as_str() == m.value && metadata.as_str() == m.properties.trim_start_matches(';')
            })
        };
        let kept: Vec<Member> = received
            .map(|r| r.members.iter().filter(|m| unchanged(m)).cloned().collect())
            .unwrap_or_default();
        // What the service added or changed comes first, in key order, then what it kept.
        let mut added: Vec<Member> = current
            .iter()
            .filter(|(key, _)| !kept.iter().any(|m| m.key == key.as_str()))
            .map(|(key, (value, metadata))| {
                let mut member = Member::new(key.as_str(), value.as_str());
                if !metadata.as_str().is_empty() {
                    member.properties = format!(";{}", metadata.as_str());
                    member.raw.push_str(&member.properties);
                }
                member
            })
            .collect();
        added.sort_by(|a, b| a.key.cmp(&b.key));
        let mut list = Baggage { members: added.into_iter().chain(kept).collect() };
        list.enforce_limits();
        if let Some(header) = list.to_header() {
            injector.set(BAGGAGE, header);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let values = extractor.get_all(BAGGAGE).unwrap_or_default();
        if values.is_empty() {
            return cx.clone();
        }
        let received = Baggage::from_headers(values);
        cx.with_baggage(to_otel(&received)).with_value(Received(received))
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(FIELDS.as_slice())
    }
}

fn to_otel(baggage: &Baggage) -> Vec<KeyValueMetadata> {
    baggage
        .members
        .iter()
        .map(|m| {
            KeyValueMetadata::new(
                m.key.clone(),
                m.value.clone(),
                BaggageMetadata::from(m.properties.trim_start_matches(';')),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn header(values: &[&str]) -> Option<String> {
        Baggage::from_headers(values.iter().copied()).to_header()
    }

    #[test]
    fn members_pass_through_in_order_and_unchanged() {
        assert_eq!(header(&["a=1, b = 2 ;p=x;q", "c=%20x"]).as_deref(), Some("a=1,b = 2 ;p=x;q,c=%20x"));
        let baggage = Baggage::from_headers(["a=1, b = 2 ;p=x;q", "c=%20x"]);
        assert_eq!(baggage.get("b"), Some("2"));
        assert_eq!(baggage.get("c"), Some(" x"));
        assert_eq!(baggage.members()[1].properties, ";p=x;q");
    }

    #[test]
    fn the_edge_replaces_a_client_user_and_puts_its_own_first() {
        let mut baggage = Baggage::from_headers(["team=books,user=jason,canary=v3", "user=eve"]);
        baggage.set_user(Some("Trom Chocolatier"));
        assert_eq!(baggage.to_header().as_deref(), Some("user=Trom%20Chocolatier,team=books,canary=v3"));
        baggage.set_user(None);
        assert_eq!(baggage.to_header().as_deref(), Some("team=books,canary=v3"));
        let mut odd = Baggage::default();
        odd.set_user(Some("a,b;c=\"d\"\\é%"));
        assert_eq!(odd.to_header().as_deref(), Some("user=a%2Cb%3Bc=%22d%22%5C%C3%A9%25"));
        assert_eq!(
            Baggage::from_headers([odd.to_header().unwrap().as_str()]).get(USER),
            Some("a,b;c=\"d\"\\é%")
        );
    }

    #[test]
    fn malformed_headers_are_dropped_whole_and_others_kept() {
        for bad in ["novalue", "=1", "k=v w", "k=\"v\"", "ke y=1", "k=%FF", "k=1;=x", "k\u{e9}=1"] {
            assert_eq!(header(&[bad]), None, "{bad}");
            assert_eq!(header(&[bad, "ok=1"]).as_deref(), Some("ok=1"), "{bad}");
        }
        assert_eq!(header(&[",, a=1 ,"]).as_deref(), Some("a=1"), "empty members are skipped");
    }

    #[test]
    fn limits_drop_whole_members_from_the_end() {
        let many: Vec<String> = (0..70).map(|i| format!("k{i}=v")).collect();
        let baggage = Baggage::from_headers([many.join(",").as_str()]);
        assert_eq!(baggage.members().len(), MAX_MEMBERS);
        assert_eq!(baggage.members().last().unwrap().key, "k63");
        let big = format!("a={},b={}", "x".repeat(5000), "y".repeat(3000));
        let b = Baggage::from_headers([big.as_str()]);
        assert_eq!(b.members().len(), 2, "8010 bytes fit");
        let bigger = format!("a={},b={},c=1", "x".repeat(5000), "y".repeat(3185));
        let b = Baggage::from_headers([bigger.as_str()]);
        assert_eq!(b.members().iter().map(|m| m.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert!(b.to_header().unwrap().len() <= MAX_BYTES);
        let huge = format!("a={}", "x".repeat(10_000));
        assert_eq!(header(&[&huge, "b=1"]), None, "a member over the limit ends the list");
        let mut full = Baggage::from_headers([many.join(",").as_str()]);
        full.set_user(Some("jason"));
        assert_eq!(full.get(USER), Some("jason"), "the edge's own member always fits");
        assert_eq!(full.members().len(), MAX_MEMBERS);
    }

    fn round_trip(inbound: &[(&str, &str)], edit: impl Fn(&Context) -> Context) -> Option<String> {
        struct Many(Vec<(String, String)>);
        impl Extractor for Many {
            fn get(&self, key: &str) -> Option<&str> {
                self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
            }
            fn keys(&self) -> Vec<&str> {
                self.0.iter().map(|(k, _)| k.as_str()).collect()
            }
            fn get_all(&self, key: &str) -> Option<Vec<&str>> {
                Some(self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect())
            }
        }
        let carrier = Many(inbound.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        let cx = edit(&BaggagePropagator.extract_with_context(&Context::new(), &carrier));
        let mut out = HashMap::new();
        BaggagePropagator.inject_context(&cx, &mut out);
        out.remove(BAGGAGE)
    }

    #[test]
    fn the_propagator_combines_headers_and_keeps_order_and_text() {
        let inbound = [("baggage", "z=1;prop, a = x%20y"), ("baggage", "m=2")];
        assert_eq!(round_trip(&inbound, Context::clone).as_deref(), Some("z=1;prop,a = x%20y,m=2"));
        let added =
            |cx: &Context| cx.with_baggage(vec![KeyValueMetadata::new("z", "2", BaggageMetadata::default())]);
        assert_eq!(round_trip(&inbound, added).as_deref(), Some("z=2"), "what a service sets goes out");
        assert_eq!(round_trip(&[], Context::clone), None);
        assert_eq!(round_trip(&[("baggage", "bad header")], Context::clone), None);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the headers hold: no panic, the limits hold, and what is written reads back
        /// as the same members.
        #[test]
        fn any_headers_parse_within_limits_and_round_trip(values in proptest::collection::vec(".{0,300}", 0..4)) {
            let baggage = Baggage::from_headers(values.iter().map(String::as_str));
            prop_assert!(baggage.members().len() <= MAX_MEMBERS);
            if let Some(header) = baggage.to_header() {
                prop_assert!(header.len() <= MAX_BYTES);
                let again = Baggage::from_headers([header.as_str()]);
                prop_assert_eq!(again.members().len(), baggage.members().len());
                for (a, b) in again.members().iter().zip(baggage.members()) {
                    prop_assert_eq!((&a.key, &a.value), (&b.key, &b.value));
                }
            }
        }

        /// Any user name survives the edge's encoding, among any well-formed members.
        #[test]
        fn any_user_name_round_trips(user in ".{1,100}", others in "([a-z]{1,8}=[a-z0-9]{0,8},){0,5}") {
            let mut baggage = Baggage::from_headers([others.as_str(), "user=mallory"]);
            baggage.set_user(Some(&user));
            let header = baggage.to_header().unwrap();
            let read = Baggage::from_headers([header.as_str()]);
            prop_assert_eq!(read.get(USER), Some(user.as_str()));
            prop_assert_eq!(read.members().iter().filter(|m| m.key == USER).count(), 1);
        }
    }
}
