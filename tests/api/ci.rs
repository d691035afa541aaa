//! A green `cargo test` means each test of this suite ran, but for the ignored ones, which need
//! a tool, a file or an engine a developer's machine may lack. CI runs those: each ignored test
//! says in its attribute which script runs it, and that script names it in exactly one
//! `cargo test ... --ignored FILTER...` command, so none is left out or run twice.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every ignored test of this suite: its path (`module::name`) and its reason.
fn ignored_tests() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join("tests/api")).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        if module == "main" || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines().map(str::trim);
        while let Some(line) = lines.next() {
            let Some(reason) = line.strip_prefix("#[ignore = \"").and_then(|r| r.strip_suffix("\"]")) else {
                assert!(
                    !line.starts_with("#[ignore"),
                    "{}: an ignore without a reason: {line}",
                    path.display()
                );
                continue;
            };
            let name = lines
                .find_map(|l| l.strip_prefix("async fn ").or_else(|| l.strip_prefix("fn ")))
                .and_then(|l| l.split('(').next())
                .unwrap_or_else(|| panic!("{}: no test after {line}", path.display()));
            found.push((format!("{module}::{name}"), reason.to_owned()));
        }
    }
    found
}

/// The filters of each `cargo test ... --ignored ...` command of `script`, one list per command.
fn ignored_runs(script: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(script).unwrap();
    let mut runs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        let Some((cargo, args)) = line.split_once(" -- ") else { continue };
        if !cargo.contains("cargo test") || !cargo.contains("--test api") || !args.contains("--ignored") {
            continue;
        }
        let mut filters = Vec::new();
        let mut words = args.split_whitespace();
        while let Some(word) = words.next() {
            match word {
                "--test-threads" => {
                    words.next();
                }
                flag if flag.starts_with('-') => {}
                filter => filters.push(filter.to_owned()),
            }
        }
        assert!(!filters.is_empty(), "{}: `{line}` runs every ignored test", script.display());
        runs.push(filters);
    }
    runs
}

#[test]
fn every_ignored_test_is_run_by_the_script_its_reason_names_in_one_command() {
    let scripts = [".ci/run", "k8s/test/image"];
    let runs: Vec<(&str, Vec<String>)> = scripts
        .iter()
        .flat_map(|script| ignored_runs(&root().join(script)).into_iter().map(move |run| (*script, run)))
        .collect();
    let tests = ignored_tests();
    assert!(tests.len() >= 20, "{tests:?}");
    for (test, reason) in &tests {
        let (need, by) = reason.rsplit_once(": ").unwrap_or_else(|| panic!("{test}: {reason:?}"));
        assert!(!need.is_empty(), "{test}: the reason says what it needs");
        let script = by.strip_suffix(" runs it").unwrap_or_else(|| panic!("{test}: {reason:?}"));
        let running: Vec<&str> = runs
            .iter()
            .filter(|(_, filters)| filters.iter().any(|f| test.contains(f.as_str())))
            .map(|(script, _)| *script)
            .collect();
        assert_eq!(running, [script], "{test} ({reason}): the commands that run it");
    }
    for (script, filters) in &runs {
        for filter in filters {
            assert!(
                tests.iter().any(|(t, _)| t.contains(filter.as_str())),
                "{script}: {filter} runs nothing"
            );
        }
    }
}
