//! Black-box tests: real services on ephemeral 127.0.0.1 ports, driven over HTTP and compared
//! with what the original Bookinfo services answer; `bookinfo` itself run as a process, with a
//! real OTLP receiver for its spans.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ambient;
mod architecture;
mod bad_input;
mod ci;
mod cli;
mod curl;
mod details;
mod docs;
mod envoy_mesh;
mod faults;
mod helpers;
mod image;
mod istiod;
mod kubelet;
mod manifests;
mod mesh;
mod mysql;
mod otel_config;
mod otlp;
mod process;
mod productpage;
mod ratings;
mod reference;
mod reviews;
mod routing;
mod service_graph;
mod soak;
mod spans;
mod stack;
mod stop_and_errors;
mod trace_contract;
mod trace_store;
mod traces;
mod tracing_e2e;
mod viewer;
mod wait;
mod webdriver;
mod wire;
