//! Sign-in: `POST /login` keeps the user name in a session cookie, `GET /logout` drops it.
//!
//! Bookinfo has no authentication (any name, any password), so the cookie simply carries the
//! name, percent-encoded. productpage sends it upstream as `end-user` and as the baggage member
//! `user`; nothing a client sends in those is trusted instead.

use std::future::{Ready, ready};

use actix_web::cookie::Cookie;
use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Name of the session cookie, as in the original.
pub const COOKIE: &str = "session";

/// Longest user name accepted; a longer one would not fit a cookie.
pub const MAX_USER_LEN: usize = 256;

/// Versioned prefix of the cookie value, so a later format can tell old cookies apart.
const PREFIX: &str = "u1.";

/// Everything but unreserved characters is encoded: the value is then a valid cookie octet
/// string whatever the name holds.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Where a redirect goes when the request has no `Referer` (the original sends the string
/// `None`).
const HOME: &str = "/productpage";

/// Who is signed in, from the `session` cookie. A missing or unreadable cookie means nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    user: Option<String>,
}

impl Session {
    /// The signed-in user, if any. It may be empty: a sign-in with `username=` is kept, as in
    /// the original.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    fn of(req: &HttpRequest) -> Self {
        Self { user: user_of(req) }
    }
}

impl FromRequest for Session {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self::of(req)))
    }
}

/// The signed-in user of a request: productpage's [`Edge`](bookinfo_common::edge::Edge) rule, so
/// that `end-user` and the baggage member `user` come from the session only.
pub fn user_of(req: &HttpRequest) -> Option<String> {
    req.cookie(COOKIE).and_then(|cookie| decode(cookie.value()))
}

/// `POST /login`: takes `username` from the query string or the form body (as Flask's
/// `request.values`), keeps it in the session and goes back to the `Referer`.
pub async fn login(req: HttpRequest, body: Bytes) -> HttpResponse {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let user = field(req.query_string().as_bytes(), "username")
        .or_else(|| if is_form { field(&body, "username") } else { None });
    let mut response = redirect(&req);
    match user {
        Some(user) if user.len() > MAX_USER_LEN => {
            return HttpResponse::BadRequest()
                .content_type("text/plain; charset=utf-8")
                .body(format!("user name longer than {MAX_USER_LEN} bytes\n"));
        }
        Some(user) => {
            let cookie = Cookie::build(COOKIE, encode(&user)).path("/").http_only(true).finish();
            if let Err(err) = response.add_cookie(&cookie) {
                tracing::warn!(error = %err, "cannot set the session cookie");
            }
        }
        // No name at all: the original stores `null`, which reads as signed out.
        None => remove_session(&mut response),
    }
    response
}

/// `GET /logout`: ends the session and goes back to the `Referer`.
pub async fn logout(req: HttpRequest) -> HttpResponse {
    let mut response = redirect(&req);
    remove_session(&mut response);
    response
}

fn redirect(req: &HttpRequest) -> HttpResponse {
    let location = req.headers().get(header::REFERER).cloned().unwrap_or(HeaderValue::from_static(HOME));
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn remove_session(response: &mut HttpResponse) {
    let mut cookie = Cookie::build(COOKIE, "").path("/").http_only(true).finish();
    cookie.make_removal();
    if let Err(err) = response.add_cookie(&cookie) {
        tracing::warn!(error = %err, "cannot clear the session cookie");
    }
}

/// The first value of `name` in a URL-encoded form; `None` when absent or the form is malformed.
fn field(form: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(form)
        .ok()?
        .into_iter()
        .find_map(|(key, value)| (key == name).then_some(value))
}

fn encode(user: &str) -> String {
    format!("{PREFIX}{}", utf8_percent_encode(user, ENCODED))
}

fn decode(value: &str) -> Option<String> {
    let encoded = value.strip_prefix(PREFIX)?;
    let user = percent_decode_str(encoded).decode_utf8().ok()?;
    (user.len() <= MAX_USER_LEN).then(|| user.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_cookie_value() {
        for user in ["jason", "", "<script>alert(1)</script>", "Ünïcødé user; x=1", "a\"b,c\\d"] {
            let value = encode(user);
            assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{value}");
            assert_eq!(decode(&value).as_deref(), Some(user));
        }
    }

    #[test]
    fn foreign_or_broken_cookies_mean_nobody() {
        for value in ["jason", "u1.%FF", "u2.jason", ""] {
            assert_eq!(decode(value), None, "{value}");
        }
    }

    #[test]
    fn form_fields_are_found_and_decoded() {
        assert_eq!(field(b"username=jason&passwd=x", "username").as_deref(), Some("jason"));
        assert_eq!(field(b"username=a%20b+c", "username").as_deref(), Some("a b c"));
        assert_eq!(field(b"username=", "username").as_deref(), Some(""));
        assert_eq!(field(b"passwd=x", "username"), None);
        // Invalid UTF-8 is replaced, as browsers and Flask do.
        assert_eq!(field(b"username=%FF", "username").as_deref(), Some("\u{fffd}"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any cookie value: a user or nobody, never a panic.
        #[test]
        fn any_cookie_value_decodes_or_is_nobody(value in ".{0,400}") {
            if let Some(user) = decode(&value) {
                prop_assert!(user.len() <= MAX_USER_LEN);
            }
        }

        /// Any user name of acceptable length survives the cookie.
        #[test]
        fn any_user_name_round_trips(user in ".{0,60}") {
            prop_assume!(user.len() <= MAX_USER_LEN);
            prop_assert_eq!(decode(&encode(&user)), Some(user));
        }

        /// Any bytes as a login form: a field or none, never a panic.
        #[test]
        fn any_form_body_is_read_or_ignored(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = field(&body, "username");
        }
    }
}
