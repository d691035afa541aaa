//! `bookinfo traces`: print traces as trees, compare two; from the local stack's trace file or
//! from Jaeger. Also the local stack's trace sink.

pub mod compare;
pub mod jaeger;
pub mod model;
pub mod otlp;
pub mod render;
pub mod sink;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{TraceSource, TracesArgs, TracesCommand};
use crate::error::Error;

use self::jaeger::Jaeger;
use self::model::{Span, Trace};

/// Where `bookinfo up` appends traces unless told otherwise.
pub fn default_file() -> PathBuf {
    std::env::temp_dir().join("bookinfo-traces.jsonl")
}

/// Runs `bookinfo traces ...`.
pub async fn run(args: TracesArgs) -> Result<(), Error> {
    match args.command {
        TracesCommand::Show { source, service, limit, trace } => {
            let traces = match &trace {
                Some(id) => {
                    fetch_one(&source, &TraceRef::Id(id.to_ascii_lowercase())).await?.into_iter().collect()
                }
                None => latest(&source, service.as_deref(), limit).await?,
            };
            if traces.is_empty() {
                println!("no traces{}", service.map(|s| format!(" with a span of {s}")).unwrap_or_default());
                return match trace {
                    Some(id) => Err(Error::Traces(format!("trace {id} not found"))),
                    None => Ok(()),
                };
            }
            for trace in traces {
                println!("{}", render::tree(&trace));
            }
            Ok(())
        }
        TracesCommand::Compare { source, a, b, json } => {
            let [a, b] = [a, b].map(|r| TraceRef::parse(&r));
            let found_a = fetch_one(&source, &a)
                .await?
                .ok_or_else(|| Error::Traces(format!("no trace matches {a}")))?;
            let found_b = fetch_one(&source, &b)
                .await?
                .ok_or_else(|| Error::Traces(format!("no trace matches {b}")))?;
            if json {
                println!("{:#}", compare::json(&found_a, &found_b));
            } else {
                print!("{}", compare::table(&found_a, &found_b));
            }
            Ok(())
        }
    }
}

/// A trace named on the command line: its id, or `latest:<service>`.
#[derive(Debug, Clone)]
enum TraceRef {
    Id(String),
    Latest(String),
}

impl TraceRef {
    fn parse(text: &str) -> Self {
        match text.strip_prefix("latest:") {
            Some(service) => TraceRef::Latest(service.to_owned()),
            None => TraceRef::Id(text.to_ascii_lowercase()),
        }
    }
}

impl std::fmt::Display for TraceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceRef::Id(id) => write!(f, "trace id {id}"),
            TraceRef::Latest(service) => write!(f, "latest:{service}"),
        }
    }
}

/// The latest `limit` traces (with a span of `service`, if given), oldest first.
async fn latest(source: &TraceSource, service: Option<&str>, limit: usize) -> Result<Vec<Trace>, Error> {
    let spans = match &source.jaeger {
        Some(url) => {
            let service =
                service.ok_or_else(|| Error::Traces("--service is needed to search Jaeger".into()))?;
            Jaeger::new(url)
                .find(service, limit, source.lookback)
                .await
                .map_err(|e| Error::Traces(e.to_string()))?
        }
        None => read_file(&file(source))?,
    };
    let mut traces: Vec<Trace> =
        Trace::group(spans).into_iter().filter(|t| service.is_none_or(|s| t.has_service(s))).collect();
    let skip = traces.len().saturating_sub(limit);
    Ok(traces.split_off(skip))
}

async fn fetch_one(source: &TraceSource, reference: &TraceRef) -> Result<Option<Trace>, Error> {
    match (reference, &source.jaeger) {
        (TraceRef::Latest(service), _) => Ok(latest(source, Some(service), 20).await?.pop()),
        (TraceRef::Id(id), Some(url)) => {
            let spans = Jaeger::new(url).trace(id).await.map_err(|e| Error::Traces(e.to_string()))?;
            Ok(Trace::group(spans).into_iter().find(|t| &t.id == id))
        }
        (TraceRef::Id(id), None) => {
            Ok(Trace::group(read_file(&file(source))?).into_iter().find(|t| &t.id == id))
        }
    }
}

fn file(source: &TraceSource) -> PathBuf {
    source.file.clone().unwrap_or_else(default_file)
}

/// The spans of a trace file: one OTLP JSON document per line (what `bookinfo up` writes), or
/// one JSON document in all (a saved Jaeger answer, say); unreadable lines are skipped and
/// counted on standard error.
pub fn read_file(path: &Path) -> Result<Vec<Span>, Error> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        Error::Traces(format!("cannot read {}: {err} (bookinfo up writes it in otel mode)", path.display()))
    })?;
    if let Ok(document) = serde_json::from_str::<serde_json::Value>(&text) {
        return Ok(otlp::from_json(&document));
    }
    let mut spans = Vec::new();
    let mut unreadable = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(document) => spans.extend(otlp::from_json(&document)),
            Err(_) => unreadable += 1,
        }
    }
    if unreadable > 0 {
        eprintln!("bookinfo: {unreadable} unreadable lines in {} skipped", path.display());
    }
    Ok(spans)
}

/// `30s`, `15m`, `1h`, `2d`, or a bare number of seconds.
pub fn parse_lookback(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration such as 30m or 1h"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} is not a duration such as 30m or 1h")),
    };
    Ok(Duration::from_secs(number * seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookbacks_parse() {
        assert_eq!(parse_lookback("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_lookback("90"), Ok(Duration::from_secs(90)));
        assert!(parse_lookback("soon").is_err());
        assert!(parse_lookback("1y").is_err());
    }

    #[test]
    fn trace_references_are_ids_or_latest() {
        assert!(matches!(TraceRef::parse("ABC"), TraceRef::Id(id) if id == "abc"));
        assert!(
            matches!(TraceRef::parse("latest:productpage.bookinfo-otel"), TraceRef::Latest(s) if s == "productpage.bookinfo-otel")
        );
    }
}
