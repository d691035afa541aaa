//! Reading traces from Jaeger's query API v3 (`/api/v3/traces`, `/api/v3/traces/{id}`).
//!
//! Jaeger answers OTLP JSON in a `{"result": ...}` wrapper. Istio's Jaeger addon serves under
//! `/jaeger`: when the given base answers a plain 404, `/jaeger` is tried below it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::model::Span;
use crate::time::rfc3339;
use crate::wire::otlp;

/// Why Jaeger could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JaegerError {
    /// No answer at all.
    #[error("cannot reach Jaeger at {url}: {message}")]
    Unreachable {
        /// What was asked.
        url: String,
        /// The transport error.
        message: String,
    },
    /// An answer that is not success.
    #[error("Jaeger at {url} answered {status}: {body}")]
    Status {
        /// What was asked.
        url: String,
        /// The status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// An answer that is not JSON.
    #[error("Jaeger at {url} answered something that is not JSON: {message}")]
    NotJson {
        /// What was asked.
        url: String,
        /// The parse error.
        message: String,
    },
}

/// A Jaeger query service.
pub struct Jaeger {
    base: String,
    http: awc::Client,
}

impl Jaeger {
    /// Jaeger at `base` (such as `http://127.0.0.1:16686` or `.../jaeger`).
    pub fn new(base: &str) -> Self {
        let http = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        Self { base: base.trim_end_matches('/').to_owned(), http }
    }

    /// The spans of trace `id`; empty when Jaeger does not know it.
    ///
    /// # Errors
    /// Jaeger unreachable, failing or answering something else than JSON.
    pub async fn trace(&self, id: &str) -> Result<Vec<Span>, JaegerError> {
        self.get(&format!("/api/v3/traces/{id}")).await
    }

    /// The spans of the latest traces with a span of `service`, within `lookback`.
    ///
    /// # Errors
    /// As [`trace`](Self::trace).
    pub async fn find(
        &self,
        service: &str,
        limit: usize,
        lookback: Duration,
    ) -> Result<Vec<Span>, JaegerError> {
        let now = SystemTime::now();
        let query = serde_urlencoded::to_string([
            ("query.service_name", service.to_owned()),
            // A lookback past the epoch means "everything".
            ("query.start_time_min", rfc3339(now.checked_sub(lookback).unwrap_or(UNIX_EPOCH))),
            ("query.start_time_max", rfc3339(now + Duration::from_secs(60))),
            ("query.search_depth", limit.to_string()),
            ("query.num_traces", limit.to_string()),
        ])
        .unwrap_or_default();
        self.get(&format!("/api/v3/traces?{query}")).await
    }

    async fn get(&self, path: &str) -> Result<Vec<Span>, JaegerError> {
        match self.get_at(&self.base, path).await {
            Err(JaegerError::Status { status: 404, body, .. })
                if serde_json::from_str::<Value>(&body).is_err() =>
            {
                self.get_at(&format!("{}/jaeger", self.base), path).await
            }
            other => other,
        }
    }

    async fn get_at(&self, base: &str, path: &str) -> Result<Vec<Span>, JaegerError> {
        let url = format!("{base}{path}");
        let mut response = self
            .http
            .get(&url)
            .insert_header(("accept", "application/json"))
            .send()
            .await
            .map_err(|err| JaegerError::Unreachable { url: url.clone(), message: err.to_string() })?;
        let status = response.status().as_u16();
        let body = response
            .body()
            .limit(256 * 1024 * 1024)
            .await
            .map_err(|err| JaegerError::Unreachable { url: url.clone(), message: err.to_string() })?;
        let text = String::from_utf8_lossy(&body);
        match status {
            200 => {
                let document: Value = serde_json::from_str(&text)
                    .map_err(|err| JaegerError::NotJson { url: url.clone(), message: err.to_string() })?;
                Ok(otlp::from_json(&document))
            }
            // Jaeger's way of saying "no trace": a JSON error with 404.
            404 if serde_json::from_str::<Value>(&text).is_ok() => Ok(Vec::new()),
            _ => Err(JaegerError::Status { url, status, body: text.chars().take(200).collect() }),
        }
    }
}
