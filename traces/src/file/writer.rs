//! The background writer of a run's trace file: lines queued without blocking, written on a
//! thread of their own, the file rotated past its cap.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use super::rotated;
use crate::model::Span;
use crate::wire::otlp;

/// Bytes of lines waiting for the writer at most; past it lines are dropped and counted.
const QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// Spans per line at most: a huge trace is written as several lines (readers join them).
const LINE_SPANS: usize = 1000;

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
