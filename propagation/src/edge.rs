//! The edge rule: one service (productpage) says who the user is.
//!
//! It alone sets the `end-user` header and the baggage member `user`, from its own session;
//! whatever a client sends in either is replaced (or removed for an anonymous request), so
//! routing rules deeper in the mesh never trust the client. Every other service forwards both
//! unchanged. The rule is applied once per request, to the inbound headers, before anything
//! reads them (the HTTP crate's middleware calls [`apply`]). Both tracing modes then start from
//! the same baggage: `propagate` copies it, `otel` extracts it; neither edits it again.

use http::header::HeaderValue;

use crate::baggage::Baggage;
use crate::headers::HeadersMut;
use crate::{BAGGAGE, END_USER};

/// The rule on a request's headers, for the signed-in `user` (or nobody):
/// - `end-user` is the user, or absent;
/// - `baggage` is one header holding `user=<name>` first (for a signed-in user, an empty name
///   aside) and every other member the client sent, in order; a client's `user` is dropped.
///   The W3C limits (64 members, 8192 bytes) are kept by dropping other members from the end,
///   never the user's; a header that does not parse is dropped.
pub fn apply(headers: &mut impl HeadersMut, user: Option<&str>) {
    headers.remove(&END_USER);
    if let Some(value) = user.and_then(|user| HeaderValue::from_str(user).ok()) {
        headers.set(END_USER, value);
    }
    let mut baggage = Baggage::from_headers(headers.values(&BAGGAGE).filter_map(|v| v.to_str().ok()));
    baggage.set_user(user);
    headers.remove(&BAGGAGE);
    if let Some(value) = baggage.to_header().and_then(|header| HeaderValue::try_from(header).ok()) {
        headers.set(BAGGAGE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baggage::{MAX_BYTES, MAX_MEMBERS};
    use http::header::{HeaderMap, HeaderName};

    fn edited(inbound: &[(&'static str, &str)], user: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in inbound {
            headers.append(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        apply(&mut headers, user);
        headers
    }

    fn values<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Vec<&'a str> {
        headers.get_all(name).iter().map(|v| v.to_str().unwrap()).collect()
    }

    #[test]
    fn the_signed_in_user_replaces_whatever_the_client_sent() {
        let spoofed = [
            ("baggage", "team=books,user=eve"),
            ("baggage", "canary=v3;ttl=60"),
            ("end-user", "eve"),
            ("end-user", "mallory"),
        ];
        let jason = edited(&spoofed, Some("jason"));
        assert_eq!(values(&jason, &BAGGAGE), ["user=jason,team=books,canary=v3;ttl=60"]);
        assert_eq!(values(&jason, &END_USER), ["jason"]);
        let anonymous = edited(&spoofed, None);
        assert_eq!(values(&anonymous, &BAGGAGE), ["team=books,canary=v3;ttl=60"]);
        assert!(values(&anonymous, &END_USER).is_empty());
        assert!(edited(&[("baggage", "user=eve")], None).get(BAGGAGE).is_none());
        assert_eq!(values(&edited(&[], Some("jason")), &BAGGAGE), ["user=jason"]);
    }

    #[test]
    fn the_user_survives_baggage_at_the_member_limit() {
        let many: Vec<String> = (0..MAX_MEMBERS).map(|i| format!("k{i}=v")).collect();
        let headers = edited(&[("baggage", &many.join(","))], Some("jason"));
        let expected = format!("user=jason,{}", many[..MAX_MEMBERS - 1].join(","));
        assert_eq!(values(&headers, &BAGGAGE), [expected.as_str()]);
    }

    #[test]
    fn the_user_survives_baggage_at_the_byte_limit() {
        let mut members: Vec<String> = (0..8).map(|i| format!("m{i}={}", "x".repeat(1020))).collect();
        members[7].push('x');
        let full = members.join(",");
        assert_eq!(full.len(), MAX_BYTES);
        let headers = edited(&[("baggage", &full)], Some("jason"));
        let expected = format!("user=jason,{}", members[..7].join(","));
        assert_eq!(values(&headers, &BAGGAGE), [expected.as_str()]);
    }

    #[test]
    fn a_malformed_baggage_is_dropped_and_an_unsendable_name_sends_no_end_user() {
        let headers = edited(&[("baggage", "not baggage")], Some("jason"));
        assert_eq!(values(&headers, &BAGGAGE), ["user=jason"]);
        let headers = edited(&[("end-user", "eve")], Some("line\nbreak"));
        assert!(headers.get(END_USER).is_none());
        assert_eq!(values(&headers, &BAGGAGE), ["user=line%0Abreak"]);
    }
}
