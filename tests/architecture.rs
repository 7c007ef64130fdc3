//! The module map of `docs/ARCHITECTURE.md`, checked against the source: which
//! top-level module may name which (`crate::x` paths and `use crate::{..}` lists in
//! code outside test modules), and that no two of them depend on each other, directly
//! or round a longer loop. A new import that breaks a rule fails here, naming the file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` (a file or a directory) and the files in it.
fn modules() -> BTreeMap<String, Vec<PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in fs::read_dir(&src).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if matches!(name.as_str(), "lib" | "bin" | "testutil") {
            continue;
        }
        let mut files = Vec::new();
        collect(&path, &mut files);
        out.insert(name, files);
    }
    out
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for e in fs::read_dir(path).unwrap().flatten() {
            collect(&e.path(), files);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        files.push(path.to_path_buf());
    }
}

/// The code of a file without its comments and its `#[cfg(test)] mod tests`.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => &text[..],
    };
    text.lines()
        .map(|l| match l.trim_start().starts_with("//") {
            true => "",
            false => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names.
fn named(code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let list = &list[..list.find('}').unwrap_or(list.len())];
            out.extend(list.split(',').map(|item| word(item.trim())));
        } else {
            out.insert(word(rest));
        }
    }
    out.retain(|m| known.contains(m));
    out
}

/// Who names whom, with one file for each edge (for the message).
fn graph() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let mods = modules();
    let known: BTreeSet<String> = mods.keys().cloned().collect();
    let mut g = BTreeMap::new();
    for (m, files) in &mods {
        let edges: &mut BTreeMap<String, PathBuf> = g.entry(m.clone()).or_default();
        for f in files {
            for n in named(&code(f), &known) {
                if n != *m {
                    edges.entry(n).or_insert_with(|| f.clone());
                }
            }
        }
    }
    g
}

/// The modules `from` reaches, following edges.
fn reach(g: &BTreeMap<String, BTreeMap<String, PathBuf>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(m) = todo.pop() {
        for n in g.get(&m).into_iter().flat_map(|e| e.keys()) {
            if seen.insert(n.clone()) {
                todo.push(n.clone());
            }
        }
    }
    seen
}

#[test]
fn no_two_top_level_modules_depend_on_each_other() {
    let g = graph();
    assert!(g.len() > 10, "the source was read: {:?}", g.keys());
    for (m, edges) in &g {
        for (n, file) in edges {
            assert!(
                !reach(&g, n).contains(m),
                "{m} names {n} ({}), and {n} leads back to {m}",
                file.display()
            );
        }
    }
}

#[test]
fn each_module_names_only_what_the_map_allows() {
    let g = graph();
    let may = |m: &str, allowed: &[&str]| {
        for (n, file) in g.get(m).into_iter().flatten() {
            assert!(
                allowed.contains(&n.as_str()),
                "{m} may not name {n}, but {} does",
                file.display()
            );
        }
    };
    may("sys", &[]);
    may("protocol", &["entry", "ioerror"]);
    may("sandbox", &["auth", "entry", "log", "random", "sys"]);
    may("auth", &["log", "random", "sys", "term"]);
    let server = g.get("server").expect("server is read");
    assert!(
        !server.contains_key("client"),
        "the server never names the client"
    );
    let client = g.get("client").expect("client is read");
    assert!(
        !client.contains_key("server"),
        "the client never names the server"
    );
}
