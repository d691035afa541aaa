//! docs/architecture.md against the workspace as `cargo metadata` sees it: every crate, its
//! directory and the crates it uses, one row each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// A crate's row: its directory and the workspace crates it uses (short names).
type Rows = BTreeMap<String, (String, BTreeSet<String>)>;

fn short(name: &str) -> String {
    name.strip_prefix("bookinfo-").unwrap_or(name).to_owned()
}

fn documented() -> Rows {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let page = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let mut rows = Rows::new();
    for line in page.lines().filter(|l| l.starts_with("| `bookinfo")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 4, "crate, directory, job, uses: {line}");
        assert!(!cells[2].is_empty(), "a job for {}", cells[0]);
        let uses = cells[3].split(',').map(str::trim).filter(|u| !u.is_empty()).map(str::to_owned).collect();
        let directory = cells[1].trim_matches('`').trim_end_matches('/').to_owned();
        rows.insert(cells[0].trim_matches('`').to_owned(), (directory, uses));
    }
    rows
}

fn actual() -> Rows {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--offline"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let members: BTreeSet<&str> = packages.iter().map(|p| p["name"].as_str().unwrap()).collect();
    let mut rows = Rows::new();
    for package in packages {
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
        let directory = manifest.parent().unwrap().strip_prefix(&root).unwrap().display().to_string();
        let directory = if directory.is_empty() { "src".to_owned() } else { directory };
        let uses = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"].is_null() && members.contains(d["name"].as_str().unwrap()))
            .map(|d| short(d["name"].as_str().unwrap()))
            .collect();
        rows.insert(package["name"].as_str().unwrap().to_owned(), (directory, uses));
    }
    rows
}

#[test]
fn the_architecture_page_names_every_crate_its_place_and_its_arrows() {
    let (documented, actual) = (documented(), actual());
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        actual.keys().collect::<Vec<_>>(),
        "the crates of docs/architecture.md"
    );
    for (name, row) in &actual {
        assert_eq!(&documented[name], row, "{name}: directory and uses in docs/architecture.md");
    }
}

#[test]
fn services_use_no_exporter_and_nothing_below_mesh_knows_it() {
    let actual = actual();
    for service in ["bookinfo-productpage", "bookinfo-details", "bookinfo-reviews", "bookinfo-ratings"] {
        let uses = &actual[service].1;
        assert!(!uses.contains("telemetry") && !uses.contains("mesh"), "{service} uses {uses:?}");
        assert!(
            !uses.iter().any(|u| ["productpage", "details", "reviews", "ratings"].contains(&u.as_str())),
            "{service}: no service crate uses another"
        );
    }
    for lower in
        ["bookinfo-http", "bookinfo-propagation", "bookinfo-config", "bookinfo-wire", "bookinfo-telemetry"]
    {
        assert!(!actual[lower].1.contains("mesh"), "{lower} knows nothing of the mesh");
    }
}
