//! `cargo xtask check-cycles`: the modules of `src/` must not import each
//! other in a circle.
//!
//! Why: a cycle means two rooms that cannot be understood, tested or
//! changed apart, and every feature added on top of one of them drags the
//! other along. The layers should read config, then error, then the daemon
//! modules, with no arrow running back up (docs/architecture.md).
//!
//! How: every `crate::` path outside comments is an arrow from the file's
//! top-level module (`src/config/file.rs` belongs to `config`) to the module
//! it names. A name the crate root re-exports (`crate::Error`, from
//! `pub use error::{..}` in `src/lib.rs`) counts as its module. The strongly
//! connected components of that graph with more than one module are the
//! cycles; each is printed with the lines that make its arrows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One arrow: from a module to another, and where it comes from.
#[derive(Debug, Clone)]
struct Arrow {
    to: String,
    at: String,
}

/// Runs the check over `<root>/src`; `Err` lists the cycles.
pub(crate) fn check(root: &Path) -> Result<(), String> {
    let src = root.join("src");
    let files = rust_files(&src)?;
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|file| module_of(&src, file))
        .collect();
    let lib = std::fs::read_to_string(src.join("lib.rs"))
        .map_err(|err| format!("read src/lib.rs: {err}"))?;
    let reexports = root_reexports(&lib, &modules);

    let mut arrows: BTreeMap<String, Vec<Arrow>> = BTreeMap::new();
    for file in &files {
        let Some(from) = module_of(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file)
            .map_err(|err| format!("read {}: {err}", file.display()))?;
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        for (line, name) in crate_paths(&text) {
            let to = if modules.contains(&name) {
                name
            } else if let Some(module) = reexports.get(&name) {
                module.clone()
            } else {
                continue;
            };
            if to != from {
                arrows.entry(from.clone()).or_default().push(Arrow {
                    to,
                    at: format!("{shown}:{line}"),
                });
            }
        }
    }

    let cycles = strongly_connected(&modules, &arrows);
    if cycles.is_empty() {
        println!(
            "xtask: no import cycle among the {} modules of src/",
            modules.len()
        );
        return Ok(());
    }
    let mut report = String::new();
    for cycle in &cycles {
        report.push_str(&format!(
            "cycle: {}\n",
            cycle.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
        for from in cycle {
            let mut seen = BTreeSet::new();
            for arrow in arrows.get(from).into_iter().flatten() {
                if cycle.contains(&arrow.to) && seen.insert(arrow.to.clone()) {
                    report.push_str(&format!("  {from} -> {} ({})\n", arrow.to, arrow.at));
                }
            }
        }
    }
    Err(format!(
        "{} import cycle(s) in src/:\n{report}",
        cycles.len()
    ))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|err| format!("read {}: {err}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|err| err.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The top-level module a file belongs to; `None` for the crate root.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_owned())
}

/// The root's `pub use module::{A, B}` and `pub use module::A`: each name
/// and the module it comes from.
fn root_reexports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';');
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        if !modules.contains(module) {
            continue;
        }
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            let name = item.rsplit(" as ").next().unwrap_or(item);
            let name = name.rsplit("::").next().unwrap_or(name).trim();
            if !name.is_empty() {
                names.insert(name.to_owned(), module.to_owned());
            }
        }
    }
    names
}

/// The first segment of every `crate::` path outside comments, with its
/// line: `crate::config::Source` gives `config`; `crate::{Error, lock::lock}`
/// gives `Error` and `lock`.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    // Comment lines are blanked, so that offsets still give line numbers.
    let code: String = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                String::new()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let line_at = |offset: usize| code[..offset].matches('\n').count() + 1;
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at;
        // `proc_daemon_crate::` or `$crate::` are not this crate's paths.
        let before = code[..start].chars().next_back();
        from = start + "crate::".len();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = ident(item.trim());
                if !name.is_empty() {
                    found.push((line_at(start), name));
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.push((line_at(start), name));
            }
        }
    }
    found
}

/// The strongly connected components with more than one module (Tarjan).
fn strongly_connected(
    modules: &BTreeSet<String>,
    arrows: &BTreeMap<String, Vec<Arrow>>,
) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        arrows: &'a BTreeMap<String, Vec<Arrow>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        next: usize,
        components: Vec<BTreeSet<String>>,
    }

    fn visit(state: &mut State<'_>, module: &str) {
        state.index.insert(module.to_owned(), state.next);
        state.low.insert(module.to_owned(), state.next);
        state.next += 1;
        state.stack.push(module.to_owned());
        state.on_stack.insert(module.to_owned());
        let targets: Vec<String> = state
            .arrows
            .get(module)
            .into_iter()
            .flatten()
            .map(|arrow| arrow.to.clone())
            .collect();
        for to in targets {
            if !state.index.contains_key(&to) {
                visit(state, &to);
                let low = state.low[module].min(state.low[&to]);
                state.low.insert(module.to_owned(), low);
            } else if state.on_stack.contains(&to) {
                let low = state.low[module].min(state.index[&to]);
                state.low.insert(module.to_owned(), low);
            }
        }
        if state.low[module] == state.index[module] {
            let mut component = BTreeSet::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(&top);
                let done = top == module;
                component.insert(top);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                state.components.push(component);
            }
        }
    }

    let mut state = State {
        arrows,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        components: Vec::new(),
    };
    for module in modules {
        if !state.index.contains_key(module) {
            visit(&mut state, module);
        }
    }
    state.components
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_groups_and_comments() {
        let text = "use crate::config::Source;\n// crate::daemon::X\nuse crate::{Error, lock::lock};\nlet x = $crate::y;\n";
        let found = crate_paths(text);
        assert_eq!(
            found,
            vec![
                (1, "config".to_owned()),
                (3, "Error".to_owned()),
                (3, "lock".to_owned())
            ]
        );
    }

    #[test]
    fn a_cycle_is_found_and_a_chain_is_not() {
        let modules: BTreeSet<String> = ["a", "b", "c", "d"].map(String::from).into();
        let arrow = |to: &str| Arrow {
            to: to.to_owned(),
            at: String::new(),
        };
        let mut arrows = BTreeMap::new();
        arrows.insert("a".to_owned(), vec![arrow("b")]);
        arrows.insert("b".to_owned(), vec![arrow("c")]);
        assert!(strongly_connected(&modules, &arrows).is_empty());
        arrows.insert("c".to_owned(), vec![arrow("a")]);
        let cycles = strongly_connected(&modules, &arrows);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0], ["a", "b", "c"].map(String::from).into());
    }

    #[test]
    fn root_reexports_map_names_to_modules() {
        let modules: BTreeSet<String> = ["error", "config"].map(String::from).into();
        let names = root_reexports(
            "pub use error::{Error, Result};\npub use config::Config;\npub use other::X;\n",
            &modules,
        );
        assert_eq!(names["Error"], "error");
        assert_eq!(names["Config"], "config");
        assert!(!names.contains_key("X"));
    }
}
