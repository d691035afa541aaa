//! The calling pod's sidecar, played by the application itself (the local stack without
//! `--mesh`): a call carried as Envoy carries it, by the [`Decision`] the routes make for it.
//! Each step mirrors one of Envoy's behaviours, named where it happens; the table of tests at
//! the end holds one row per behaviour.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::rt::time::{sleep, timeout};
use actix_web::web::Bytes;
use bookinfo_http::routing::{Answer, Outbound, Transport};
use bookinfo_http::{Reply, UpstreamError};

use crate::model::HeaderEdits;

/// Where one call goes, and what happens to it on the way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The `version` label of the pods to call; `None` for any.
    pub version: Option<String>,
    /// Wait this long before sending (fault injection).
    pub delay: Option<Duration>,
    /// Answer this status without sending (fault injection).
    pub abort: Option<StatusCode>,
    /// The route's deadline: past it the call fails with 504, as Envoy answers.
    pub timeout: Option<Duration>,
    /// Answer this status without sending, as the proxy would: 404 when no rule matches, 503
    /// when the route names a subset no DestinationRule defines.
    pub refusal: Option<StatusCode>,
    /// Retries on a refused connection (and on the statuses listed).
    pub retries: Retry,
    /// Changes to the request's headers.
    pub request_headers: HeaderEdits,
}

/// Retries of a call, as Istio's route says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retry {
    /// Retries at most (0: none).
    pub attempts: u32,
    /// Deadline of each try.
    pub per_try_timeout: Option<Duration>,
    /// Statuses that are retried too (any 5xx when `server_errors`).
    pub statuses: Vec<u16>,
    /// Any 5xx is retried.
    pub server_errors: bool,
}

/// Carries `call` through `transport` as `decision` says: the answer Envoy would give the
/// application.
pub async fn carry(decision: &Decision, call: Outbound<'_>, transport: &dyn Transport) -> Answer {
    let upstream = call.upstream;
    let own = |status: StatusCode| Ok(Reply { upstream, status, body: Bytes::new() });
    // No route matched (404, NR), or the route names a cluster that does not exist (503, NC).
    if let Some(status) = decision.refusal {
        return own(status);
    }
    let carried = async {
        // The fault filter: a delay, then an abort, before anything is sent.
        if let Some(delay) = decision.delay {
            sleep(delay).await;
        }
        if let Some(status) = decision.abort {
            return own(status);
        }
        let retry = &decision.retries;
        let mut headers = call.headers;
        apply(&decision.request_headers, &mut headers);
        let mut tries = 0;
        loop {
            // The headers move into the last try; only a try that may be retried copies them.
            let these = if tries < retry.attempts { headers.clone() } else { std::mem::take(&mut headers) };
            let outcome = match decision.version.as_deref() {
                // A subset with no pods: 503 "no healthy upstream" (UH).
                Some(version) if !transport.has_version(version) => own(StatusCode::SERVICE_UNAVAILABLE),
                version => {
                    let sent = transport.send(version, these);
                    match retry.per_try_timeout {
                        // A try past its deadline ends as 504, which the retry policy may retry.
                        Some(limit) => {
                            timeout(limit, sent).await.unwrap_or_else(|_| own(StatusCode::GATEWAY_TIMEOUT))
                        }
                        None => sent.await,
                    }
                }
            };
            if tries >= retry.attempts || !retriable(retry, &outcome) {
                return outcome;
            }
            tries += 1;
            tracing::debug!(%upstream, tries, "retrying, as the route says");
        }
    };
    match decision.timeout {
        // The route's timeout covers every try and the fault's delay: 504 (UT).
        Some(limit) => timeout(limit, carried).await.unwrap_or_else(|_| own(StatusCode::GATEWAY_TIMEOUT)),
        None => carried.await,
    }
}

/// Istio's `retryOn`: a refused or reset connection always; the statuses listed; any 5xx for
/// `5xx`. Never a timeout of the caller's, nor a body cut short.
fn retriable(retry: &Retry, outcome: &Answer) -> bool {
    match outcome {
        Err(UpstreamError::Connect { .. }) => true,
        Ok(reply) => {
            retry.statuses.contains(&reply.status.as_u16())
                || (retry.server_errors && reply.status.is_server_error())
        }
        Err(_) => false,
    }
}

/// A route's header changes, as Envoy makes them before the request leaves.
pub fn apply(edits: &HeaderEdits, headers: &mut HeaderMap) {
    for (name, value) in &edits.set {
        headers.insert(name.clone(), value.clone());
    }
    for (name, value) in &edits.add {
        headers.append(name.clone(), value.clone());
    }
    for name in &edits.remove {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use std::time::Instant;

    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
    use awc::error::{ConnectError, SendRequestError};
    use bookinfo_http::Upstream;
    use futures_util::future::LocalBoxFuture;

    use super::*;

    const REVIEWS: Upstream = Upstream::named("reviews");
    const MS: Duration = Duration::from_millis(1);

    /// What one try of the fake pods does.
    #[derive(Debug, Clone, Copy)]
    enum Pod {
        /// Answers this status.
        Answers(u16),
        /// Refuses the connection.
        Refuses,
        /// Never answers.
        Hangs,
    }

    /// Pods of versions `v1` and `v2` that do what `script` says, try after try, and note each.
    struct FakePods {
        script: RefCell<VecDeque<Pod>>,
        tries: RefCell<Vec<(Option<String>, HeaderMap)>>,
    }

    impl Transport for FakePods {
        fn has_version(&self, version: &str) -> bool {
            ["v1", "v2"].contains(&version)
        }

        fn send(&self, version: Option<&str>, headers: HeaderMap) -> LocalBoxFuture<'_, Answer> {
            self.tries.borrow_mut().push((version.map(str::to_owned), headers));
            let pod = self.script.borrow_mut().pop_front().unwrap_or(Pod::Answers(200));
            Box::pin(async move {
                match pod {
                    Pod::Answers(status) => {
                        let status = StatusCode::from_u16(status).unwrap();
                        Ok(Reply { upstream: REVIEWS, status, body: Bytes::new() })
                    }
                    Pod::Refuses => {
                        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                        let source = SendRequestError::Connect(ConnectError::Io(refused));
                        Err(UpstreamError::Connect { upstream: REVIEWS, source })
                    }
                    Pod::Hangs => std::future::pending().await,
                }
            })
        }
    }

    /// What the application gets back.
    #[derive(Debug, PartialEq)]
    enum Got {
        Status(u16),
        Refused,
    }

    struct Row {
        /// The Envoy behaviour the row mirrors.
        mirrors: &'static str,
        decision: Decision,
        pods: &'static [Pod],
        got: Got,
        tries: usize,
        /// Time the answer takes at least.
        at_least: Duration,
    }

    fn retry(attempts: u32, statuses: &[u16], server_errors: bool, per_try: Option<Duration>) -> Retry {
        Retry { attempts, per_try_timeout: per_try, statuses: statuses.to_vec(), server_errors }
    }

    fn rows() -> Vec<Row> {
        let default = Decision::default;
        let row = |mirrors, decision, pods, got, tries| Row {
            mirrors,
            decision,
            pods,
            got,
            tries,
            at_least: Duration::ZERO,
        };
        vec![
            row("no route for the service: the call goes as it is", default(), &[], Got::Status(200), 1),
            row(
                "the pod's answer is passed on as it is",
                default(),
                &[Pod::Answers(418)],
                Got::Status(418),
                1,
            ),
            row(
                "no rule matches: 404 (NR), nothing sent",
                Decision { refusal: Some(StatusCode::NOT_FOUND), ..default() },
                &[],
                Got::Status(404),
                0,
            ),
            row(
                "a subset no DestinationRule defines: 503 (NC), nothing sent",
                Decision { refusal: Some(StatusCode::SERVICE_UNAVAILABLE), ..default() },
                &[],
                Got::Status(503),
                0,
            ),
            row(
                "fault abort: its status, nothing sent",
                Decision { abort: Some(StatusCode::IM_A_TEAPOT), ..default() },
                &[],
                Got::Status(418),
                0,
            ),
            Row {
                at_least: 60 * MS,
                ..row(
                    "fault delay: the call waits, then goes",
                    Decision { delay: Some(60 * MS), ..default() },
                    &[],
                    Got::Status(200),
                    1,
                )
            },
            row(
                "a subset with no pods: 503 no healthy upstream (UH)",
                Decision { version: Some("v3".into()), ..default() },
                &[],
                Got::Status(503),
                0,
            ),
            row(
                "retries on a refused connection (Istio's default policy)",
                Decision { retries: retry(2, &[], false, None), ..default() },
                &[Pod::Refuses, Pod::Answers(200)],
                Got::Status(200),
                2,
            ),
            row(
                "retries exhausted: the last failure is the answer",
                Decision { retries: retry(2, &[], false, None), ..default() },
                &[Pod::Refuses, Pod::Refuses, Pod::Refuses],
                Got::Refused,
                3,
            ),
            row("no retries: one try", default(), &[Pod::Refuses, Pod::Answers(200)], Got::Refused, 1),
            row(
                "retryOn lists a status: that answer is retried",
                Decision { retries: retry(2, &[503], false, None), ..default() },
                &[Pod::Answers(503), Pod::Answers(200)],
                Got::Status(200),
                2,
            ),
            row(
                "retryOn 5xx: any server error is retried",
                Decision { retries: retry(1, &[], true, None), ..default() },
                &[Pod::Answers(500), Pod::Answers(200)],
                Got::Status(200),
                2,
            ),
            row(
                "a 4xx is never retried",
                Decision { retries: retry(2, &[503], true, None), ..default() },
                &[Pod::Answers(404), Pod::Answers(200)],
                Got::Status(404),
                1,
            ),
            row(
                "perTryTimeout: the try ends as 504, which retryOn gateway-error retries",
                Decision { retries: retry(1, &[502, 503, 504], false, Some(30 * MS)), ..default() },
                &[Pod::Hangs, Pod::Answers(200)],
                Got::Status(200),
                2,
            ),
            row(
                "perTryTimeout with no retry left: 504",
                Decision { retries: retry(0, &[], false, Some(30 * MS)), ..default() },
                &[Pod::Hangs],
                Got::Status(504),
                1,
            ),
            Row {
                at_least: 50 * MS,
                ..row(
                    "the route's timeout: 504 (UT), however many retries were left",
                    Decision { timeout: Some(50 * MS), retries: retry(5, &[], true, None), ..default() },
                    &[Pod::Hangs],
                    Got::Status(504),
                    1,
                )
            },
            Row {
                at_least: 40 * MS,
                ..row(
                    "the route's timeout covers the fault's delay",
                    Decision { timeout: Some(40 * MS), delay: Some(Duration::from_secs(5)), ..default() },
                    &[],
                    Got::Status(504),
                    0,
                )
            },
        ]
    }

    async fn carry_row(row: &Row) -> (Got, FakePods, Duration) {
        let pods =
            FakePods { script: RefCell::new(row.pods.iter().copied().collect()), tries: RefCell::default() };
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("x-request-id"), HeaderValue::from_static("r-1"));
        let call = Outbound { upstream: REVIEWS, method: "GET", path: "/reviews/0", headers };
        let started = Instant::now();
        let got = match carry(&row.decision, call, &pods).await {
            Ok(reply) => Got::Status(reply.status.as_u16()),
            Err(UpstreamError::Connect { .. }) => Got::Refused,
            Err(other) => panic!("{}: {other}", row.mirrors),
        };
        (got, pods, started.elapsed())
    }

    #[actix_web::test]
    async fn each_envoy_behaviour_is_carried_out_as_envoy_does() {
        for row in rows() {
            let (got, pods, took) = carry_row(&row).await;
            assert_eq!(got, row.got, "{}", row.mirrors);
            let tries = pods.tries.borrow();
            assert_eq!(tries.len(), row.tries, "{}: tries", row.mirrors);
            for (_, headers) in tries.iter() {
                assert_eq!(
                    headers.get("x-request-id").unwrap(),
                    "r-1",
                    "{}: every try carries the headers",
                    row.mirrors
                );
            }
            assert!(took >= row.at_least, "{}: {took:?}, expected at least {:?}", row.mirrors, row.at_least);
        }
    }

    #[actix_web::test]
    async fn a_routed_version_reaches_that_versions_pods_on_every_try() {
        let decision = Decision {
            version: Some("v2".into()),
            retries: retry(1, &[503], false, None),
            ..Decision::default()
        };
        let row = Row {
            mirrors: "subset v2",
            decision,
            pods: &[Pod::Answers(503)],
            got: Got::Status(200),
            tries: 2,
            at_least: Duration::ZERO,
        };
        let (got, pods, _) = carry_row(&row).await;
        assert_eq!(got, Got::Status(200));
        let versions: Vec<Option<String>> = pods.tries.borrow().iter().map(|(v, _)| v.clone()).collect();
        assert_eq!(versions, [Some("v2".to_owned()), Some("v2".to_owned())]);
    }
}
