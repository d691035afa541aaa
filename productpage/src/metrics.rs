//! productpage's Prometheus counter `request_result_total{destination_app, response_code}`:
//! one increment per logical upstream call, with 200 on success and otherwise the upstream's
//! status (or 500 when there was none), as in the original.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};

use bookinfo_http::Upstream;

/// Content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Counts of upstream call results, shared by every worker.
#[derive(Debug, Default)]
pub struct Metrics {
    results: Mutex<BTreeMap<(Upstream, u16), u64>>,
}

impl Metrics {
    /// Counts one call to `upstream` that ended with `code`.
    pub fn record(&self, upstream: Upstream, code: u16) {
        let mut results = self.results.lock().unwrap_or_else(PoisonError::into_inner);
        *results.entry((upstream, code)).or_default() += 1;
    }

    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let results = self.results.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::from(
            "# HELP request_result_total Results of requests\n# TYPE request_result_total counter\n",
        );
        for ((upstream, code), count) in results.iter() {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "request_result_total{{destination_app=\"{upstream}\",response_code=\"{code}\"}} {count}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_per_app_and_code() {
        let metrics = Metrics::default();
        metrics.record(crate::REVIEWS, 200);
        metrics.record(crate::REVIEWS, 200);
        metrics.record(crate::DETAILS, 503);
        let text = metrics.render();
        assert!(text.starts_with("# HELP request_result_total Results of requests\n"));
        assert!(text.contains("request_result_total{destination_app=\"reviews\",response_code=\"200\"} 2\n"));
        assert!(text.contains("request_result_total{destination_app=\"details\",response_code=\"503\"} 1\n"));
    }
}
