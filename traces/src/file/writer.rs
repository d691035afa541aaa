//! The background writer of a run's trace file: spans queued in bounded memory (a full queue
//! makes the caller wait: nothing is dropped), written on a thread of their own as lines of at
//! most [`LINE_LIMIT`] bytes, the file rotated past its cap. What it writes and fails to write
//! is counted, and its first error kept, for whoever reports them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;

use serde::Serialize;

use super::rotated;
use crate::model::Span;
use crate::wire::otlp;

/// Bytes of spans (as the store counts them) waiting for the writer at most; past it
/// [`Writer::write`] waits.
const QUEUE_BYTES: usize = 2 * 1024 * 1024;
/// What a line's spans take at most, as the store counts them (their JSON is a few times that
/// at worst, escapes included), and how many spans it holds at most.
const LINE_BYTES: usize = 256 * 1024;
const LINE_SPANS: usize = 1000;
/// The longest line written, and read back: a line longer than this is split (every span
/// fits, bounded as [`crate::limits`] bounds it).
pub const LINE_LIMIT: usize = 4 * 1024 * 1024;

/// What a writer wrote and could not write, so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WriterStats {
    /// Spans written.
    pub spans_written: u64,
    /// Lines written.
    pub lines_written: u64,
    /// Spans that could not be written (an error of the file's).
    pub spans_not_written: u64,
    /// The first error, if any.
    pub error: Option<String>,
}

/// A writer's counts, shared with whoever reads them.
#[derive(Debug, Default)]
struct Counts {
    spans_written: AtomicU64,
    lines_written: AtomicU64,
    spans_not_written: AtomicU64,
    error: Mutex<Option<String>>,
}

/// The bytes queued, and a signal when some are written.
#[derive(Debug, Default)]
struct Queue {
    bytes: Mutex<usize>,
    room: Condvar,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.bytes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, bytes: usize) {
        let mut queued = self.lock();
        *queued = queued.saturating_sub(bytes);
        self.room.notify_all();
    }
}

/// Where a writer's counts are read.
#[derive(Debug, Clone)]
pub struct WriterCounts(Arc<Counts>);

impl WriterCounts {
    /// The counts now.
    pub fn get(&self) -> WriterStats {
        let counts = &self.0;
        WriterStats {
            spans_written: counts.spans_written.load(Ordering::Relaxed),
            lines_written: counts.lines_written.load(Ordering::Relaxed),
            spans_not_written: counts.spans_not_written.load(Ordering::Relaxed),
            error: counts.error.lock().unwrap_or_else(PoisonError::into_inner).clone(),
        }
    }
}

/// A background writer of spans into a capped, rotated file of lines.
pub struct Writer {
    path: PathBuf,
    sender: Option<Sender<(Vec<Arc<Span>>, usize)>>,
    thread: Option<JoinHandle<()>>,
    queue: Arc<Queue>,
    counts: Arc<Counts>,
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
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        let (sender, batches) = mpsc::channel();
        let queue = Arc::new(Queue::default());
        let counts = Arc::new(Counts::default());
        let lines = Lines {
            path: path.clone(),
            max_bytes,
            out: file,
            size,
            line: Vec::new(),
            counts: counts.clone(),
        };
        let thread = {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name("trace-file".into())
                .spawn(move || lines.run(&batches, &queue))?
        };
        Ok(Self { path, sender: Some(sender), thread: Some(thread), queue, counts })
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where its counts are read.
    pub fn counts(&self) -> WriterCounts {
        WriterCounts(self.counts.clone())
    }

    /// Queues `spans` to be written, waiting while the queue is full.
    pub fn write(&self, spans: Vec<Arc<Span>>) {
        if spans.is_empty() {
            return;
        }
        let Some(sender) = &self.sender else { return };
        let bytes: usize = spans.iter().map(|s| s.bytes()).sum();
        {
            let mut queued = self.queue.lock();
            // A batch larger than the queue goes alone.
            while *queued > 0 && *queued + bytes > QUEUE_BYTES {
                queued = self.queue.room.wait(queued).unwrap_or_else(PoisonError::into_inner);
            }
            *queued += bytes;
        }
        let count = spans.len() as u64;
        if sender.send((spans, bytes)).is_err() {
            self.queue.release(bytes);
            self.counts.spans_not_written.fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Writes what is queued and stops.
    pub fn close(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.sender.take();
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

/// Empties the queue's count when the writing thread ends.
struct Done<'a>(&'a Queue);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.release(usize::MAX);
    }
}

/// The writing thread's side: the file, and the line being made.
struct Lines {
    path: PathBuf,
    max_bytes: u64,
    /// Written a line at a time, unbuffered, so that what is counted written is in the file
    /// (a line holds many traces: the calls are few).
    out: File,
    size: u64,
    /// Reused from line to line.
    line: Vec<u8>,
    counts: Arc<Counts>,
}

impl Lines {
    fn run(mut self, batches: &Receiver<(Vec<Arc<Span>>, usize)>, queue: &Queue) {
        // However this thread ends, whoever waits for room waits no more.
        let _done = Done(queue);
        while let Ok((spans, bytes)) = batches.recv() {
            let mut rest = &spans[..];
            while !rest.is_empty() {
                let mut end = 0;
                let mut line_bytes = 0;
                while end < rest.len().min(LINE_SPANS) && (end == 0 || line_bytes < LINE_BYTES) {
                    line_bytes += rest[end].bytes() + rest[end].resource.bytes();
                    end += 1;
                }
                self.write_line(&rest[..end]);
                rest = &rest[end..];
            }
            queue.release(bytes);
        }
    }

    /// Writes `spans` as one line, or as several when the one would be past [`LINE_LIMIT`].
    fn write_line(&mut self, spans: &[Arc<Span>]) {
        self.line.clear();
        if let Err(err) = serde_json::to_writer(&mut self.line, &otlp::Export::of(spans)) {
            self.failed(&io::Error::other(err), spans.len());
            return;
        }
        self.line.push(b'\n');
        if self.line.len() > LINE_LIMIT && spans.len() > 1 {
            let (first, second) = spans.split_at(spans.len() / 2);
            self.write_line(first);
            self.write_line(second);
            return;
        }
        let length = self.line.len() as u64;
        if self.size > 0 && self.size + length > self.max_bytes {
            match self.rotate() {
                Ok(()) => self.size = 0,
                Err(err) => self.failed(&err, 0),
            }
        }
        match self.out.write_all(&self.line) {
            Ok(()) => {
                self.size += length;
                self.counts.spans_written.fetch_add(spans.len() as u64, Ordering::Relaxed);
                self.counts.lines_written.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => self.failed(&err, spans.len()),
        }
        // One huge line does not keep its buffer for good.
        self.line.shrink_to(LINE_BYTES * 4);
    }

    fn rotate(&mut self) -> io::Result<()> {
        fs::rename(&self.path, rotated(&self.path))?;
        self.out = OpenOptions::new().create(true).append(true).open(&self.path)?;
        Ok(())
    }

    /// Counts `spans` spans not written because of `err`, and keeps the first error.
    fn failed(&self, err: &io::Error, spans: usize) {
        self.counts.spans_not_written.fetch_add(spans as u64, Ordering::Relaxed);
        self.counts
            .error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(|| format!("{}: {err}", self.path.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::tests::{temp, trace};
    use crate::model::tests::{span, with};
    use crate::model::{Kind, TraceId};

    /// A writer of `traces.jsonl` in a fresh directory for test `name`, never rotating.
    fn started(name: &str) -> (PathBuf, Writer, WriterCounts) {
        let path = temp(name).join("traces.jsonl");
        let writer = Writer::start(path.clone(), u64::MAX).unwrap();
        let counts = writer.counts();
        (path, writer, counts)
    }

    /// A thousand spans of trace `trace`, each with attribute `v` = `value`.
    fn wide(trace: u8, value: &str) -> Vec<Arc<Span>> {
        (1..=1000)
            .map(|i| {
                let mut s = with(span("a", Kind::Internal, "step", i, None, 0, 1), &[("v", value)]);
                s.trace_id = TraceId([trace; 16]);
                Arc::new(s)
            })
            .collect()
    }

    #[test]
    fn a_trace_too_big_for_one_line_is_written_over_lines_within_the_limit() {
        let (path, writer, counts) = started("long-lines");
        // JSON writes each control character as six bytes: 20 MB for 3.3 MB of text.
        writer.write(wide(9, &"\u{1}".repeat(3300)));
        writer.close();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.lines().count() > 4, "{} lines", text.lines().count());
        assert!(text.lines().all(|l| l.len() <= LINE_LIMIT));
        assert_eq!(text.matches("\"spanId\"").count(), 1000);
        assert_eq!(
            counts.get(),
            WriterStats {
                spans_written: 1000,
                lines_written: text.lines().count() as u64,
                ..WriterStats::default()
            }
        );
    }

    #[test]
    fn a_full_queue_makes_the_caller_wait_and_nothing_is_dropped() {
        let (path, writer, counts) = started("queue");
        // Batches of about a megabyte, handed over far faster than they are written: the queue
        // (two of them) is full from the third on.
        let value = "v".repeat(600);
        for batch in 1..=20 {
            writer.write(wide(batch, &value));
        }
        writer.close();
        assert_eq!(counts.get().spans_written, 20_000);
        assert_eq!(fs::read_to_string(&path).unwrap().matches("\"spanId\"").count(), 20_000);
    }

    #[test]
    fn a_line_past_the_limit_is_split_until_it_fits() {
        let dir = temp("split");
        let path = dir.join("traces.jsonl");
        let counts = Arc::new(Counts::default());
        let out = OpenOptions::new().create(true).append(true).open(&path).unwrap();
        let mut lines =
            Lines { path: path.clone(), max_bytes: u64::MAX, out, size: 0, line: Vec::new(), counts };
        // One line's worth of spans whose JSON is five times the limit.
        let spans = wide(9, &"\u{1}".repeat(3500));
        lines.write_line(&spans);
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().count() >= 5 && text.lines().all(|l| l.len() <= LINE_LIMIT),
            "{}",
            text.lines().count()
        );
        assert_eq!(lines.counts.spans_written.load(Ordering::Relaxed), 1000);
    }

    #[test]
    fn spans_that_cannot_be_written_are_counted_with_the_error() {
        let writer = Writer::start(PathBuf::from("/dev/full"), u64::MAX).unwrap();
        let counts = writer.counts();
        writer.write(trace(1, "a"));
        writer.write(trace(2, "a"));
        writer.close();
        let stats = counts.get();
        assert_eq!((stats.spans_written, stats.spans_not_written), (0, 6), "{stats:?}");
        assert!(stats.error.as_deref().is_some_and(|e| e.starts_with("/dev/full: ")), "{stats:?}");
    }
}
