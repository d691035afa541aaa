//! The trace store of the Bookinfo stack and everything that reads it.
//!
//! - [`model`]: spans as kept (compact ids, boxed strings, shared resources).
//! - [`wire`]: OTLP protobuf and JSON, Zipkin v2 JSON, gzip bodies.
//! - [`limits`]: what one span may hold (attributes, text), as the OpenTelemetry SDKs bound it.
//! - [`trace`]: spans grouped into traces, and a trace's tree (linear, iterative).
//! - [`store`]: traces in memory bounded by bytes.
//! - [`dependencies`]: the service graph, who calls whom, read off the stored traces.
//! - [`sink`]: the local stack's receivers, store, viewer and file, on threads of their own;
//!   [`intake`] and [`query`] are its HTTP sides, [`viewer`] the page.
//! - [`file`]: each run's capped, rotated trace file, read from the end.
//! - [`render`] and [`compare`]: a trace as text, and two side by side (the numbers the
//!   viewer shows too).
//! - [`jaeger`]: reading a Jaeger query service.
#![warn(missing_docs)]

pub mod compare;
pub mod dependencies;
pub mod file;
pub mod intake;
pub mod jaeger;
pub mod limits;
pub mod model;
pub mod query;
pub mod render;
pub mod sink;
pub mod store;
pub mod time;
pub mod trace;
pub mod viewer;
pub mod wire;

pub use model::{Kind, Span, SpanId, TraceId};
pub use sink::{Sink, SinkError, SinkOptions};
pub use store::{Limits, Store};
pub use trace::Trace;
