//! Trace files: one OTLP JSON export request per line, as `bookinfo up` writes them.
//!
//! Each run of the stack writes its own file, in a run directory of its own ([`Run`]), which
//! it holds locked while it runs, so that no other run's start prunes it; the file is written
//! through a background thread ([`Writer`]), capped and rotated (`traces.jsonl`, then
//! `traces.1.jsonl`), so a run never takes more than twice the cap on disk. Readers
//! ([`read_latest`], [`read_trace`]) take the latest traces from the end of a file without
//! loading it whole, and give up on lines no writer writes ([`LINE_LIMIT`]).

mod read;
mod writer;

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bookinfo_config::Source;

pub use self::read::{FileTraces, Filter, ReadError, read_latest, read_trace};
pub use self::writer::{LINE_LIMIT, Writer, WriterCounts, WriterStats};

/// `BOOKINFO_RUNS_DIR`: where run directories are made (default: `bookinfo/runs` in the XDG
/// state directory, `~/.local/state`).
pub const RUNS_DIR: &str = "BOOKINFO_RUNS_DIR";
/// The file of a run, in its directory.
pub const FILE_NAME: &str = "traces.jsonl";
/// The file a running run holds locked, in its directory.
const LOCK_NAME: &str = "running.lock";
/// Run directories kept; older ones that no stack runs in are removed when a new run starts.
const RUNS_KEPT: usize = 10;

/// Where run directories go, as `source` says: `$BOOKINFO_RUNS_DIR`, else
/// `$XDG_STATE_HOME/bookinfo/runs`, else `~/.local/state/bookinfo/runs`, else `bookinfo-runs` in
/// the temporary directory ([`temp_dir`]).
pub fn runs_root(source: &(impl Source + ?Sized)) -> PathBuf {
    let var = |name: &str| source.get(name).map(PathBuf::from);
    if let Some(dir) = var(RUNS_DIR) {
        return dir;
    }
    match (var("XDG_STATE_HOME"), var("HOME")) {
        (Some(state), _) => state.join("bookinfo/runs"),
        (None, Some(home)) => home.join(".local/state/bookinfo/runs"),
        (None, None) => temp_dir(source).join("bookinfo-runs"),
    }
}

/// The temporary directory `source` names: `$TMPDIR`, else `/tmp` (what `std::env::temp_dir`
/// answers on Unix, read from the source instead of the process environment).
pub fn temp_dir(source: &(impl Source + ?Sized)) -> PathBuf {
    source.get("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

/// A run directory this process writes in, locked for as long as the value lives (and the
/// lock goes with the process, however it ends).
#[derive(Debug)]
pub struct Run {
    dir: PathBuf,
    /// Held locked.
    _lock: File,
}

impl Run {
    /// Makes a new run directory under `root` (named after the time and this process) and
    /// locks it, then removes the oldest runs beyond the last ten that no stack runs in.
    ///
    /// # Errors
    /// The directory or its lock cannot be made.
    pub fn create(root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root)?;
        let stamp = crate::time::rfc3339_seconds(SystemTime::now()).replace(':', "");
        let dir = root.join(format!("{stamp}-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        // Locked before its file exists: a run without a file is never pruned, so no start
        // in between can take it for a finished one.
        let lock = File::create(dir.join(LOCK_NAME))?;
        lock.lock()?;
        prune(root);
        Ok(Self { dir, _lock: lock })
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its trace file.
    pub fn file(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Removes the run, as a start that failed does: it never becomes the latest.
    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Every run under `root` (a directory with a trace file), oldest first.
fn runs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root) else { return Vec::new() };
    let mut runs: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.join(FILE_NAME).exists()).collect();
    runs.sort();
    runs
}

/// Whether a stack runs in `run` now (holds its lock). One that cannot be told is taken for a
/// running one: nothing is removed on a guess.
fn is_running(run: &Path) -> bool {
    match File::open(run.join(LOCK_NAME)) {
        Err(err) => err.kind() != io::ErrorKind::NotFound,
        Ok(lock) => match lock.try_lock() {
            Ok(()) => false,
            Err(TryLockError::WouldBlock | TryLockError::Error(_)) => true,
        },
    }
}

fn prune(root: &Path) {
    let runs = runs(root);
    let excess = runs.len().saturating_sub(RUNS_KEPT - 1);
    for old in runs.iter().filter(|run| !is_running(run)).take(excess) {
        // A failure only leaves it on disk.
        let _ = fs::remove_dir_all(old);
    }
}

/// The trace file of the newest run under `root` that holds traces or in which a stack runs
/// (a start that failed, even killed, leaves neither), if any.
pub fn latest_run_file(root: &Path) -> Option<PathBuf> {
    readable_runs(root).pop().map(|run| run.dir.join(FILE_NAME))
}

/// A run a trace can be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    /// Its directory (its name says when it started, and `up`'s pid).
    pub dir: PathBuf,
    /// Whether a stack runs in it now.
    pub running: bool,
}

/// The runs under `root` that hold traces or in which a stack runs, oldest first: those
/// `bookinfo traces` reads (a start that failed, even killed, is neither).
pub fn readable_runs(root: &Path) -> Vec<RunDir> {
    let holds_traces = |run: &Path| {
        fs::metadata(run.join(FILE_NAME)).is_ok_and(|m| m.len() > 0) || rotated(&run.join(FILE_NAME)).exists()
    };
    runs(root)
        .into_iter()
        .filter_map(|dir| {
            let running = is_running(&dir);
            (running || holds_traces(&dir)).then_some(RunDir { dir, running })
        })
        .collect()
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

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::tests::span;
    use crate::model::{Kind, Span, TraceId};

    /// A fresh directory for test `name`.
    pub(super) fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bookinfo-file-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Trace `n`: three spans of `service`.
    pub(super) fn trace(n: u8, service: &str) -> Vec<Arc<Span>> {
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
    fn the_writer_rotates_and_readers_take_the_latest() {
        let dir = temp("rotate");
        let path = dir.join(FILE_NAME);
        let writer = Writer::start(path.clone(), 4096).unwrap();
        for n in 1..=40 {
            writer.write(trace(n, if n % 2 == 0 { "even" } else { "odd" }));
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
    fn the_runs_directory_is_the_variables_choice_in_order() {
        let all = [("BOOKINFO_RUNS_DIR", "/runs"), ("XDG_STATE_HOME", "/state"), ("HOME", "/home/u")];
        assert_eq!(runs_root(&all), PathBuf::from("/runs"));
        assert_eq!(runs_root(&all[1..]), PathBuf::from("/state/bookinfo/runs"));
        assert_eq!(runs_root(&all[2..]), PathBuf::from("/home/u/.local/state/bookinfo/runs"));
        let empty = [("BOOKINFO_RUNS_DIR", ""), ("HOME", "/home/u")];
        assert_eq!(runs_root(&empty), PathBuf::from("/home/u/.local/state/bookinfo/runs"), "empty is unset");
        assert_eq!(runs_root(&[("TMPDIR", "/scratch")]), PathBuf::from("/scratch/bookinfo-runs"));
        assert_eq!(runs_root(&[("OTHER", "x")]), PathBuf::from("/tmp/bookinfo-runs"));
    }

    #[test]
    fn runs_get_their_own_directories_and_old_ones_go_but_never_a_running_one() {
        let root = temp("runs");
        let mut held = Vec::new();
        for n in 0..12 {
            let dir = root.join(format!("2026-11-{:02}T000000Z-1", n + 1));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(FILE_NAME), "x\n").unwrap();
            // The oldest two are running: locked, as a live run's is.
            if n < 2 {
                let lock = File::create(dir.join(LOCK_NAME)).unwrap();
                lock.lock().unwrap();
                held.push(lock);
            }
        }
        // flock locks belong to the open file: one opened again in this process is told apart.
        let fresh = Run::create(&root).unwrap();
        let mut left: Vec<String> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left.len(), RUNS_KEPT, "the two running, seven finished and the new one: {left:?}");
        assert_eq!(
            left[..3],
            ["2026-11-01T000000Z-1", "2026-11-02T000000Z-1", "2026-11-06T000000Z-1"],
            "{left:?}"
        );
        fs::write(fresh.file(), "").unwrap();
        assert_eq!(latest_run_file(&root), Some(fresh.file()), "running, though empty");
        fresh.discard();
        assert_eq!(latest_run_file(&root), Some(root.join("2026-11-12T000000Z-1").join(FILE_NAME)));
        // A run that failed to start and was killed: finished, empty, never the latest.
        let failed = root.join("2026-11-13T000000Z-1");
        fs::create_dir_all(&failed).unwrap();
        fs::write(failed.join(FILE_NAME), "").unwrap();
        File::create(failed.join(LOCK_NAME)).unwrap();
        assert_eq!(latest_run_file(&root), Some(root.join("2026-11-12T000000Z-1").join(FILE_NAME)));
        drop(held);
    }
}
