//! Trace files: one OTLP JSON export request per line, as `bookinfo up` writes them.
//!
//! Each run of the stack writes its own file, in a run directory of its own, through a
//! background thread; the file is capped and rotated (`traces.jsonl`, then
//! `traces.1.jsonl`), so a run never takes more than twice the cap on disk. Readers take the
//! latest traces from the end of a file without loading it whole.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::SystemTime;

use bookinfo_config::Source;

use crate::model::{Span, TraceId};
use crate::trace::{Dedup, Trace};
use crate::wire::otlp;

/// `BOOKINFO_RUNS_DIR`: where run directories are made (default: `bookinfo/runs` in the XDG
/// state directory, `~/.local/state`).
pub const RUNS_DIR: &str = "BOOKINFO_RUNS_DIR";
/// The file of a run, in its directory.
pub const FILE_NAME: &str = "traces.jsonl";
/// Run directories kept; older ones are removed when a new run starts.
const RUNS_KEPT: usize = 10;
/// Bytes of lines waiting for the writer at most; past it lines are dropped and counted.
const QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// Spans per line at most: a huge trace is written as several lines (readers join them).
const LINE_SPANS: usize = 1000;

/// Where run directories go, as `source` says: `$BOOKINFO_RUNS_DIR`, else
/// `$XDG_STATE_HOME/bookinfo/runs`, else `~/.local/state/bookinfo/runs`, else `bookinfo-runs` in
/// the temporary directory.
pub fn runs_root(source: &(impl Source + ?Sized)) -> PathBuf {
    let var = |name: &str| source.get(name).map(PathBuf::from);
    if let Some(dir) = var(RUNS_DIR) {
        return dir;
    }
    match (var("XDG_STATE_HOME"), var("HOME")) {
        (Some(state), _) => state.join("bookinfo/runs"),
        (None, Some(home)) => home.join(".local/state/bookinfo/runs"),
        (None, None) => std::env::temp_dir().join("bookinfo-runs"),
    }
}

/// Makes a new run directory under `root` (named after the time and this process), removing
/// the oldest runs beyond the last ten.
///
/// # Errors
/// The directory cannot be made.
pub fn new_run_dir(root: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(root)?;
    prune(root);
    let stamp = crate::time::rfc3339_seconds(SystemTime::now()).replace(':', "");
    let dir = root.join(format!("{stamp}-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn prune(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else { return };
    let mut runs: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.join(FILE_NAME).exists()).collect();
    runs.sort();
    let excess = runs.len().saturating_sub(RUNS_KEPT - 1);
    for old in runs.into_iter().take(excess) {
        // Another run may be writing there; a failure only leaves it on disk.
        let _ = fs::remove_dir_all(old);
    }
}

/// The trace file of the newest run under `root`, if any.
pub fn latest_run_file(root: &Path) -> Option<PathBuf> {
    let mut runs: Vec<PathBuf> = fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join(FILE_NAME))
        .filter(|f| f.exists())
        .collect();
    runs.sort();
    runs.pop()
}

/// The rotated-out older part of `file`: `traces.jsonl` → `traces.1.jsonl`.
pub fn rotated(file: &Path) -> PathBuf {
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match file.extension() {
        Some(ext) => format!("{stem}.1.{}", ext.to_string_lossy()),
        None => format!("{stem}.1"),
    };
    file.with_file_name(name)
}

/// A background writer of trace lines into a capped, rotated file.
pub struct Writer {
    path: PathBuf,
    queue: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
    pending: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Writer {
    /// Appends to `path` (made if missing), rotating it past `max_bytes`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn start(path: PathBuf, max_bytes: u64) -> io::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let mut size = file.metadata()?.len();
        let (queue, lines) = mpsc::sync_channel::<Vec<u8>>(QUEUE_BYTES / 1024);
        let pending = Arc::new(AtomicUsize::new(0));
        let written = pending.clone();
        let failure = Arc::new(Mutex::new(None));
        let failed = failure.clone();
        let target = path.clone();
        let thread = std::thread::Builder::new().name("trace-file".into()).spawn(move || {
            let report = |err: io::Error| {
                failed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert(format!("{}: {err}", target.display()));
            };
            for line in lines {
                written.fetch_sub(line.len(), Ordering::Relaxed);
                if size > 0 && size + line.len() as u64 > max_bytes {
                    match rotate(&target) {
                        Ok(fresh) => (file, size) = (fresh, 0),
                        Err(err) => report(err),
                    }
                }
                match file.write_all(&line) {
                    Ok(()) => size += line.len() as u64,
                    Err(err) => report(err),
                }
            }
            if let Err(err) = file.flush() {
                report(err);
            }
        })?;
        Ok(Self { path, queue: Some(queue), thread: Some(thread), pending, dropped: Arc::default(), failure })
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `spans` as one line; never blocks (a full queue drops the line and counts it).
    pub fn write(&self, spans: &[Arc<Span>]) {
        let Some(queue) = &self.queue else { return };
        for chunk in spans.chunks(LINE_SPANS) {
            let mut line = otlp::to_json_bytes(chunk);
            line.push(b'\n');
            let size = line.len();
            if self.pending.fetch_add(size, Ordering::Relaxed) + size > QUEUE_BYTES {
                self.pending.fetch_sub(size, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = queue.try_send(line) {
                self.pending.fetch_sub(size, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The first write error, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Writes what is queued and stops.
    pub fn close(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.finish();
    }
}

fn rotate(path: &Path) -> io::Result<File> {
    fs::rename(path, rotated(path))?;
    OpenOptions::new().create(true).append(true).open(path)
}

/// Why a trace file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The system's error.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

/// A single JSON document (a saved Jaeger answer) is read whole up to this size.
const DOCUMENT_LIMIT: u64 = 256 * 1024 * 1024;
/// Blocks read backwards from the end of a file.
const BLOCK: u64 = 1024 * 1024;
/// Once enough traces are found, this much more is read for their earlier spans.
const LOOK_BACK: u64 = 4 * 1024 * 1024;

/// What was read from a file: traces, and how many lines could not be read.
#[derive(Debug, Default)]
pub struct FileTraces {
    /// Traces, oldest first.
    pub traces: Vec<Trace>,
    /// Lines that were not OTLP JSON.
    pub unreadable: usize,
}

/// Which traces a reader keeps, judged on their spans.
pub type Filter<'a> = &'a dyn Fn(&[Arc<Span>]) -> bool;

/// Spans read so far, by trace, with whether each trace is kept.
#[derive(Default)]
struct Collected {
    index: HashMap<TraceId, usize>,
    sets: Vec<(Trace, Dedup, bool)>,
    kept: usize,
}

impl Collected {
    fn add(&mut self, spans: Vec<Span>, keep: Filter<'_>) {
        let mut touched = Vec::new();
        for span in spans {
            let at = *self.index.entry(span.trace_id).or_insert_with(|| {
                self.sets.push((Trace::empty(span.trace_id), Dedup::default(), false));
                self.sets.len() - 1
            });
            let (trace, seen, _) = &mut self.sets[at];
            if seen.admit(&span) {
                trace.spans.push(Arc::new(span));
                if !touched.contains(&at) {
                    touched.push(at);
                }
            }
        }
        for at in touched {
            let (trace, _, kept) = &mut self.sets[at];
            let now = keep(&trace.spans);
            self.kept = self.kept + usize::from(now) - usize::from(*kept);
            *kept = now;
        }
    }

    fn into_latest(self, limit: usize) -> Vec<Trace> {
        let mut traces: Vec<Trace> =
            self.sets.into_iter().filter(|(_, _, kept)| *kept).map(|(trace, _, _)| trace).collect();
        traces.sort_by_key(|t| (t.start(), t.id));
        let skip = traces.len().saturating_sub(limit);
        traces.split_off(skip)
    }
}

/// The latest `limit` traces of `path` that `keep` accepts (with its rotated-out part when the
/// current one holds too few), oldest first; read from the end, block by block.
///
/// # Errors
/// The file cannot be read.
pub fn read_latest(path: &Path, limit: usize, keep: Filter<'_>) -> Result<FileTraces, ReadError> {
    let io = |source| ReadError::Io { path: path.to_path_buf(), source };
    let mut collected = Collected::default();
    if let Some(spans) = single_document(path)? {
        collected.add(spans, keep);
        return Ok(FileTraces { traces: collected.into_latest(limit), unreadable: 0 });
    }
    let mut unreadable = 0;
    let mut files = vec![path.to_path_buf()];
    let older = rotated(path);
    if older.exists() {
        files.push(older);
    }
    for file in files {
        let mut lines = BackwardLines::open(&file).map_err(io)?;
        while let Some(line) = lines.next_line().map_err(io)? {
            let document = match line {
                Line::Text(text) => serde_json::from_slice::<serde_json::Value>(&text).ok(),
                Line::TooLong => None,
            };
            let Some(document) = document else {
                unreadable += 1;
                continue;
            };
            collected.add(otlp::from_json(&document), keep);
            if collected.kept >= limit && lines.floor == 0 {
                // Enough: read a little further only, for their earlier spans.
                lines.floor = lines.position.saturating_sub(LOOK_BACK).max(1);
            }
        }
        if collected.kept >= limit {
            break;
        }
    }
    Ok(FileTraces { traces: collected.into_latest(limit), unreadable })
}

/// Trace `id` from `path` (and its rotated-out part): only lines that name it are parsed.
///
/// # Errors
/// The file cannot be read.
pub fn read_trace(path: &Path, id: TraceId) -> Result<Option<Trace>, ReadError> {
    let io = |source| ReadError::Io { path: path.to_path_buf(), source };
    if let Some(spans) = single_document(path)? {
        return Ok(Trace::group(spans).into_iter().find(|t| t.id == id));
    }
    let needle = id.to_string();
    let (mut trace, mut seen) = (Trace::empty(id), Dedup::default());
    let older = rotated(path);
    for file in [older.as_path(), path] {
        if file != path && !file.exists() {
            continue;
        }
        let reader = BufReader::with_capacity(1 << 20, File::open(file).map_err(io)?);
        for line in reader.split(b'\n') {
            let line = line.map_err(io)?;
            if memchr::memmem::find(&line, needle.as_bytes()).is_none() {
                continue;
            }
            if let Ok(document) = serde_json::from_slice::<serde_json::Value>(&line) {
                for span in otlp::from_json(&document).into_iter().filter(|s| s.trace_id == id) {
                    if seen.admit(&span) {
                        trace.spans.push(Arc::new(span));
                    }
                }
            }
        }
    }
    Ok((!trace.spans.is_empty()).then_some(trace))
}

/// The spans of a file that is one JSON document (not one per line), read whole; `None` for a
/// file of lines (one whose first line is JSON, or that is too large to be read whole).
fn single_document(path: &Path) -> Result<Option<Vec<Span>>, ReadError> {
    let io = |source| ReadError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io)?;
    let mut first = Vec::new();
    BufReader::new(&mut file).take(1 << 20).read_until(b'\n', &mut first).map_err(io)?;
    if first.iter().all(u8::is_ascii_whitespace)
        || serde_json::from_slice::<serde_json::Value>(&first).is_ok()
    {
        return Ok(None);
    }
    if file.metadata().map_err(io)?.len() > DOCUMENT_LIMIT {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    let mut text = Vec::new();
    file.read_to_end(&mut text).map_err(io)?;
    Ok(serde_json::from_slice::<serde_json::Value>(&text).ok().map(|d| otlp::from_json(&d)))
}

/// Lines longer than this are skipped (as unreadable) without being held whole.
const MAX_LINE: usize = 64 * 1024 * 1024;

/// One line read backwards.
enum Line {
    /// Its bytes.
    Text(Vec<u8>),
    /// Longer than [`MAX_LINE`]: skipped.
    TooLong,
}

/// Lines of a file from the last to the first, read in blocks from the end; empty lines are
/// skipped; reading stops at `floor` (a byte offset) when it is set.
struct BackwardLines {
    file: File,
    /// Where the unread part of the file ends.
    position: u64,
    /// Read but not yet returned: the end of the unread part's last lines.
    buffer: Vec<u8>,
    /// The buffer's line started past the end of the buffer and was too long to keep.
    overlong: bool,
    /// Nothing before this offset is read (0: read to the start).
    floor: u64,
}

impl BackwardLines {
    fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let position = file.metadata()?.len();
        Ok(Self { file, position, buffer: Vec::new(), overlong: false, floor: 0 })
    }

    fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            // A line is complete once a newline precedes it (or the file starts there).
            let trimmed = self.buffer.iter().rposition(|b| *b != b'\n').map_or(0, |i| i + 1);
            if let Some(newline) = self.buffer[..trimmed].iter().rposition(|b| *b == b'\n') {
                let line = self.take(newline + 1, trimmed);
                self.buffer.truncate(newline + 1);
                return Ok(Some(line));
            }
            if self.position <= self.floor {
                if trimmed == 0 || self.floor > 0 {
                    // At the floor, a partial line is left unread.
                    return Ok(None);
                }
                let line = self.take(0, trimmed);
                self.buffer.clear();
                return Ok(Some(line));
            }
            if self.buffer.len() > MAX_LINE {
                self.buffer.clear();
                self.overlong = true;
            }
            let step = BLOCK.min(self.position - self.floor);
            self.position -= step;
            let mut block = vec![0u8; usize::try_from(step).unwrap_or(usize::MAX)];
            self.file.seek(SeekFrom::Start(self.position))?;
            self.file.read_exact(&mut block)?;
            block.extend_from_slice(&self.buffer);
            self.buffer = block;
        }
    }

    fn take(&mut self, from: usize, to: usize) -> Line {
        if std::mem::take(&mut self.overlong) {
            Line::TooLong
        } else {
            Line::Text(self.buffer[from..to].to_vec())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Kind;
    use crate::model::tests::span;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bookinfo-file-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn trace(n: u8, service: &str) -> Vec<Arc<Span>> {
        (1..=3)
            .map(|i| {
                let mut s = span(
                    service,
                    Kind::Server,
                    "GET /",
                    u64::from(n) * 10 + i,
                    None,
                    u64::from(n),
                    u64::from(n) + 1,
                );
                s.trace_id = TraceId([n; 16]);
                Arc::new(s)
            })
            .collect()
    }

    #[test]
    fn lines_read_backwards_across_blocks() {
        let dir = temp("backwards");
        let path = dir.join("f");
        let long = "x".repeat(BLOCK as usize + 10);
        fs::write(&path, format!("first\n\n{long}\nlast\n")).unwrap();
        let mut lines = BackwardLines::open(&path).unwrap();
        let mut seen = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            let Line::Text(text) = line else { panic!("too long") };
            seen.push(String::from_utf8(text).unwrap());
        }
        assert_eq!(seen, ["last", long.as_str(), "first"], "empty lines are skipped");
    }

    #[test]
    fn the_writer_rotates_and_readers_take_the_latest() {
        let dir = temp("rotate");
        let path = dir.join(FILE_NAME);
        let writer = Writer::start(path.clone(), 4096).unwrap();
        for n in 1..=40 {
            writer.write(&trace(n, if n % 2 == 0 { "even" } else { "odd" }));
        }
        writer.close();
        let size = |p: &Path| fs::metadata(p).unwrap().len();
        assert!(
            size(&path) <= 4096 && size(&rotated(&path)) <= 4096,
            "{} {}",
            size(&path),
            size(&rotated(&path))
        );
        let read = read_latest(&path, 3, &|_| true).unwrap();
        assert_eq!(read.traces.iter().map(|t| t.id.0[0]).collect::<Vec<_>>(), [38, 39, 40]);
        let read = read_latest(&path, 2, &|spans| spans.iter().any(|s| s.service() == "odd")).unwrap();
        assert_eq!(read.traces.iter().map(|t| t.id.0[0]).collect::<Vec<_>>(), [37, 39]);
        assert_eq!(read_trace(&path, TraceId([39; 16])).unwrap().unwrap().spans.len(), 3);
        assert!(read_trace(&path, TraceId([1; 16])).unwrap().is_none(), "rotated out twice");
    }

    #[test]
    fn a_single_document_file_and_garbage_lines() {
        let dir = temp("document");
        let document = dir.join("jaeger.json");
        let json =
            serde_json::to_string_pretty(&serde_json::json!({"result": otlp::to_json(&trace(7, "a"))}))
                .unwrap();
        fs::write(&document, json).unwrap();
        assert_eq!(read_latest(&document, 5, &|_| true).unwrap().traces.len(), 1);
        let lines = dir.join("lines.jsonl");
        let good = otlp::to_json(&trace(8, "a")).to_string();
        fs::write(&lines, format!("{good}\nnot json\n{{\"also\": \"nothing\"}}\n")).unwrap();
        let read = read_latest(&lines, 5, &|_| true).unwrap();
        assert_eq!((read.traces.len(), read.unreadable), (1, 1));
    }

    #[test]
    fn the_runs_directory_is_the_variables_choice_in_order() {
        let all = [("BOOKINFO_RUNS_DIR", "/runs"), ("XDG_STATE_HOME", "/state"), ("HOME", "/home/u")];
        assert_eq!(runs_root(&all), PathBuf::from("/runs"));
        assert_eq!(runs_root(&all[1..]), PathBuf::from("/state/bookinfo/runs"));
        assert_eq!(runs_root(&all[2..]), PathBuf::from("/home/u/.local/state/bookinfo/runs"));
        let empty = [("BOOKINFO_RUNS_DIR", ""), ("HOME", "/home/u")];
        assert_eq!(runs_root(&empty), PathBuf::from("/home/u/.local/state/bookinfo/runs"), "empty is unset");
        assert_eq!(runs_root(&[("OTHER", "x")]), std::env::temp_dir().join("bookinfo-runs"));
    }

    #[test]
    fn runs_get_their_own_directories_and_old_ones_go() {
        let root = temp("runs");
        for n in 0..12 {
            let dir = root.join(format!("2026-11-{:02}T000000Z-1", n + 1));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(FILE_NAME), "").unwrap();
        }
        let fresh = new_run_dir(&root).unwrap();
        let runs = fs::read_dir(&root).unwrap().count();
        assert_eq!(runs, RUNS_KEPT, "nine old runs and the new one");
        fs::write(fresh.join(FILE_NAME), "").unwrap();
        assert_eq!(latest_run_file(&root), Some(fresh.join(FILE_NAME)));
    }
}
