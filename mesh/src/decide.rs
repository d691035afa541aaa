//! The in-app router: the decision a sidecar would make for one call, made by the calling
//! service itself (the local stack without `--mesh`); [`crate::sidecar`] carries the call by it.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use bookinfo_http::routing::{Answer, Outbound, Router, Transport};
use futures_util::future::LocalBoxFuture;

use crate::model::{Condition, Retries, Routing, Rule};
use crate::sidecar::{self, Decision, Retry};

/// Istio's default retries: twice, on a refused connection.
const DEFAULT_ATTEMPTS: u32 = 2;

impl Router for Routing {
    fn route<'a>(&'a self, call: Outbound<'a>, transport: &'a dyn Transport) -> LocalBoxFuture<'a, Answer> {
        let decision = self.decide(call.upstream.name(), call.method, call.path, &call.headers, &mut || {
            rand::random::<f64>()
        });
        Box::pin(async move { sidecar::carry(&decision, call, transport).await })
    }
}

impl Routing {
    /// The decision for one call to `service`, drawing uniform numbers in `[0, 1)` from `draw`
    /// for weights and fault percentages. The first rule whose conditions hold decides; with
    /// rules for the service but none matching, the call gets 404, as from Envoy.
    pub fn decide(
        &self,
        service: &str,
        method: &str,
        path: &str,
        headers: &HeaderMap,
        draw: &mut dyn FnMut() -> f64,
    ) -> Decision {
        let Some(rules) = self.services.get(service) else {
            return Decision::default();
        };
        let path = path.split('?').next().unwrap_or_default();
        let Some(rule) = rules.iter().find(|rule| selects(rule, method, path, headers)) else {
            return Decision { refusal: Some(StatusCode::NOT_FOUND), ..Decision::default() };
        };
        let mut point = draw() * 100.0;
        let destination = rule
            .destinations
            .iter()
            .find(|d| {
                point -= f64::from(d.weight);
                point < 0.0
            })
            .or(rule.destinations.last());
        let mut decision = Decision {
            delay: rule.delay.filter(|(_, percent)| draw() * 100.0 < *percent).map(|(delay, _)| delay),
            abort: rule
                .abort
                .filter(|(_, percent)| draw() * 100.0 < *percent)
                .and_then(|(status, _)| StatusCode::from_u16(status).ok()),
            timeout: rule.timeout,
            retries: retry(&rule.retries),
            request_headers: rule.request_headers.clone(),
            ..Decision::default()
        };
        if let Some(destination) = destination
            && let Some(subset) = &destination.subset
        {
            match self.version_of(&destination.host, subset) {
                Some(version) => decision.version = Some(version.to_owned()),
                // The route names a cluster that does not exist: Envoy answers 503.
                None => decision.refusal = Some(StatusCode::SERVICE_UNAVAILABLE),
            }
        }
        decision
    }
}

fn selects(rule: &Rule, method: &str, path: &str, headers: &HeaderMap) -> bool {
    rule.matches.is_empty()
        || rule.matches.iter().any(|m| m.conditions.iter().all(|c| holds(c, method, path, headers)))
}

fn holds(condition: &Condition, method: &str, path: &str, headers: &HeaderMap) -> bool {
    match condition {
        Condition::Header { name, matcher, negate } => {
            // Envoy matches a repeated header as its values joined by commas.
            let values: Vec<&str> = headers.get_all(name.as_str()).filter_map(|v| v.to_str().ok()).collect();
            let found = !values.is_empty() && matcher.matches(&values.join(","));
            found != *negate
        }
        Condition::Uri(matcher) => matcher.matches(path),
        Condition::Method(matcher) => matcher.matches(method),
    }
}

/// Istio's retry policy as the client applies it: on a refused connection always, on the
/// statuses `retryOn` lists (`5xx`, `gateway-error`, codes).
fn retry(retries: &Retries) -> Retry {
    match retries {
        Retries::Default => Retry { attempts: DEFAULT_ATTEMPTS, ..Retry::default() },
        Retries::Off => Retry::default(),
        Retries::Custom { attempts, per_try_timeout, retry_on } => {
            let on: Vec<&str> = retry_on.as_deref().map(|r| r.split(',').collect()).unwrap_or_default();
            let mut statuses: Vec<u16> = on.iter().filter_map(|t| t.parse().ok()).collect();
            if on.contains(&"gateway-error") {
                statuses.extend([502, 503, 504]);
            }
            Retry {
                attempts: *attempts,
                per_try_timeout: per_try_timeout.filter(|t| *t > Duration::ZERO),
                statuses,
                server_errors: on.contains(&"5xx"),
            }
        }
    }
}
