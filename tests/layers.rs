//! The imports between freshd's top-level modules have no cycles
//! (ARCHITECTURE.md, "Layers"; issue 14, "How it is shown").
//!
//! Each file under `src/` belongs to its top-level module (`src/jobs/http.rs`
//! to `jobs`, `src/paths.rs` to `paths`); it imports module `X` when it names
//! `crate::X` anywhere (a `use` or an inline path). Test code may import
//! anything, so files named `tests.rs`, files under a `tests/` directory and
//! everything from a `#[cfg(test)]` item on are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn the_top_level_modules_import_each_other_without_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(
        graph.contains_key("config") && graph.contains_key("jobs"),
        "the graph misses modules: {graph:?}"
    );
    if let Some(cycle) = cycle(&graph) {
        panic!(
            "the top-level modules import each other in a cycle: {}\n{}",
            cycle.join(" -> "),
            where_imported(&src, &cycle)
        );
    }
}

#[test]
fn the_check_finds_a_cycle_and_ignores_test_code() {
    let text = "use crate::b::X;\n#[cfg(test)]\nuse crate::d::Y;\nuse crate::{\n    a::Z,\n    e::{self, W}, f,\n};\n// crate::g\nfn f() { crate::c::g(\"}\"); }\n#[cfg(test)]\nmod tests {\n    use crate::d;\n    fn t() { let _ = \"{\"; }\n}\nfn h() { crate::h::i(); }\n";
    assert_eq!(
        imports(text, "a"),
        ["b", "c", "e", "f", "h"].map(String::from).into()
    );
    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph.entry(from.into()).or_default().insert(to.into());
    }
    assert_eq!(
        cycle(&graph),
        Some(["a", "b", "c", "a"].map(String::from).to_vec())
    );
    graph.get_mut("c").map(|to| to.remove("a"));
    assert_eq!(cycle(&graph), None);
}

/// Every production file under `src/`, with its top-level module.
fn files(src: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut dirs = vec![src.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("src is readable") {
            let path = entry.expect("src is readable").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if name != "tests" {
                    dirs.push(path);
                }
                continue;
            }
            if !name.ends_with(".rs") || name == "tests.rs" {
                continue;
            }
            let relative = path.strip_prefix(src).expect("under src");
            let first = relative
                .components()
                .next()
                .and_then(|c| c.as_os_str().to_str())
                .unwrap_or("");
            let module = first.trim_end_matches(".rs").to_owned();
            out.push((module, path));
        }
    }
    out.sort();
    out
}

/// The graph of imports between top-level modules; `lib.rs` and `main.rs`
/// (the crate root and the binary) are left out.
fn graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for (module, path) in files(src) {
        if module == "lib" || module == "main" {
            continue;
        }
        let text = fs::read_to_string(&path).expect("a source file is readable");
        graph
            .entry(module.clone())
            .or_default()
            .extend(imports(&text, &module));
    }
    graph
}

/// The top-level modules other than `module` that `text`, a file of
/// `module`, names as `crate::X` outside its test code and comments.
fn imports(text: &str, module: &str) -> BTreeSet<String> {
    let code: String = production(text)
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    {
        let mut rest = code.as_str();
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `freshd_crate::`
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.is_empty() {
                // `use crate::{a, b}`: each name in the braces.
                if let Some(group) = rest.strip_prefix('{') {
                    out.extend(
                        top_level_items(group)
                            .into_iter()
                            .filter(|name| name != module && name != "self"),
                    );
                }
                continue;
            }
            if name != module {
                out.insert(name);
            }
        }
    }
    out
}

/// The first name of each item of a `use` group, `a::{b, c}, d}` → a, d.
fn top_level_items(group: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = true;
    let mut name = String::new();
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && depth == 0 && (c.is_alphanumeric() || c == '_') => name.push(c),
            _ if start && !name.is_empty() => {
                out.push(std::mem::take(&mut name));
                start = false;
            }
            _ => {}
        }
    }
    if !name.is_empty() {
        out.push(name);
    }
    out
}

/// `text` without its `#[cfg(test)]` items (a test module, a test-only
/// `use` or function).
fn production(text: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        rest = &rest[at + MARK.len()..];
        rest = &rest[item_end(rest)..];
    }
    out.push_str(rest);
    out
}

/// Where the item at the start of `text` ends: after its first `;` if that
/// comes before any `{`, else after the `}` that closes its first `{`.
/// Braces in string and character literals do not count.
fn item_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b';' if depth == 0 => return i + 1,
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            b'"' => i = string_end(bytes, i),
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 2,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// The index of the `"` that closes the string opening at `start` (a raw
/// string `r#"…"#` ends at its `"#`).
fn string_end(bytes: &[u8], start: usize) -> usize {
    let hashes = bytes[..start]
        .iter()
        .rev()
        .take_while(|&&b| b == b'#')
        .count();
    let raw = bytes[..start - hashes].last() == Some(&b'r');
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if !raw => i += 1,
            b'"' if bytes[i + 1..].iter().take(hashes).all(|&b| b == b'#') => {
                return i + hashes;
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// A cycle in `graph`, as the modules along it with the first one again at
/// the end.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        graph: &Graph,
        node: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(node) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(node.to_owned(), Mark::Open);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(graph, next, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(node.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(graph, node, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

/// For each step of `cycle`, the files that make it.
fn where_imported(src: &Path, cycle: &[String]) -> String {
    let mut out = String::new();
    for step in cycle.windows(2) {
        let (from, to) = (&step[0], &step[1]);
        let files: Vec<String> = files(src)
            .into_iter()
            .filter(|(module, path)| {
                module == from
                    && fs::read_to_string(path)
                        .is_ok_and(|text| imports(&text, module).contains(to))
            })
            .map(|(_, path)| {
                path.strip_prefix(src)
                    .unwrap_or(&path)
                    .display()
                    .to_string()
            })
            .collect();
        out.push_str(&format!("  {from} -> {to}: {}\n", files.join(", ")));
    }
    out
}
