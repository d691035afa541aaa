//! The documentation's links: every relative link of the README and of `docs/` reaches a file of
//! the repository and, where it names one, a heading of that file; the README stays a front door.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The README and every page of `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages
}

/// The targets of a page's inline links (`[text](target)`), outside code blocks.
fn links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            if let Some(end) = rest.find(')') {
                links.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    links
}

/// GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).unwrap();
    let mut in_code = false;
    let mut anchors = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            anchors.push(anchor(line.trim_start_matches('#')));
        }
    }
    anchors
}

#[test]
fn every_relative_link_of_the_docs_reaches_a_file_and_its_heading() {
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for link in links(&text) {
            if link.starts_with("http://") || link.starts_with("https://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            assert!(target.exists(), "{}: {link} leads nowhere", page.display());
            if !fragment.is_empty() {
                assert!(
                    anchors(&target).iter().any(|a| a == fragment),
                    "{}: {link}: no such heading in {}",
                    page.display(),
                    target.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} links found: the scan is broken");
}

#[test]
fn the_readme_is_a_front_door_that_leads_to_every_page_of_docs() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= 200, "the README has {lines} lines: reference belongs in docs/");
    for page in pages().iter().skip(1) {
        let name = page.file_name().unwrap().to_str().unwrap();
        assert!(readme.contains(&format!("(docs/{name})")), "the README leads to docs/{name}");
    }
    // The two commands of a fresh machine.
    assert!(readme.contains("cargo run ") && readme.contains("cargo test --workspace"));
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(anchor(" The `bookinfo` command"), "the-bookinfo-command");
    assert_eq!(anchor(" Reading and comparing traces"), "reading-and-comparing-traces");
    assert_eq!(links("see [a](b.md#c) and [d](e.md)\n```\n[x](y)\n```"), ["b.md#c", "e.md"]);
}
