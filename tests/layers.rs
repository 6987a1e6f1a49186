//! The house has one direction: every `crate::` path in `src/` names a module of the same layer or
//! of a layer below it, as `layers.txt` orders them (lowest first). A new top-level module must be
//! placed in `layers.txt` before it compiles into a green CI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The layers, lowest first.
fn layers() -> Vec<String> {
    std::fs::read_to_string(Path::new(ROOT).join("layers.txt"))
        .expect("layers.txt")
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file's code names through `crate::`, with the line of each (comments
/// and doc links do not count).
fn crate_paths(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = &rest[..at];
            rest = &rest[at + "crate::".len()..];
            if before.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                        found.push((name.to_owned(), n + 1));
                    }
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.push((name, n + 1));
                }
            }
        }
    }
    found
}

/// Every `crate::` path that points up a layer: (file:line, from, to).
fn upward_edges(files: &BTreeMap<String, (String, String)>, layers: &[String]) -> Vec<String> {
    let rank = |m: &str| layers.iter().position(|l| l == m);
    let mut up = Vec::new();
    for (file, (module, text)) in files {
        let Some(from) = rank(module) else { continue };
        for (target, line) in crate_paths(text) {
            if target == *module {
                continue;
            }
            match rank(&target) {
                Some(to) if to <= from => {}
                Some(_) => up.push(format!("{file}:{line}: {module} -> {target}")),
                // Root re-exports (`crate::Config`) and macros are not modules of ours.
                None => {}
            }
        }
    }
    up
}

#[test]
fn every_import_points_down_the_layers() {
    let layers = layers();
    let src = Path::new(ROOT).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    let mut files = BTreeMap::new();
    let mut unplaced = Vec::new();
    for path in paths {
        let rel = path.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a component").as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        if !layers.contains(&module) {
            unplaced.push(module.clone());
        }
        let text = std::fs::read_to_string(&path).expect("readable source");
        files.insert(rel.display().to_string(), (module, text));
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(unplaced.is_empty(), "top-level modules missing from layers.txt: {unplaced:?}");
    let up = upward_edges(&files, &layers);
    assert!(up.is_empty(), "imports that point up a layer (layers.txt, lowest first):\n{}", up.join("\n"));
}

#[test]
fn an_upward_import_is_found() {
    let layers: Vec<String> = ["model", "domain", "gateway"].map(String::from).to_vec();
    let mut files = BTreeMap::new();
    files.insert(
        "domain/tickets.rs".to_owned(),
        ("domain".to_owned(), "use crate::model::ids::TicketId;\n// crate::gateway in a comment\nuse crate::{gateway::registry, model};\n".to_owned()),
    );
    let up = upward_edges(&files, &layers);
    assert_eq!(up, vec!["domain/tickets.rs:3: domain -> gateway".to_owned()]);
}
