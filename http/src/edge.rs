//! The edge rule on each inbound request: the service that registered an [`Edge`]
//! (productpage) says who the user is, and [`rule`] applies `bookinfo_propagation::edge::apply`
//! to the request's headers before anything reads them.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{Error, HttpRequest};

use crate::headers::Write;

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

/// The middleware, for `actix_web::middleware::from_fn`: in a service that registered an
/// [`Edge`], applies the rule to the request's headers; elsewhere it does nothing.
pub async fn rule(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some(edge) = req.app_data::<Data<Edge>>().cloned() {
        let user = edge.user(req.request());
        bookinfo_propagation::edge::apply(&mut Write(req.headers_mut()), user.as_deref());
    }
    next.call(req).await
}
