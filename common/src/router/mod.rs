//! Local routing: Istio's own `VirtualService` and `DestinationRule` YAML, applied by a service
//! to its outbound calls where no sidecar does it (the local stack).
//!
//! The same files steer traffic under Istio and in `bookinfo up --routes`: HTTP rules matched
//! in order on headers (`exact`, `prefix`, RE2 `regex` full match, presence `{}`), path and
//! method; weighted destinations by subset, subsets mapped to `version` labels; fault delays and
//! aborts; route timeouts. What is not acted on locally is listed as ignored when the files are
//! loaded. [`RouteTable::route`] is a pure function of a call's method, path and headers.

pub mod istio;
mod table;

use std::path::{Path, PathBuf};

pub use self::table::{Decision, RouteTable};

/// `BOOKINFO_ROUTES`: comma-separated Istio YAML files applied to outbound calls.
pub const BOOKINFO_ROUTES: &str = "BOOKINFO_ROUTES";

/// Why routing files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// A file is not valid Istio YAML.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
}

/// Loads `paths` into one table; also returns what they ask for that is ignored locally.
///
/// # Errors
/// A file that cannot be read, is not YAML, or holds an invalid resource.
pub fn load(paths: &[PathBuf]) -> Result<(RouteTable, Vec<String>), RouteError> {
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|source| RouteError::Read { path: path.clone(), source })?;
        files.push((path.clone(), text));
    }
    let refs: Vec<(&Path, &str)> = files.iter().map(|(p, t)| (p.as_path(), t.as_str())).collect();
    RouteTable::parse(&refs)
}
