//! `docs/architecture.md` says which room may import which; this holds the code to it.
//!
//! Each top-level module under `src/` is a room. A room's imports are the `crate::<room>`
//! paths written in its files (comments aside), `use crate::{a, b}` groups included. The
//! rules come from the table in `docs/architecture.md` (the "May import" column), so the
//! document and the code cannot drift apart: a new import the table does not allow, a
//! room the table does not list, or a table row for a room that no longer exists fails.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The rooms: `src/<name>/` and `src/<name>.rs`, except the crate roots and the binaries.
fn rooms() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(root().join("src")).expect("src/") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).expect("name");
        if matches!(name, "lib" | "main" | "bin") {
            continue;
        }
        if path.is_dir() || path.extension().is_some_and(|e| e == "rs") {
            out.insert(name.to_owned());
        }
    }
    out
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("dir") {
            rust_files(&entry.expect("entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_owned());
    }
}

/// The rooms named by `crate::…` paths in `text`, comments left out.
fn imports_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            // `iap_sidecar::crate::` cannot occur; `$crate::` (macros) names this crate too.
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a::b, c}`: the first segment of every item at depth 0.
                let mut depth = 0;
                let mut item_start = true;
                for (j, ch) in group.char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' if depth == 0 => {
                            rest = &group[j..];
                            break;
                        }
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                            let name: String = group[j..]
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                                .collect();
                            out.insert(name);
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        }
    }
    out
}

/// Which rooms each room imports, as written in the code.
fn code_graph(rooms: &BTreeSet<String>) -> Graph {
    let mut graph = Graph::new();
    for room in rooms {
        let mut files = Vec::new();
        let dir = root().join("src").join(room);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(root().join("src").join(format!("{room}.rs")));
        }
        let mut deps = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("source");
            deps.extend(
                imports_in(&text)
                    .into_iter()
                    .filter(|d| d != room && rooms.contains(d)),
            );
        }
        graph.insert(room.clone(), deps);
    }
    graph
}

/// The "May import" column of the rooms table: rows `| `room` | … | `a`, `b` |`.
fn documented_rules() -> Graph {
    let text =
        std::fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md");
    let mut rules = Graph::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", room, holds, may import, ""
        if cells.len() != 5 || !cells[1].starts_with('`') {
            continue;
        }
        let room = cells[1]
            .trim_matches('`')
            .trim_end_matches('/')
            .trim_end_matches(".rs")
            .to_owned();
        let allowed = cells[3]
            .split('`')
            .skip(1)
            .step_by(2)
            .map(|s| s.trim_end_matches('/').trim_end_matches(".rs").to_owned())
            .collect();
        assert!(
            rules.insert(room.clone(), allowed).is_none(),
            "docs/architecture.md lists `{room}` twice"
        );
    }
    assert!(!rules.is_empty(), "no rooms table in docs/architecture.md");
    rules
}

#[test]
fn every_room_imports_only_what_docs_architecture_allows() {
    let rooms = rooms();
    let rules = documented_rules();
    let documented: BTreeSet<String> = rules.keys().cloned().collect();
    assert_eq!(
        documented, rooms,
        "the rooms table of docs/architecture.md and the folders under src/ differ"
    );
    let mut broken = Vec::new();
    for (room, deps) in code_graph(&rooms) {
        for dep in deps.difference(&rules[&room]) {
            broken.push(format!("{room} imports {dep}"));
        }
    }
    assert!(
        broken.is_empty(),
        "imports docs/architecture.md does not allow:\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn no_cycles_between_rooms() {
    let graph = code_graph(&rooms());
    // Depth-first search with colours; a grey room reached again closes a cycle.
    fn visit<'a>(
        room: &'a str,
        graph: &'a Graph,
        colour: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match colour.get(room) {
            Some(2) => return None,
            Some(1) => {
                let start = path.iter().position(|r| *r == room).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].iter().map(|r| r.to_string()).collect();
                cycle.push(room.to_owned());
                return Some(cycle);
            }
            _ => {}
        }
        colour.insert(room, 1);
        path.push(room);
        for dep in &graph[room] {
            if let Some(cycle) = visit(dep, graph, colour, path) {
                return Some(cycle);
            }
        }
        path.pop();
        colour.insert(room, 2);
        None
    }
    let mut colour = BTreeMap::new();
    for room in graph.keys() {
        if let Some(cycle) = visit(room, &graph, &mut colour, &mut Vec::new()) {
            panic!("rooms import each other: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_database_library_stays_in_store() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let outside: Vec<String> = files
        .iter()
        .filter(|f| {
            let rel = f.strip_prefix(root().join("src")).expect("under src");
            // The SQLite baseline of the benchmarks measures raw SQLite on purpose.
            !rel.starts_with("store") && !rel.starts_with("bin/sqlite_baseline.rs")
        })
        .filter(|f| {
            std::fs::read_to_string(f)
                .expect("source")
                .lines()
                .any(|l| !l.trim_start().starts_with("//") && l.contains("diesel"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(outside.is_empty(), "diesel outside src/store/: {outside:?}");
}

#[test]
fn the_import_reader_sees_groups_and_skips_comments() {
    let found = imports_in(
        "use crate::{ledger::{Credits, Id}, store::Store};\n\
         // crate::portal in a comment\n\
         let x = crate::config::Settings::default(); // crate::cli\n",
    );
    let expected: BTreeSet<String> = ["config", "ledger", "store"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, expected);
}
