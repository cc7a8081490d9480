//! The container image's build, checked without a Docker engine: the Dockerfile copies the whole context, and
//! `.dockerignore` keeps out nothing the build reads. The build reads the manifest, the build script, the
//! benchmarks' files (the manifest names them), and whatever the code embeds (`include_str!`,
//! `include_bytes!`, rust-embed's `#[folder]`); the test finds the last by reading `src/`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The string literal that starts right after `marker` on `line`, if any.
fn literal_after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = &rest[rest.find('"')? + 1..];
    Some(&rest[..rest.find('"')?])
}

/// Every path under the crate root that compiling the binary reads, relative to the root.
fn paths_the_build_reads() -> Vec<String> {
    let root = root();
    let mut read = vec!["Cargo.toml".to_owned(), "Cargo.lock".to_owned(), "build.rs".to_owned(), "src".to_owned()];
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for line in manifest.lines() {
        if let Some(name) = line.strip_prefix("name = \"").and_then(|l| l.strip_suffix('"'))
            && root.join("benches").join(format!("{name}.rs")).exists()
        {
            read.push(format!("benches/{name}.rs"));
        }
    }
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            for marker in ["include_str!(", "include_bytes!("] {
                if let Some(rel) = literal_after(line, marker) {
                    let target = file.parent().unwrap().join(rel);
                    let target = std::fs::canonicalize(&target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
                    read.push(
                        target.strip_prefix(std::fs::canonicalize(&root).unwrap()).unwrap().display().to_string(),
                    );
                }
            }
            if let Some(folder) = literal_after(line, "#[folder =") {
                read.push(folder.trim_end_matches('/').to_owned());
            }
        }
    }
    read
}

#[test]
fn the_image_build_copies_everything_the_build_reads() {
    let read = paths_the_build_reads();
    for expected in ["config/hookplane.example.toml", "docs/runbook.md", "assets"] {
        assert!(read.iter().any(|p| p == expected), "the scan finds {expected}: {read:?}");
    }
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let patterns: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for pattern in &patterns {
        assert!(
            !pattern.contains(['*', '?', '[', '!']),
            "`{pattern}`: keep .dockerignore to plain paths, so this test can tell what it keeps out"
        );
        let pattern = pattern.trim_matches('/');
        for path in &read {
            let kept_out =
                path == pattern || path.starts_with(&format!("{pattern}/")) || pattern.starts_with(&format!("{path}/"));
            assert!(!kept_out, ".dockerignore keeps out `{pattern}`, but the build reads `{path}`");
        }
    }

    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = dockerfile.lines().map(str::trim).collect();
    assert!(lines.contains(&"COPY . ."), "the build stage copies the whole context");
    assert!(lines.contains(&"USER nonroot"), "the image runs as a user without privileges");
    assert!(lines.contains(&"VOLUME [\"/data\"]"), "the data directory is a volume");
    assert!(
        dockerfile.contains("HEALTHCHECK")
            && dockerfile.contains("CMD [\"/usr/local/bin/hookplane\", \"healthcheck\"]"),
        "the image checks its health with the binary itself"
    );
}
