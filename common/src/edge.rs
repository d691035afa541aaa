//! The edge rule: one service (productpage) says who the user is.
//!
//! It alone sets the `end-user` header and the baggage member `user`, from its own session;
//! whatever a client sends in either is replaced (or removed for an anonymous request), so
//! routing rules deeper in the mesh never trust the client. Every other service forwards both
//! unchanged.

use actix_web::HttpRequest;

/// Registered as app data (`web::Data<Edge>`) by the edge service.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    user: fn(&HttpRequest) -> Option<String>,
}

impl Edge {
    /// An edge whose signed-in user `user` reads from a request.
    pub fn new(user: fn(&HttpRequest) -> Option<String>) -> Self {
        Self { user }
    }

    /// The signed-in user of `req`, if any.
    pub fn user(&self, req: &HttpRequest) -> Option<String> {
        (self.user)(req)
    }
}
