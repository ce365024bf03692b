//! The documentation's links hold: every relative link in `README.md` and `docs/` names a file
//! of the repository that exists, and none leaves it (a user's clone has nothing beside it).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "tests and benchmarks: a panic is the failure message"
)]

use std::path::{Component, Path, PathBuf};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository")
}

fn markdown_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            markdown_files(&path, into);
        } else if path.extension().is_some_and(|ext| ext == "md") {
            into.push(path);
        }
    }
}

/// The targets of `[text](target)` links outside fenced code blocks.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                targets.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    targets
}

/// `path` with `.` and `..` resolved without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[test]
fn every_relative_link_names_a_file_of_the_repository() {
    let repo = repository();
    let mut files = vec![repo.join("README.md")];
    markdown_files(&repo.join("docs"), &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a readable page");
        for target in link_targets(&text) {
            if target.starts_with("http://")
                || target.starts_with("https://")
                || target.starts_with('#')
                || target.starts_with("mailto:")
            {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            let resolved = normalise(&file.parent().expect("a directory").join(path));
            if !resolved.starts_with(&repo) || !resolved.exists() {
                broken.push(format!(
                    "{}: {target}",
                    file.strip_prefix(&repo).unwrap_or(file).display()
                ));
            }
        }
    }
    assert!(files.len() > 10, "found the pages: {files:?}");
    assert!(
        broken.is_empty(),
        "links that leave the repository or name nothing:\n{}",
        broken.join("\n")
    );
}

#[test]
fn links_are_found_outside_code_only() {
    let text = "see [a](a.md) and [b](../b.md#x)\n```\n[c](c.md)\n```\n[d](https://x)";
    assert_eq!(link_targets(text), ["a.md", "../b.md#x", "https://x"]);
}
