//! `bookinfo traces`: print traces as trees, compare two, or serve the viewer over a saved
//! file; from the local stack's files or from a Jaeger. The work is the `bookinfo-traces`
//! crate's; this is the command line around it.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bookinfo_traces::file::{self, FileTraces};
use bookinfo_traces::jaeger::Jaeger;
use bookinfo_traces::render::{self, LEGEND, Options};
use bookinfo_traces::{Limits, Sink, SinkOptions, Span, Store, Trace, TraceId, compare};

use bookinfo_config::Source;

use crate::blocking;
use crate::cli::{TraceSource, TracesArgs, TracesCommand};
use crate::error::{Error, TracesError};

/// Runs `bookinfo traces ...`; the runs directory is the one `variables` say.
///
/// # Errors
/// Traces that cannot be read or found, or a viewer that cannot start.
pub async fn run(args: TracesArgs, variables: &(impl Source + ?Sized)) -> Result<(), Error> {
    let runs = file::runs_root(variables);
    match args.command {
        TracesCommand::Show { source, service, limit, trace, attributes, all } => {
            let traces = match &trace {
                Some(id) => fetch_located(&source, &runs, &Located::parse(id)).await?.into_iter().collect(),
                None => latest(&source, &runs, service.as_deref(), limit).await?,
            };
            if traces.is_empty() {
                let which = service.map(|s| format!(" with a span of {s}")).unwrap_or_default();
                emit(&format!("no traces{which}\n"))?;
                return match trace {
                    Some(id) => Err(TracesError::NotFound(id).into()),
                    None => Ok(()),
                };
            }
            let options = if all {
                Options { max_rows: usize::MAX, max_depth: usize::MAX, attributes }
            } else {
                Options { attributes, ..Options::default() }
            };
            for trace in &traces {
                emit(&format!("{}\n", render::tree(trace, options)))?;
            }
            emit(&format!("{LEGEND}\n"))
        }
        TracesCommand::Compare { source, a, b, json } => {
            let [a, b] = [a, b].map(|r| Located::parse(&r));
            let found_a =
                fetch_located(&source, &runs, &a).await?.ok_or_else(|| TracesError::NoMatch(a.clone()))?;
            let found_b =
                fetch_located(&source, &runs, &b).await?.ok_or_else(|| TracesError::NoMatch(b.clone()))?;
            if json {
                emit(&format!("{:#}\n", compare::json(&found_a, &found_b)))
            } else {
                emit(&compare::table(&found_a, &found_b))?;
                emit(&format!("{LEGEND}\n"))
            }
        }
        TracesCommand::Serve { file, port, host, trace_memory } => {
            serve(file, &runs, host, port, trace_memory).await
        }
        TracesCommand::Runs => {
            let root = runs.clone();
            let listed = blocking::run(move || Ok(file::readable_runs(&root))).await?;
            emit(&runs_table(&runs, &listed))
        }
    }
}

/// Writes to standard output; a reader that went away (`... | head`) ends the command quietly.
fn emit(text: &str) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Err(Error::Quiet),
        other => Ok(other?),
    }
}

/// A trace named on the command line, perhaps in a run of its own: `[RUN:]ID` or
/// `[RUN:]latest:SERVICE`, where RUN is `@N` (the run N before the newest: `@0` is the newest,
/// `@1` the one before) or a run's directory name, as `bookinfo traces runs` lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The run, when one is named; else where `--file`/`--jaeger` say, or the newest run.
    pub run: Option<RunRef>,
    /// The trace in it.
    pub trace: TraceRef,
}

/// A run named in a [`Located`] trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunRef {
    /// This many runs before the newest.
    Back(usize),
    /// By its directory's name.
    Named(String),
}

impl Located {
    fn parse(text: &str) -> Self {
        let text = text.trim();
        let (run, rest) = match text.split_once(':') {
            // `latest:SERVICE` alone: no run named. A trace id holds no colon.
            Some((prefix, rest)) if prefix != "latest" => {
                let run = match prefix.strip_prefix('@').map(str::parse::<usize>) {
                    Some(Ok(back)) => RunRef::Back(back),
                    _ => RunRef::Named(prefix.to_owned()),
                };
                (Some(run), rest)
            }
            _ => (None, text),
        };
        Self { run, trace: TraceRef::parse(rest) }
    }
}

impl std::fmt::Display for Located {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.run {
            Some(RunRef::Back(back)) => write!(f, "{} of run @{back}", self.trace),
            Some(RunRef::Named(name)) => write!(f, "{} of run {name}", self.trace),
            None => write!(f, "{}", self.trace),
        }
    }
}

/// A trace named on the command line: its id, or `latest:<service>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceRef {
    /// By id, in lower case.
    Id(String),
    /// The latest trace with a span of this service.
    Latest(String),
}

impl TraceRef {
    fn parse(text: &str) -> Self {
        match text.strip_prefix("latest:") {
            Some(service) => TraceRef::Latest(service.to_owned()),
            None => TraceRef::Id(text.trim().to_ascii_lowercase()),
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

fn has_service(service: Option<&str>) -> impl Fn(&[Arc<Span>]) -> bool + '_ {
    move |spans: &[Arc<Span>]| service.is_none_or(|s| spans.iter().any(|span| span.service() == s))
}

/// The latest `limit` traces (with a span of `service`, if given), oldest first; from the
/// latest run under `runs` unless `source` names a file or a Jaeger.
async fn latest(
    source: &TraceSource,
    runs: &Path,
    service: Option<&str>,
    limit: usize,
) -> Result<Vec<Trace>, Error> {
    match &source.jaeger {
        Some(url) => {
            let service = service.ok_or(TracesError::ServiceNeeded)?;
            let spans =
                Jaeger::new(url).find(service, limit, source.lookback).await.map_err(TracesError::from)?;
            let mut traces: Vec<Trace> =
                Trace::group(spans).into_iter().filter(|t| t.has_service(service)).collect();
            let skip = traces.len().saturating_sub(limit);
            Ok(traces.split_off(skip))
        }
        None => {
            let (asked, runs, service) =
                (source.file.clone(), runs.to_path_buf(), service.map(str::to_owned));
            let (path, read) = blocking::run(move || {
                let path = trace_file(asked, &runs)?;
                let read = file::read_latest(&path, limit, &has_service(service.as_deref()));
                Ok((path, read.map_err(TracesError::from)?))
            })
            .await?;
            skipped(&path, &read);
            Ok(read.traces)
        }
    }
}

/// Says what of `path` could not be read, if anything.
fn skipped(path: &Path, read: &FileTraces) {
    if read.unreadable > 0 {
        let too_long = match read.too_long {
            0 => String::new(),
            n => format!(" ({n} longer than {} MiB, not read)", file::LINE_LIMIT >> 20),
        };
        eprintln!("bookinfo: {} unreadable lines in {} skipped{too_long}", read.unreadable, path.display());
    }
}

/// The runs a trace can be read from, newest first, with the `@N` that names each.
fn runs_table(root: &Path, listed: &[file::RunDir]) -> String {
    if listed.is_empty() {
        return format!("no runs with traces in {}\n", root.display());
    }
    let mut out =
        format!("runs in {} (newest first; name one as @N:latest:SERVICE or NAME:ID):\n", root.display());
    for (back, run) in listed.iter().rev().enumerate() {
        let name = run.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let size = std::fs::metadata(run.dir.join(file::FILE_NAME)).map(|m| m.len()).unwrap_or(0);
        let running = if run.running { "  running" } else { "" };
        out.push_str(&format!("  @{back:<3} {name}  {:.1} MB{running}\n", size as f64 / 1e6));
    }
    out
}

/// The trace `located` names: in its run when it names one, else as [`fetch_one`].
async fn fetch_located(source: &TraceSource, runs: &Path, located: &Located) -> Result<Option<Trace>, Error> {
    let Some(run) = &located.run else { return fetch_one(source, runs, &located.trace).await };
    if source.file.is_some() || source.jaeger.is_some() {
        return Err(TracesError::RunWithSource(located.to_string()).into());
    }
    let (root, run) = (runs.to_path_buf(), run.clone());
    let path = blocking::run(move || run_file(&root, &run)).await?;
    let in_run = TraceSource { file: Some(path), ..source.clone() };
    fetch_one(&in_run, runs, &located.trace).await
}

/// The trace file of `run` under `root`.
fn run_file(root: &Path, run: &RunRef) -> Result<PathBuf, Error> {
    let listed = file::readable_runs(root);
    let found = match run {
        RunRef::Back(back) => listed.iter().rev().nth(*back),
        RunRef::Named(name) => listed.iter().find(|r| r.dir.file_name().is_some_and(|n| n == name.as_str())),
    };
    let label = match run {
        RunRef::Back(back) => format!("@{back}"),
        RunRef::Named(name) => name.clone(),
    };
    found
        .map(|r| r.dir.join(file::FILE_NAME))
        .ok_or_else(|| TracesError::NoSuchRun { run: label, root: root.to_path_buf() }.into())
}

/// The trace `reference` names, from where `source` says (or the latest run under `runs`).
async fn fetch_one(source: &TraceSource, runs: &Path, reference: &TraceRef) -> Result<Option<Trace>, Error> {
    let id = match reference {
        TraceRef::Latest(service) => return Ok(latest(source, runs, Some(service), 1).await?.pop()),
        TraceRef::Id(text) => {
            TraceId::from_hex(text).ok_or_else(|| TracesError::NotATraceId(text.clone()))?
        }
    };
    match &source.jaeger {
        Some(url) => {
            let spans = Jaeger::new(url).trace(&id.to_string()).await.map_err(TracesError::from)?;
            Ok(Trace::group(spans).into_iter().find(|t| t.id == id))
        }
        None => {
            let (asked, runs) = (source.file.clone(), runs.to_path_buf());
            blocking::run(move || {
                Ok(file::read_trace(&trace_file(asked, &runs)?, id).map_err(TracesError::from)?)
            })
            .await
        }
    }
}

/// The file asked for, or the latest run's under `runs` (blocking: it lists the runs).
fn trace_file(asked: Option<PathBuf>, runs: &Path) -> Result<PathBuf, Error> {
    if let Some(path) = asked {
        return Ok(path);
    }
    file::latest_run_file(runs).ok_or_else(|| TracesError::NoRunFile(runs.to_path_buf()).into())
}

/// `bookinfo traces serve`: the viewer over a saved file (or the latest run's under `runs`),
/// until Ctrl-C.
async fn serve(
    file: Option<PathBuf>,
    runs: &Path,
    host: std::net::IpAddr,
    port: u16,
    memory: u64,
) -> Result<(), Error> {
    let runs = runs.to_path_buf();
    let (path, loaded, sink) = blocking::run(move || {
        let path = trace_file(file, &runs)?;
        let (store, loaded) = load(&path, memory)?;
        let options = SinkOptions { query: Some((host, port).into()), ..SinkOptions::default() };
        let sink = Sink::start_with(options, store).map_err(TracesError::from)?;
        Ok((path, loaded, sink))
    })
    .await?;
    let held = sink.stats().traces;
    if let Some(addr) = sink.query {
        emit(&format!(
            "Serving {held} traces of {} (of {loaded} read) on http://{addr}; press Ctrl-C to stop.\n",
            path.display()
        ))?;
    }
    let _ = tokio::signal::ctrl_c().await;
    blocking::run(move || {
        sink.close();
        Ok(())
    })
    .await
}

/// A store of the latest traces of `path`, in `memory` bytes at most, and how many were read
/// (blocking).
fn load(path: &Path, memory: u64) -> Result<(Store, usize), Error> {
    let limits = Limits { bytes: usize::try_from(memory).unwrap_or(usize::MAX), ..Limits::default() };
    let mut store = Store::for_saved(limits);
    // As many of the latest traces as the memory holds, give or take what one trace weighs.
    let estimate = (limits.bytes / 8192).clamp(1, 100_000);
    let read = file::read_latest(path, estimate, &|_| true).map_err(TracesError::from)?;
    skipped(path, &read);
    let loaded = read.traces.len();
    for trace in read.traces {
        let spans = trace.spans.into_iter().map(|s| Arc::try_unwrap(s).unwrap_or_else(|s| (*s).clone()));
        store.add(spans.collect(), std::time::Instant::now());
    }
    Ok((store, loaded))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_references_are_ids_or_latest() {
        assert!(matches!(TraceRef::parse("ABC"), TraceRef::Id(id) if id == "abc"));
        assert!(
            matches!(TraceRef::parse("latest:productpage.bookinfo-otel"), TraceRef::Latest(s) if s == "productpage.bookinfo-otel")
        );
    }

    #[test]
    fn a_reference_may_name_its_run_by_how_far_back_or_by_name() {
        let parsed = |text: &str| Located::parse(text);
        assert_eq!(
            parsed("latest:productpage"),
            Located { run: None, trace: TraceRef::Latest("productpage".into()) }
        );
        assert_eq!(
            parsed("@1:latest:productpage.bookinfo-otel"),
            Located {
                run: Some(RunRef::Back(1)),
                trace: TraceRef::Latest("productpage.bookinfo-otel".into())
            }
        );
        assert_eq!(
            parsed("2026-12-04T200145Z-7486:ABC"),
            Located {
                run: Some(RunRef::Named("2026-12-04T200145Z-7486".into())),
                trace: TraceRef::Id("abc".into())
            }
        );
        assert_eq!(parsed("abc"), Located { run: None, trace: TraceRef::Id("abc".into()) });
        assert_eq!(parsed("@1:latest:productpage").to_string(), "latest:productpage of run @1");
    }

    #[test]
    fn a_run_is_found_by_how_far_back_or_by_name_and_a_missing_one_is_said() {
        let runs = std::env::temp_dir().join(format!("bookinfo-runs-named-{}", std::process::id()));
        for name in ["2026-01-01T000000Z-1", "2026-01-02T000000Z-2", "2026-01-03T000000Z-3"] {
            std::fs::create_dir_all(runs.join(name)).unwrap();
            std::fs::write(runs.join(name).join(file::FILE_NAME), "{}\n").unwrap();
        }
        let file =
            |run: RunRef| run_file(&runs, &run).map(|p| p.parent().unwrap().file_name().unwrap().to_owned());
        assert_eq!(file(RunRef::Back(0)).unwrap(), "2026-01-03T000000Z-3");
        assert_eq!(file(RunRef::Back(2)).unwrap(), "2026-01-01T000000Z-1");
        assert_eq!(file(RunRef::Named("2026-01-02T000000Z-2".into())).unwrap(), "2026-01-02T000000Z-2");
        let missing = file(RunRef::Back(3)).unwrap_err().to_string();
        assert!(missing.contains("no run @3 with traces") && missing.contains("traces runs"), "{missing}");
        let listed = runs_table(&runs, &file::readable_runs(&runs));
        assert!(
            listed.contains("@0   2026-01-03T000000Z-3") && listed.contains("@2   2026-01-01T000000Z-1"),
            "{listed}"
        );
        std::fs::remove_dir_all(&runs).unwrap();
    }

    #[test]
    fn without_a_file_the_latest_run_under_the_runs_directory_is_read() {
        let runs = std::env::temp_dir().join(format!("bookinfo-traces-runs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&runs);
        let err = trace_file(None, &runs).unwrap_err();
        assert!(matches!(&err, Error::Traces(TracesError::NoRunFile(root)) if *root == runs), "{err}");
        // The newest run holds nothing and runs no more (a start that failed): not the latest.
        for (run, text) in
            [("2026-01-01T000000Z-1", "{}\n"), ("2026-01-02T000000Z-1", "{}\n"), ("2026-01-03T000000Z-1", "")]
        {
            std::fs::create_dir_all(runs.join(run)).unwrap();
            std::fs::write(runs.join(run).join(file::FILE_NAME), text).unwrap();
        }
        let latest = runs.join("2026-01-02T000000Z-1").join(file::FILE_NAME);
        assert_eq!(trace_file(None, &runs).unwrap(), latest);
        assert_eq!(trace_file(Some("mine.jsonl".into()), &runs).unwrap(), PathBuf::from("mine.jsonl"));
        std::fs::remove_dir_all(runs).unwrap();
    }
}
