//! Sign-in: `POST /login` keeps the user name in a signed session cookie, `GET /logout` drops it.
//!
//! Bookinfo has no authentication (any name, any password), but the name steers routing deeper
//! in the mesh, so the cookie is signed as the original Flask productpage signs its session: the
//! name, percent-encoded, then an HMAC-SHA256 of the cookie over a key of this process
//! ([`SessionKey`]). A cookie that does not verify means nobody is signed in. productpage sends
//! the name upstream as `end-user` and as the baggage member `user`; nothing a client sends in
//! those is trusted instead.
//!
//! After sign-in and sign-out the browser goes back where it came from, but only to this site:
//! a `Referer` of another origin (or another scheme, `javascript:` say) goes to `/productpage`.

use std::fmt;
use std::future::{Ready, ready};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::web::{Bytes, Data};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bookinfo_config::{ConfigError, Source};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::Sha256;
use url::Url;

/// Name of the session cookie, as in the original.
pub const COOKIE: &str = "session";

/// Longest user name accepted; a longer one would not fit a cookie.
pub const MAX_USER_LEN: usize = 256;

/// `BOOKINFO_SESSION_KEY`: the secret that signs session cookies, at least [`MIN_KEY_LEN`]
/// bytes. Unset, each start draws a random one (sessions then end with the process, and
/// replicas do not share them).
pub const SESSION_KEY: &str = "BOOKINFO_SESSION_KEY";

/// `BOOKINFO_ROUTED_USERS`: the users the loaded routing tells apart, comma-separated; the
/// sign-in form suggests signing in as one of them. Unset or empty: nothing routes by user, and
/// the form suggests nobody. `bookinfo up` sets it from its routing files.
pub const ROUTED_USERS: &str = "BOOKINFO_ROUTED_USERS";

/// Shortest `BOOKINFO_SESSION_KEY` accepted, in bytes: the size of the HMAC-SHA256 output.
pub const MIN_KEY_LEN: usize = 32;

/// Versioned prefix of the cookie value, so a later format can tell old cookies apart.
const PREFIX: &str = "u2.";

/// Everything but unreserved characters is encoded: the value is then a valid cookie octet
/// string whatever the name holds.
const ENCODED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Where a redirect goes when the request has no `Referer` (the original sends the string
/// `None`) or one of another site.
const HOME: &str = "/productpage";

/// The key that signs and checks session cookies.
#[derive(Clone)]
pub struct SessionKey {
    mac: Hmac<Sha256>,
}

impl SessionKey {
    /// A key drawn at random (from the thread's cryptographically secure generator).
    pub fn random() -> Self {
        let bytes: [u8; 64] = rand::random();
        Self { mac: Hmac::new(&bytes.into()) }
    }

    /// `BOOKINFO_SESSION_KEY` (its bytes as given), or a random key when it is unset or empty.
    ///
    /// # Errors
    /// A key shorter than [`MIN_KEY_LEN`] bytes: productpage does not start with a weak key.
    pub fn from_source(source: &(impl Source + ?Sized)) -> Result<Self, ConfigError> {
        let Some(key) = source.get(SESSION_KEY) else {
            return Ok(Self::random());
        };
        // The error names the key's length, never the key.
        let too_short = || {
            let value = format!("({} bytes, not shown)", key.len());
            ConfigError::new(SESSION_KEY, &value, &format!("a secret of at least {MIN_KEY_LEN} bytes"))
        };
        if key.len() < MIN_KEY_LEN {
            return Err(too_short());
        }
        let mac = Hmac::new_from_slice(key.as_bytes()).map_err(|_| too_short())?;
        Ok(Self { mac })
    }

    /// The cookie value naming `user`: the name, percent-encoded, and its signature.
    fn sign(&self, user: &str) -> String {
        let tag = URL_SAFE_NO_PAD.encode(self.tag(user).finalize().into_bytes());
        format!("{PREFIX}{}.{tag}", utf8_percent_encode(user, ENCODED))
    }

    /// The user a cookie value names, if its signature holds. The value is taken as the
    /// request's cookie jar gives it, percent-decoded.
    fn verify(&self, value: &str) -> Option<String> {
        let (payload, tag) = value.rsplit_once('.')?;
        let user = payload.strip_prefix(PREFIX)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // Compared in constant time.
        self.tag(user).verify_slice(&tag).ok()?;
        (user.len() <= MAX_USER_LEN).then(|| user.to_owned())
    }

    /// The MAC of the cookie's name and the user together, so a value signed for one cookie is
    /// worth nothing in another.
    fn tag(&self, user: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(COOKIE.as_bytes());
        mac.update(b"=");
        mac.update(user.as_bytes());
        mac
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

/// The users routing tells apart, whom the sign-in form suggests (see [`ROUTED_USERS`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutedUsers(Vec<String>);

impl RoutedUsers {
    /// These users, in this order.
    pub fn new(names: impl IntoIterator<Item = String>) -> Self {
        Self(names.into_iter().collect())
    }

    /// `BOOKINFO_ROUTED_USERS`, each name trimmed, empty ones skipped.
    ///
    /// # Errors
    /// A name longer than [`MAX_USER_LEN`]: nobody could sign in as it.
    pub fn from_source(source: &(impl Source + ?Sized)) -> Result<Self, ConfigError> {
        let Some(list) = source.get(ROUTED_USERS) else { return Ok(Self::default()) };
        let names: Vec<String> =
            list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
        if names.iter().any(|name| name.len() > MAX_USER_LEN) {
            let expected = format!("user names of at most {MAX_USER_LEN} bytes, comma-separated");
            return Err(ConfigError::new(ROUTED_USERS, &list, &expected));
        }
        Ok(Self(names))
    }

    /// The names, possibly none.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

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

/// The signed-in user of a request: productpage's [`Edge`](bookinfo_http::edge::Edge) rule, so
/// that `end-user` and the baggage member `user` come from the session only. A cookie that is
/// not signed with this process's [`SessionKey`] (or an app without one) means nobody.
pub fn user_of(req: &HttpRequest) -> Option<String> {
    let key = req.app_data::<Data<SessionKey>>()?;
    req.cookie(COOKIE).and_then(|cookie| key.verify(cookie.value()))
}

/// `POST /login`: takes `username` from the query string or the form body (as Flask's
/// `request.values`), keeps it in the session and goes back to the `Referer`.
pub async fn login(req: HttpRequest, body: Bytes, key: Data<SessionKey>) -> HttpResponse {
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
            let cookie = session_cookie(key.sign(&user));
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
    // The Host the request came with: never X-Forwarded-Host or Forwarded, which any client adds.
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let location = req
        .headers()
        .get(header::REFERER)
        .and_then(|referer| referer.to_str().ok())
        .and_then(|referer| back_to(referer, host))
        .unwrap_or_else(|| HOME.to_owned());
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Where to send a browser back to from `referer`, when it is a page of this site: always a
/// path on this server (of a `http`/`https` URL, only when its host and port are `host`), so
/// that no header a client sends can make the redirect leave the site. `None` for anything
/// else: another site, a path browsers read as another host (`//host`, `/\host`, and any
/// control character or space, which browsers drop: `/\t/host`), another scheme.
fn back_to(referer: &str, host: Option<&str>) -> Option<String> {
    if !referer.bytes().all(|b| b.is_ascii_graphic()) || referer.contains('\\') {
        return None;
    }
    let path = if referer.starts_with('/') {
        referer.to_owned()
    } else {
        let url = Url::parse(referer).ok()?;
        let authority = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str()?),
            None => url.host_str()?.to_owned(),
        };
        if !matches!(url.scheme(), "http" | "https") || !authority.eq_ignore_ascii_case(host?) {
            return None;
        }
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    };
    (path.starts_with('/') && !path.starts_with("//")).then_some(path)
}

/// The session cookie: scripts cannot read it, and other sites' requests do not carry it
/// (except top-level navigation, so a link to the page keeps the user signed in).
fn session_cookie(value: String) -> Cookie<'static> {
    Cookie::build(COOKIE, value).path("/").http_only(true).same_site(SameSite::Lax).finish()
}

fn remove_session(response: &mut HttpResponse) {
    let mut cookie = session_cookie(String::new());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey::from_source(&[(SESSION_KEY, "k".repeat(MIN_KEY_LEN).as_str())]).unwrap()
    }

    /// A cookie value as the request's cookie jar hands it over: percent-decoded.
    fn received(value: &str) -> String {
        Cookie::parse_encoded(format!("{COOKIE}={value}")).unwrap().value().to_owned()
    }

    #[test]
    fn names_round_trip_through_the_signed_cookie_value() {
        let key = key();
        for user in ["jason", "", "<script>alert(1)</script>", "Ünïcødé user; x=1", "a\"b,c\\d"] {
            let value = key.sign(user);
            assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{value}");
            assert_eq!(key.verify(&received(&value)).as_deref(), Some(user));
        }
    }

    #[test]
    fn tampered_unsigned_or_foreign_cookies_mean_nobody() {
        let key = key();
        let jason = key.sign("jason");
        let (_, tag) = jason.rsplit_once('.').unwrap();
        let other = SessionKey::random().sign("jason");
        for value in [
            format!("u2.admin.{tag}"),
            jason.replace("jason", "jasoN"),
            format!("{jason}x"),
            "u2.jason".to_owned(),
            "u1.jason".to_owned(),
            "jason".to_owned(),
            other,
            String::new(),
        ] {
            assert_eq!(key.verify(&received(&value)), None, "{value}");
        }
    }

    #[test]
    fn a_key_shorter_than_32_bytes_is_refused_without_showing_it() {
        let err = SessionKey::from_source(&[(SESSION_KEY, "short-secret")]).unwrap_err();
        assert_eq!(err.name, SESSION_KEY);
        assert!(!err.to_string().contains("short-secret"), "{err}");
        assert!(err.to_string().contains("at least 32 bytes"), "{err}");
        let none: [(&str, &str); 0] = [];
        let (a, b) = (SessionKey::from_source(&none).unwrap(), SessionKey::from_source(&none).unwrap());
        assert_eq!(b.verify(&received(&a.sign("jason"))), None, "each start draws its own key");
        let same = received(&key().sign("jason"));
        assert_eq!(key().verify(&same).as_deref(), Some("jason"), "one configured key, any process");
    }

    #[test]
    fn only_pages_of_this_site_are_returned_to_and_always_as_a_path() {
        let host = Some("productpage:9080");
        for (referer, path) in [
            ("http://productpage:9080/productpage?u=1", "/productpage?u=1"),
            ("https://PRODUCTPAGE:9080/", "/"),
            ("/productpage", "/productpage"),
            ("/", "/"),
        ] {
            assert_eq!(back_to(referer, host).as_deref(), Some(path), "{referer}");
        }
        assert_eq!(
            back_to("http://bookinfo.example/productpage", Some("bookinfo.example")).as_deref(),
            Some("/productpage")
        );
        for foreign in [
            "http://evil.example/productpage",
            "http://productpage:9081/",
            "http://productpage/",
            "http://productpage:9080@evil.example/",
            "http://productpage:9080//evil.example/",
            "//evil.example/",
            "/\\evil.example/",
            "/\t/evil.example/",
            "/\n/evil.example/",
            "/ /evil.example/",
            "/x\\..\\evil",
            "javascript:alert(document.cookie)",
            "data:text/html,x",
            "ftp://productpage:9080/",
            "productpage",
            "",
        ] {
            assert_eq!(back_to(foreign, host), None, "{foreign:?}");
        }
        assert_eq!(back_to("http://productpage:9080/", None), None, "no Host: no URL is this site");
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
        fn any_cookie_value_verifies_or_is_nobody(value in ".{0,400}") {
            if let Some(user) = SessionKey::random().verify(&value) {
                prop_assert!(user.len() <= MAX_USER_LEN);
            }
        }

        /// Any user name of acceptable length survives the cookie.
        #[test]
        fn any_user_name_round_trips(user in ".{0,60}") {
            prop_assume!(user.len() <= MAX_USER_LEN);
            let key = SessionKey::random();
            let value = Cookie::parse_encoded(format!("{COOKIE}={}", key.sign(&user))).unwrap().value().to_owned();
            prop_assert_eq!(key.verify(&value), Some(user));
        }

        /// Any referer: a path of this site or nothing, never a panic.
        #[test]
        fn any_referer_is_a_path_of_this_site_or_nothing(referer in ".{0,200}") {
            if let Some(path) = back_to(&referer, Some("productpage:9080")) {
                prop_assert!(path.starts_with('/') && !path.starts_with("//"));
                prop_assert!(path.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'));
            }
        }

        /// Any bytes as a login form: a field or none, never a panic.
        #[test]
        fn any_form_body_is_read_or_ignored(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = field(&body, "username");
        }
    }
}
