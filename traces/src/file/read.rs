//! Reading trace files: the latest traces from the end, block by block, or one trace by id;
//! a file that is one JSON document (a saved Jaeger answer) parsed as it is read. Lines are
//! read in bounded pieces: one longer than [`LINE_LIMIT`] (no writer writes one) is skipped
//! without being held, and counted; in a stream (a pipe, a device), which may never end, the
//! reader gives up on it.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{LINE_LIMIT, rotated};
use crate::model::{Span, TraceId};
use crate::trace::{Dedup, Trace};
use crate::wire::otlp;

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
    /// A stream that is neither lines of OTLP JSON nor one JSON document.
    #[error("{path}: neither lines of OTLP JSON nor one JSON document")]
    NotTraces {
        /// The file.
        path: PathBuf,
    },
    /// A stream with a line no trace file has.
    #[error(
        "{path}: a line longer than {} MiB: not a trace file (its lines are {} MiB at most)",
        LINE_LIMIT >> 20,
        LINE_LIMIT >> 20
    )]
    LineTooLong {
        /// The file.
        path: PathBuf,
    },
}

/// A single JSON document (a saved Jaeger answer) is read up to this size.
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
    /// Lines that were not OTLP JSON (those too long included).
    pub unreadable: usize,
    /// Of those, lines longer than [`LINE_LIMIT`], skipped unread.
    pub too_long: usize,
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
/// current one holds too few), oldest first; read from the end, block by block (a stream, which
/// has no end to read from, is read through).
///
/// # Errors
/// The file cannot be read, or it is a stream with a line longer than [`LINE_LIMIT`].
pub fn read_latest(path: &Path, limit: usize, keep: Filter<'_>) -> Result<FileTraces, ReadError> {
    let io = |source| ReadError::Io { path: path.to_path_buf(), source };
    let mut collected = Collected::default();
    let stream = match open(path)? {
        Opened::Document(spans) => {
            collected.add(spans, keep);
            return Ok(FileTraces { traces: collected.into_latest(limit), ..FileTraces::default() });
        }
        Opened::Lines { stream } => stream,
    };
    let mut read = FileTraces::default();
    if let Some(mut stream) = stream {
        while let Some(line) = stream.next_line().map_err(io)? {
            let Line::Text(text) = line else {
                return Err(ReadError::LineTooLong { path: path.to_path_buf() });
            };
            match serde_json::from_slice::<serde_json::Value>(text) {
                Ok(document) => collected.add(otlp::from_json(&document), keep),
                Err(_) => read.unreadable += 1,
            }
        }
        read.traces = collected.into_latest(limit);
        return Ok(read);
    }
    let mut files = vec![path.to_path_buf()];
    let older = rotated(path);
    if older.exists() {
        files.push(older);
    }
    for file in files {
        let mut lines = BackwardLines::open(&file).map_err(io)?;
        while let Some(line) = lines.next_line().map_err(io)? {
            let document = match line {
                Line::Text(text) => serde_json::from_slice::<serde_json::Value>(text).ok(),
                Line::TooLong => {
                    read.too_long += 1;
                    None
                }
            };
            let Some(document) = document else {
                read.unreadable += 1;
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
    read.traces = collected.into_latest(limit);
    Ok(read)
}

/// Trace `id` from `path` (and its rotated-out part): only lines that name it are parsed.
///
/// # Errors
/// The file cannot be read, or it is a stream with a line longer than [`LINE_LIMIT`].
pub fn read_trace(path: &Path, id: TraceId) -> Result<Option<Trace>, ReadError> {
    let io = |source| ReadError::Io { path: path.to_path_buf(), source };
    let stream = match open(path)? {
        Opened::Document(spans) => return Ok(Trace::group(spans).into_iter().find(|t| t.id == id)),
        Opened::Lines { stream } => stream,
    };
    let needle = id.to_string();
    let (mut trace, mut seen) = (Trace::empty(id), Dedup::default());
    let mut take = |text: &[u8]| {
        if memchr::memmem::find(text, needle.as_bytes()).is_none() {
            return;
        }
        if let Ok(document) = serde_json::from_slice::<serde_json::Value>(text) {
            for span in otlp::from_json(&document).into_iter().filter(|s| s.trace_id == id) {
                if seen.admit(&span) {
                    trace.spans.push(Arc::new(span));
                }
            }
        }
    };
    match stream {
        Some(mut stream) => {
            while let Some(line) = stream.next_line().map_err(io)? {
                let Line::Text(text) = line else {
                    return Err(ReadError::LineTooLong { path: path.to_path_buf() });
                };
                take(text);
            }
        }
        None => {
            let older = rotated(path);
            for file in [older.as_path(), path] {
                if file != path && !file.exists() {
                    continue;
                }
                let mut lines =
                    ForwardLines::new(BufReader::with_capacity(1 << 20, File::open(file).map_err(io)?));
                while let Some(line) = lines.next_line().map_err(io)? {
                    if let Line::Text(text) = line {
                        take(text);
                    }
                }
            }
        }
    }
    Ok((!trace.spans.is_empty()).then_some(trace))
}

/// A stream's lines: its first line, read already, then the rest.
type Stream = io::Chain<io::Cursor<Vec<u8>>, BufReader<File>>;

/// A file opened for reading, as what it turned out to be.
enum Opened {
    /// One JSON document, read whole: its spans.
    Document(Vec<Span>),
    /// Lines: a file to read from its end, or a stream to read through (its first line
    /// included).
    Lines {
        /// The stream, if it is one.
        stream: Option<ForwardLines<Stream>>,
    },
}

/// Opens `path` and tells a file of lines from one JSON document (a saved Jaeger answer, pretty
/// or not): lines begin with a line that is JSON (or blank); a document is parsed as it is read,
/// up to [`DOCUMENT_LIMIT`]. Neither holds more than a line, or the document, in memory.
fn open(path: &Path) -> Result<Opened, ReadError> {
    let io = |source| ReadError::Io { path: path.to_path_buf(), source };
    let mut file = File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    let regular = metadata.is_file();
    let mut reader = BufReader::with_capacity(1 << 20, file.try_clone().map_err(io)?);
    let mut first = Vec::new();
    (&mut reader).take(LINE_LIMIT as u64 + 1).read_until(b'\n', &mut first).map_err(io)?;
    let whole = first.len() <= LINE_LIMIT;
    let lines = whole
        && (first.iter().all(u8::is_ascii_whitespace)
            || serde_json::from_slice::<serde_json::Value>(&first).is_ok());
    // A file too large to be one document is read as lines.
    let may_be_document = !regular || metadata.len() <= DOCUMENT_LIMIT;
    if !lines && may_be_document {
        let document = if regular {
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            serde_json::from_reader::<_, serde_json::Value>(BufReader::new(file.take(DOCUMENT_LIMIT)))
        } else {
            let rest = io::Cursor::new(std::mem::take(&mut first)).chain(reader);
            // What the attempt read is gone: a stream gets one reading.
            let path = path.to_path_buf();
            return match serde_json::from_reader::<_, serde_json::Value>(rest.take(DOCUMENT_LIMIT)) {
                Ok(document) => Ok(Opened::Document(otlp::from_json(&document))),
                Err(_) if whole => Err(ReadError::NotTraces { path }),
                Err(_) => Err(ReadError::LineTooLong { path }),
            };
        };
        if let Ok(document) = document {
            return Ok(Opened::Document(otlp::from_json(&document)));
        }
    }
    let stream = (!regular).then(|| ForwardLines::new(io::Cursor::new(first).chain(reader)));
    Ok(Opened::Lines { stream })
}

/// One line read.
enum Line<'a> {
    /// Its bytes.
    Text(&'a [u8]),
    /// Longer than [`LINE_LIMIT`]: skipped.
    TooLong,
}

/// Lines read forward in bounded pieces; empty lines are skipped.
struct ForwardLines<R> {
    reader: R,
    line: Vec<u8>,
}

impl<R: BufRead> ForwardLines<R> {
    fn new(reader: R) -> Self {
        Self { reader, line: Vec::new() }
    }

    fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            self.line.clear();
            let mut overlong = false;
            let mut ended = false;
            loop {
                let available = self.reader.fill_buf()?;
                if available.is_empty() {
                    ended = true;
                    break;
                }
                let (piece, found) = match memchr::memchr(b'\n', available) {
                    Some(at) => (&available[..at], true),
                    None => (available, false),
                };
                if !overlong && self.line.len() + piece.len() > LINE_LIMIT {
                    overlong = true;
                    self.line = Vec::new();
                }
                if !overlong {
                    self.line.extend_from_slice(piece);
                }
                let used = piece.len() + usize::from(found);
                self.reader.consume(used);
                if found {
                    break;
                }
            }
            if overlong {
                return Ok(Some(Line::TooLong));
            }
            if !self.line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(Line::Text(&self.line)));
            }
            if ended {
                return Ok(None);
            }
        }
    }
}

/// Lines of a file from the last to the first, read in blocks from the end; empty lines are
/// skipped; reading stops at `floor` (a byte offset) when it is set.
struct BackwardLines {
    file: File,
    /// Where the unread part of the file ends.
    position: u64,
    /// Read but not yet returned: the end of the unread part's last lines.
    buffer: Vec<u8>,
    /// The line returned last.
    line: Vec<u8>,
    /// The buffer's line started past the end of the buffer and was too long to keep.
    overlong: bool,
    /// Nothing before this offset is read (0: read to the start).
    floor: u64,
}

impl BackwardLines {
    fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let position = file.metadata()?.len();
        Ok(Self { file, position, buffer: Vec::new(), line: Vec::new(), overlong: false, floor: 0 })
    }

    fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            // A line is complete once a newline precedes it (or the file starts there).
            let trimmed = self.buffer.iter().rposition(|b| *b != b'\n').map_or(0, |i| i + 1);
            if let Some(newline) = self.buffer[..trimmed].iter().rposition(|b| *b == b'\n') {
                let text = self.take(newline + 1, trimmed);
                self.buffer.truncate(newline + 1);
                return Ok(Some(self.line(text)));
            }
            if self.position <= self.floor {
                if trimmed == 0 || self.floor > 0 {
                    // At the floor, a partial line is left unread.
                    return Ok(None);
                }
                let text = self.take(0, trimmed);
                self.buffer.clear();
                return Ok(Some(self.line(text)));
            }
            if self.buffer.len() > LINE_LIMIT {
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

    /// Takes `buffer[from..to]` as the next line; whether it is one to read.
    fn take(&mut self, from: usize, to: usize) -> bool {
        self.line.clear();
        if std::mem::take(&mut self.overlong) || to - from > LINE_LIMIT {
            return false;
        }
        self.line.extend_from_slice(&self.buffer[from..to]);
        true
    }

    fn line(&self, text: bool) -> Line<'_> {
        if text { Line::Text(&self.line) } else { Line::TooLong }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::file::tests::{temp, trace};

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
            seen.push(String::from_utf8(text.to_vec()).unwrap());
        }
        assert_eq!(seen, ["last", long.as_str(), "first"], "empty lines are skipped");
    }

    #[test]
    fn lines_past_the_limit_are_skipped_unheld_and_a_stream_of_one_is_given_up() {
        let dir = temp("overlong");
        let path = dir.join("traces.jsonl");
        let good = |n| otlp::to_json(&trace(n, "a")).to_string();
        let long = "x".repeat(LINE_LIMIT + 10);
        fs::write(&path, format!("{}\n{long}\n{}\n", good(1), good(2))).unwrap();
        let read = read_latest(&path, 5, &|_| true).unwrap();
        assert_eq!((read.traces.len(), read.unreadable, read.too_long), (2, 1, 1));
        assert_eq!(read_trace(&path, TraceId([2; 16])).unwrap().unwrap().spans.len(), 3);
        let mut forward = ForwardLines::new(BufReader::with_capacity(4096, File::open(&path).unwrap()));
        let mut seen = Vec::new();
        while let Some(line) = forward.next_line().unwrap() {
            seen.push(matches!(line, Line::Text(_)));
            assert!(forward.line.capacity() <= LINE_LIMIT + 4096, "held {}", forward.line.capacity());
        }
        assert_eq!(seen, [true, false, true]);
        let mut garbage = std::process::Command::new("sh")
            .args(["-c", "echo not a trace"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pipe =
            format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(garbage.stdout.as_ref().unwrap()));
        let err = read_latest(Path::new(&pipe), 5, &|_| true).unwrap_err();
        assert!(matches!(err, ReadError::NotTraces { .. }), "{err}");
        garbage.wait().unwrap();
        // A stream that never ends its line.
        for reading in [
            read_latest(Path::new("/dev/zero"), 5, &|_| true).err(),
            read_trace(Path::new("/dev/zero"), TraceId([1; 16])).err(),
        ] {
            let err = reading.unwrap().to_string();
            assert_eq!(
                err,
                "/dev/zero: a line longer than 4 MiB: not a trace file (its lines are 4 MiB at most)"
            );
        }
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
}
