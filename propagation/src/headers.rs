//! How this crate sees a request's headers: an HTTP stack's header map, lent through these
//! traits (actix-web's is lent by the `bookinfo-http` crate; `http`'s own `HeaderMap` here).

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Headers to read: an inbound request's.
pub trait Headers {
    /// Every value of `name`, in order.
    fn values<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a HeaderValue>;

    /// Every header, in order.
    fn entries(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)>;

    /// The first value of `name`, if any.
    fn first(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.values(name).next()
    }
}

/// Headers to write: an outbound request's.
pub trait HeadersMut: Headers {
    /// Sets `name` to `value`, replacing every value it had.
    fn set(&mut self, name: HeaderName, value: HeaderValue);

    /// Removes every value of `name`.
    fn remove(&mut self, name: &HeaderName);
}

impl Headers for HeaderMap {
    fn values<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a HeaderValue> {
        self.get_all(name).into_iter()
    }

    fn entries(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.iter()
    }
}

impl HeadersMut for HeaderMap {
    fn set(&mut self, name: HeaderName, value: HeaderValue) {
        self.insert(name, value);
    }

    fn remove(&mut self, name: &HeaderName) {
        HeaderMap::remove(self, name);
    }
}
