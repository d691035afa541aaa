//! The spans of a service's calls to a database, in `otel` mode: what only the application's
//! own tracing sees, since a sidecar carries a database's protocol as bytes and makes no span.
//!
//! One CLIENT span per query, after OpenTelemetry's stable database conventions: named
//! `{db.operation.name} {db.collection.name}` (`SELECT ratings`), with `db.system.name`,
//! `db.namespace`, `db.collection.name`, `db.operation.name`, `db.query.summary`,
//! `db.query.text` (a text without literal values), `server.address` and `server.port`; a
//! failure adds `error.type` (and the server's own code as `db.response.status_code`) and marks
//! the span as an error. Opening a connection is an INTERNAL span of its own beside the query's,
//! so that a slow connect shows, while a trace still holds one database CLIENT span per query.
//!
//! In `propagate` and `none` modes every call here is a no-op: nothing is built or allocated.

use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt};

use crate::spans::{Tracing, current_parent};

/// A database a service talks to, as its spans name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    /// `db.system.name`: `mysql`, `postgresql`, ...
    pub system: &'static str,
    /// `db.namespace`: the database's name on its server.
    pub namespace: String,
    /// `server.address`: the host name or address the service connects to.
    pub address: String,
    /// `server.port`.
    pub port: u16,
}

/// One query, as its span names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// `db.operation.name`: `SELECT`.
    pub operation: &'static str,
    /// `db.collection.name`: the table.
    pub collection: &'static str,
    /// `db.query.text`: the query as sent, which must hold no literal values (parameters
    /// instead), so that no data leaks into traces.
    pub text: &'static str,
}

/// How a database call failed, for its span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure<'a> {
    /// `error.type`: the server's error code when it answered with one, else a low-cardinality
    /// class such as `timeout`.
    pub error_type: &'a str,
    /// `db.response.status_code`: the server's own error code, when it answered with one.
    pub status_code: Option<&'a str>,
}

/// A database call's span, if one is made; end it with [`DbSpan::end`].
#[derive(Debug)]
#[must_use = "a span that is not ended is never exported"]
pub struct DbSpan(Option<opentelemetry::Context>);

impl DbSpan {
    /// Ends the span, recording `failure` if the call failed.
    pub fn end(self, failure: Option<Failure<'_>>) {
        let Some(cx) = self.0 else { return };
        let span = cx.span();
        if let Some(failure) = failure {
            span.set_status(Status::error(""));
            span.set_attribute(KeyValue::new("error.type", failure.error_type.to_owned()));
            if let Some(code) = failure.status_code {
                span.set_attribute(KeyValue::new("db.response.status_code", code.to_owned()));
            }
        }
        span.end();
    }

    /// Whether a span is being made (only in `otel` mode, and then even when not sampled).
    pub fn is_recording(&self) -> bool {
        self.0.is_some()
    }
}

impl Tracing {
    /// Starts the CLIENT span of `query` on `database`, child of the span the handler is in.
    pub fn query(&self, database: &Database, query: &Query) -> DbSpan {
        let Some(otel) = self.otel() else { return DbSpan(None) };
        let summary = format!("{} {}", query.operation, query.collection);
        let mut attributes = common(database);
        attributes.extend([
            KeyValue::new("db.operation.name", query.operation),
            KeyValue::new("db.collection.name", query.collection),
            KeyValue::new("db.query.summary", summary.clone()),
            KeyValue::new("db.query.text", query.text),
        ]);
        DbSpan(Some(otel.start(summary, SpanKind::Client, attributes, &current_parent())))
    }

    /// Starts the INTERNAL span of opening a connection to `database`, child of the span the
    /// handler is in.
    pub fn connect(&self, database: &Database) -> DbSpan {
        let Some(otel) = self.otel() else { return DbSpan(None) };
        let name = format!("connect {}", database.system);
        DbSpan(Some(otel.start(name, SpanKind::Internal, common(database), &current_parent())))
    }
}

/// What every span of `database` says of it; room for the query's own attributes and the
/// failure's.
fn common(database: &Database) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(12);
    attributes.extend([
        KeyValue::new("db.system.name", database.system),
        KeyValue::new("db.namespace", database.namespace.clone()),
        KeyValue::new("server.address", database.address.clone()),
        KeyValue::new("server.port", i64::from(database.port)),
    ]);
    attributes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_otel_no_span_is_made() {
        let database =
            Database { system: "mysql", namespace: "test".into(), address: "db".into(), port: 3306 };
        let query = Query { operation: "SELECT", collection: "ratings", text: "SELECT Rating FROM ratings" };
        for tracing in [Tracing::Propagate, Tracing::None] {
            let span = tracing.query(&database, &query);
            assert!(!span.is_recording());
            span.end(Some(Failure { error_type: "timeout", status_code: None }));
            assert!(!tracing.connect(&database).is_recording());
        }
    }
}
