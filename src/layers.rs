//! Keeps the house: every `crate::` path in `src/` must be one the layer table in `docs/architecture.md`
//! allows, the table must have no cycles (a cycle is allowed only inside one folder), every folder must be
//! in it, and the inner layers must not name an adapter crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Crates that do I/O or belong to a particular edge; the pure layers name none of them.
const ADAPTERS: [&str; 8] = ["poem", "redb", "tantivy", "apalis", "maud", "reqwest", "hyper", "tokio"];
const PURE: [&str; 4] = ["domain", "connectors", "secrets", "hex"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Layer → the layers it may use, as the table in `docs/architecture.md` says: rows whose first cell is a
/// `src/…` path, whose last cell lists layers in backticks (or `—`).
fn table() -> BTreeMap<String, BTreeSet<String>> {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).unwrap();
    let mut layers = BTreeMap::new();
    for line in doc.lines().filter(|l| l.starts_with("| `src/")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let name = cells[0].trim_matches('`').trim_start_matches("src/").trim_end_matches(".rs").to_owned();
        let may_use = cells[cells.len() - 1].split('`').skip(1).step_by(2).map(str::to_owned).collect();
        assert!(layers.insert(name.clone(), may_use).is_none(), "`{name}` has two rows in the layer table");
    }
    assert!(layers.len() > 10, "the layer table in docs/architecture.md was not found");
    layers
}

/// The layer a source file belongs to: its folder under `src/`, or its own name for a file at the top.
fn layer_of(path: &Path) -> String {
    let rel = path.strip_prefix(root().join("src")).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_owned()
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layers a line names through `crate::`, comments aside; a group (`crate::{a::X, b}`) names each of
/// its top-level paths. A group split over several lines is read by [`grouped`].
fn named(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let ident = |s: &str| s.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut out = Vec::new();
    for (i, m) in code.match_indices("crate::") {
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i + m.len()..];
        match rest.strip_prefix('{') {
            Some(group) => out.extend(top_level(group).iter().map(|p| ident(p))),
            None => out.push(ident(rest)),
        }
    }
    out.retain(|n| !n.is_empty() && n != "self");
    out
}

/// The comma-separated paths at the top level of a group's text, up to its closing brace.
fn top_level(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0usize, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                parts.push(&group[start..i]);
                return parts;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&group[start..]);
    parts
}

/// The layers named by `use crate::{` groups that rustfmt split over several lines.
fn grouped(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (n, line) in lines.iter().enumerate() {
        if line.trim_end().ends_with("crate::{") {
            let rest: Vec<&str> = lines[n + 1..].iter().map(|l| l.split("//").next().unwrap_or("")).collect();
            let joined = rest.join(" ");
            for p in top_level(&joined) {
                let name: String = p.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != "self" {
                    out.push((n, name));
                }
            }
        }
    }
    out
}

#[test]
fn every_import_points_inward_as_the_layer_table_says() {
    let layers = table();
    let mut files = Vec::new();
    sources(&root().join("src"), &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let layer = layer_of(&file);
        if ["lib", "main", "layers"].contains(&layer.as_str()) {
            continue;
        }
        let Some(allowed) = layers.get(&layer) else {
            wrong.push(format!(
                "{} is in `{layer}`, which the layer table does not list",
                file.strip_prefix(root()).unwrap_or(&file).display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        let split = grouped(&text);
        for (n, line) in text.lines().enumerate() {
            let more = split.iter().filter(|(at, _)| *at == n).map(|(_, name)| name.clone());
            for used in named(line).into_iter().chain(more) {
                if used != layer && !allowed.contains(&used) {
                    wrong.push(format!(
                        "{}:{}: `{layer}` may not use `{used}`: {}",
                        file.strip_prefix(root()).unwrap_or(&file).display(),
                        n + 1,
                        line.trim()
                    ));
                }
            }
            let trimmed = line.trim_start();
            if PURE.contains(&layer.as_str()) && (trimmed.starts_with("use ") || trimmed.starts_with("pub use ")) {
                for adapter in ADAPTERS {
                    if trimmed.contains(&format!("{adapter}::")) {
                        wrong.push(format!(
                            "{}:{}: `{layer}` is pure and may not use `{adapter}`",
                            file.strip_prefix(root()).unwrap_or(&file).display(),
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "imports the layer table does not allow:\n{}", wrong.join("\n"));
}

#[test]
fn the_layer_table_has_no_cycles_and_names_only_layers() {
    let layers = table();
    for (layer, uses) in &layers {
        for used in uses {
            assert!(layers.contains_key(used), "`{layer}` may use `{used}`, which is not a layer");
        }
    }
    // Peel off layers whose every dependency is peeled already; whatever is left is on a cycle.
    let mut done = BTreeSet::new();
    while done.len() < layers.len() {
        let next: Vec<&String> = layers
            .iter()
            .filter(|(l, uses)| !done.contains(*l) && uses.iter().all(|u| done.contains(u)))
            .map(|(l, _)| l)
            .collect();
        assert!(
            !next.is_empty(),
            "the layer table has a cycle among {:?}",
            layers.keys().filter(|l| !done.contains(*l)).collect::<Vec<_>>()
        );
        done.extend(next.into_iter().cloned());
    }
}

#[test]
fn a_line_names_the_layers_of_its_crate_paths_only() {
    assert_eq!(named("use crate::storage::{Store, jobs};"), ["storage"]);
    assert_eq!(named("    let k = crate::secrets::sha256(b); // crate::http is only mentioned"), ["secrets"]);
    assert_eq!(named("use hookplane::domain::Job; mycrate::x"), Vec::<String>::new());
    assert_eq!(named("use crate::{domain::{Job, Lease}, storage::jobs, self};"), ["domain", "storage"]);
    let split = "use crate::{\n    domain::{Job, JobState},\n    storage::{Store, jobs}, // crate::http\n};\nfn x() {}";
    assert_eq!(grouped(split), [(0, "domain".to_owned()), (0, "storage".to_owned())]);
}
