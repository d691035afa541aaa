//! productpage's calls to details, reviews and ratings, with the original's deadlines, the
//! reviews retry and the `request_result_total` counter.

use std::sync::Arc;
use std::time::Duration;

use bookinfo_http::{RequestContext, Upstream, UpstreamError};
use bookinfo_wire::details::Book;
use bookinfo_wire::reviews::Reviews;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::Instrument;

use crate::metrics::Metrics;
use crate::{Config, DETAILS, RATINGS, REVIEWS};

/// The typed client of productpage's upstreams, shared by every worker.
#[derive(Debug)]
pub struct Backend {
    config: Config,
    metrics: Arc<Metrics>,
}

impl Backend {
    /// Calls upstreams with `config`'s deadlines and counts results in `metrics`.
    pub fn new(config: Config, metrics: Arc<Metrics>) -> Self {
        Self { config, metrics }
    }

    /// The counters this backend updates.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `GET /details/{id}`: one attempt. `id` is a raw path segment, sent on unchanged.
    pub async fn details(&self, ctx: &RequestContext, id: &str) -> Result<Book, UpstreamError> {
        let call = self.call(ctx, DETAILS, ("/details/{id}", id), self.config.details_timeout, 1);
        call.instrument(ctx.fetch_span("fetch details")).await
    }

    /// `GET /reviews/{id}`, tried twice by default: the original keeps a deliberate retry that
    /// Istio's fault-injection and timeout tasks rely on.
    pub async fn reviews(&self, ctx: &RequestContext, id: &str) -> Result<Reviews, UpstreamError> {
        let config = &self.config;
        let path = ("/reviews/{id}", id);
        let call = self.call(ctx, REVIEWS, path, config.reviews_timeout, config.reviews_attempts);
        call.instrument(ctx.fetch_span("fetch reviews")).await
    }

    /// `GET /ratings/{id}` (the API route only; the page gets ratings through reviews). The
    /// answer is passed on whatever its shape, as the original passes on ratings' JSON (its own
    /// unit test's ratings answers `{}`): any JSON, not only a [`Ratings`].
    ///
    /// [`Ratings`]: bookinfo_wire::ratings::Ratings
    pub async fn ratings(&self, ctx: &RequestContext, id: &str) -> Result<Value, UpstreamError> {
        let call = self.call(ctx, RATINGS, ("/ratings/{id}", id), self.config.ratings_timeout, 1);
        call.instrument(ctx.fetch_span("fetch ratings")).await
    }

    /// `FLOOD_FACTOR` extra calls to reviews whose answers are dropped, one after the other as
    /// in the original (the `productpage-v-flooding` image, for rate-limiting demos).
    pub async fn flood(&self, ctx: &RequestContext, id: &str) {
        for _ in 0..self.config.flood_factor {
            // The answer is dropped on purpose; the counter has recorded it.
            let _ = self.reviews(ctx, id).await;
        }
    }

    /// Calls `upstream` on `(template, id)` and reads its answer as the `T` it writes. An answer
    /// of another shape is a failed call too.
    async fn call<T: DeserializeOwned>(
        &self,
        ctx: &RequestContext,
        upstream: Upstream,
        (template, id): (&'static str, &str),
        timeout: Duration,
        attempts: u32,
    ) -> Result<T, UpstreamError> {
        let result = ctx
            .get(upstream, template, id)
            .timeout(timeout)
            .attempts(attempts)
            .send()
            .await
            .and_then(|reply| reply.json::<T>());
        match &result {
            Ok(_) => self.metrics.record(upstream, 200),
            Err(err) => {
                tracing::warn!(error = %err, "upstream call failed");
                self.metrics.record(upstream, err.status().as_u16());
            }
        }
        result
    }
}
