//! Reading trace files: the latest traces from the end, block by block, or one trace by id;
//! a file that is one JSON document (a saved Jaeger answer) read whole.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::rotated;
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
            seen.push(String::from_utf8(text).unwrap());
        }
        assert_eq!(seen, ["last", long.as_str(), "first"], "empty lines are skipped");
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
