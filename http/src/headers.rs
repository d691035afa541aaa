//! actix-web's header maps, lent to `bookinfo-propagation` (which knows no HTTP stack): an
//! inbound request's to read, an outbound one's to write.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use bookinfo_propagation::{Headers, HeadersMut};

/// A request's headers, to read.
pub struct Read<'a>(pub &'a HeaderMap);

impl Headers for Read<'_> {
    fn values<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a HeaderValue> {
        self.0.get_all(name)
    }

    fn entries(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.0.iter()
    }
}

/// A request's headers, to write.
pub struct Write<'a>(pub &'a mut HeaderMap);

impl Headers for Write<'_> {
    fn values<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a HeaderValue> {
        self.0.get_all(name)
    }

    fn entries(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.0.iter()
    }
}

impl HeadersMut for Write<'_> {
    fn set(&mut self, name: HeaderName, value: HeaderValue) {
        self.0.insert(name, value);
    }

    fn remove(&mut self, name: &HeaderName) {
        self.0.remove(name);
    }
}
