//! The benches' machine-readable results: criterion's files under
//! `CRITERION_HOME`, and the JSON files the bench binaries write with
//! `--json`. Never their printed text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Everything the benches of one run produced.
#[derive(Debug)]
pub(crate) struct Results {
    dir: PathBuf,
    /// Criterion's median per element, in nanoseconds, by full id
    /// (`group/function`).
    criterion: BTreeMap<String, f64>,
    /// A bench binary's JSON, by the name it was written under.
    json: BTreeMap<String, Value>,
}

impl Results {
    /// Results kept under `dir`.
    pub(crate) fn new(dir: &Path) -> Results {
        Results {
            dir: dir.to_path_buf(),
            criterion: BTreeMap::new(),
            json: BTreeMap::new(),
        }
    }

    /// Where criterion keeps its files for this run.
    pub(crate) fn criterion_home(&self) -> PathBuf {
        self.dir.join("criterion")
    }

    /// Where a bench binary writes the JSON named `name`.
    pub(crate) fn json_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Reads every criterion benchmark under [`criterion_home`](Self::criterion_home):
    /// each `new/benchmark.json` (the id and the throughput) with the
    /// `new/estimates.json` beside it (the median).
    pub(crate) fn load_criterion(&mut self) -> Result<(), String> {
        let home = self.criterion_home();
        let mut found = Vec::new();
        find_files(&home, "benchmark.json", &mut found)?;
        for path in found {
            let dir = path.parent().expect("a file has a parent");
            if dir.file_name().and_then(|n| n.to_str()) != Some("new") {
                continue;
            }
            let benchmark = read_json(&path)?;
            let estimates = read_json(&dir.join("estimates.json"))?;
            let id = benchmark["full_id"]
                .as_str()
                .ok_or_else(|| format!("{}: no full_id", path.display()))?;
            let median = estimates["median"]["point_estimate"]
                .as_f64()
                .ok_or_else(|| format!("{}: no median", dir.display()))?;
            let elements = match &benchmark["throughput"] {
                Value::Null => 1.0,
                throughput => throughput["Elements"].as_f64().ok_or_else(|| {
                    format!("{}: a throughput other than Elements", path.display())
                })?,
            };
            self.criterion.insert(id.to_owned(), median / elements);
        }
        Ok(())
    }

    /// Reads the JSON a bench binary wrote under `name`.
    pub(crate) fn load_json(&mut self, name: &str) -> Result<(), String> {
        let value = read_json(&self.json_path(name))?;
        self.json.insert(name.to_owned(), value);
        Ok(())
    }

    /// The median time per element of criterion benchmark `id`, in ns.
    pub(crate) fn ns(&self, id: &str) -> Result<f64, String> {
        self.criterion
            .get(id)
            .copied()
            .ok_or_else(|| format!("no criterion result for {id:?} (did its bench run?)"))
    }

    /// The JSON a bench binary wrote under `name`.
    pub(crate) fn json(&self, name: &str) -> Result<&Value, String> {
        self.json
            .get(name)
            .ok_or_else(|| format!("no results named {name:?} (did its bench run?)"))
    }
}

/// A number at `pointer` (a JSON pointer such as `/exit/upstream/median_us`)
/// in `value`, or an error naming what is missing.
pub(crate) fn number(value: &Value, pointer: &str) -> Result<f64, String> {
    value
        .pointer(pointer)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("the results have no number at {pointer}"))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("reading {}: {err}", path.display()))?;
    serde_json::from_str(&text).map_err(|err| format!("parsing {}: {err}", path.display()))
}

fn find_files(dir: &Path, name: &str, found: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|err| format!("reading {}: {err}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|err| format!("reading {}: {err}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            find_files(&path, name, found)?;
        } else if path.file_name().and_then(|n| n.to_str()) == Some(name) {
            found.push(path);
        }
    }
    Ok(())
}
