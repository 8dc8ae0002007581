//! Project automation, run as `cargo xtask <command>` (the alias is in
//! `.cargo/config.toml`).
//!
//! ```text
//! cargo xtask perf-report                         # full run; rewrites docs/PERFORMANCE.md
//! cargo xtask perf-report --quick --out perf.md   # a few minutes; writes perf.md
//! cargo xtask perf-report --only actors,idle_spin --out perf.md
//! cargo xtask check-cycles                        # src/ has no import cycle
//! ```
//!
//! `perf-report` runs the benches of `benches/`, reads their
//! machine-readable results (criterion's `estimates.json` and
//! `benchmark.json`, and the JSON the bench binaries write with `--json`),
//! and rewrites the tables of docs/PERFORMANCE.md between
//! `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED -->` markers.
//! The prose outside the markers is left as it is. Every table is stamped
//! with the date, the CPU, the core count and the peers' versions.
//!
//! Why a generator: a figure typed into the docs by hand goes stale or
//! wrong without anyone noticing. These tables can only say what the
//! benches measured, and anyone can regenerate them with one command.

mod cycles;
mod markers;
mod plot;
mod report;
mod results;
mod stamp;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use results::Results;

/// How long and how often each bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Short runs: checks that the command and every bench still work.
    Quick,
    /// The run whose figures go into the docs.
    Full,
}

/// What `perf-report` was asked to do.
#[derive(Debug)]
struct Options {
    mode: Mode,
    out: Option<PathBuf>,
    only: Option<Vec<String>>,
}

const USAGE: &str = "usage: cargo xtask check-cycles
       cargo xtask perf-report [--quick] [--out FILE] [--only SECTION,...]

  --quick        run each bench briefly (a few minutes in all); the figures
                 are for checking that the command works, not for the docs,
                 so --quick needs --out
  --out FILE     write the report to FILE instead of docs/PERFORMANCE.md
  --only LIST    run only these sections (comma-separated); the others keep
                 what the document already has. Sections: ";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("perf-report") => perf_report(parse_options(&args[1..])?),
        Some("check-cycles") => cycles::check(&workspace_root()),
        Some("--help" | "-h") | None => {
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{USAGE}{}", report::SECTIONS.join(", "));
            Ok(())
        }
        Some(other) => Err(format!(
            "unknown command {other:?}\n{USAGE}{}",
            report::SECTIONS.join(", ")
        )),
    }
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        mode: Mode::Full,
        out: None,
        only: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => options.mode = Mode::Quick,
            "--out" => {
                let path = args.next().ok_or("--out needs a file name")?;
                options.out = Some(PathBuf::from(path));
            }
            "--only" => {
                let list = args.next().ok_or("--only needs a list of sections")?;
                let sections: Vec<String> = list.split(',').map(str::to_owned).collect();
                for section in &sections {
                    if !report::SECTIONS.contains(&section.as_str()) {
                        return Err(format!(
                            "--only: unknown section {section:?}; the sections are {}",
                            report::SECTIONS.join(", ")
                        ));
                    }
                }
                options.only = Some(sections);
            }
            other => {
                return Err(format!(
                    "unknown option {other:?}\n{USAGE}{}",
                    report::SECTIONS.join(", ")
                ));
            }
        }
    }
    if options.mode == Mode::Quick && options.out.is_none() {
        return Err(
            "--quick figures do not go into docs/PERFORMANCE.md (the docs carry a full run's); \
             give --out FILE"
                .to_owned(),
        );
    }
    Ok(options)
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn perf_report(options: Options) -> Result<(), String> {
    let root = workspace_root();
    let template_path = root.join("docs/PERFORMANCE.md");
    let template = std::fs::read_to_string(&template_path)
        .map_err(|err| format!("reading {}: {err}", template_path.display()))?;
    // Check the markers before spending time on the benches.
    let present = markers::section_names(&template)?;
    for section in report::SECTIONS {
        if !present.iter().any(|name| name == section) {
            return Err(format!(
                "{} has no `<!-- BEGIN GENERATED: {section} -->` marker",
                template_path.display()
            ));
        }
    }
    for name in &present {
        if !report::SECTIONS.contains(&name.as_str()) {
            return Err(format!(
                "{} has a generated section {name:?} that perf-report does not know",
                template_path.display()
            ));
        }
    }

    let mode_name = match options.mode {
        Mode::Quick => "quick",
        Mode::Full => "full",
    };
    let results_dir = root.join("target/perf-report").join(mode_name);
    if results_dir.exists() {
        std::fs::remove_dir_all(&results_dir)
            .map_err(|err| format!("clearing {}: {err}", results_dir.display()))?;
    }
    std::fs::create_dir_all(&results_dir)
        .map_err(|err| format!("creating {}: {err}", results_dir.display()))?;

    let selected: Vec<&str> = report::SECTIONS
        .iter()
        .copied()
        .filter(|s| {
            options
                .only
                .as_ref()
                .is_none_or(|only| only.iter().any(|o| o == s))
        })
        .collect();

    step("building the benches", || {
        cargo(
            &root,
            &["bench", "-p", "proc-daemon-benches", "--no-run"],
            &[],
        )
    })?;
    let runner = report::Runner {
        root: &root,
        mode: options.mode,
    };
    let mut results = Results::new(&results_dir);
    for bench in report::benches_for(&selected) {
        step(&format!("bench {}", bench.name), || {
            runner.run(&bench, &mut results)
        })?;
    }

    let stamp = stamp::Stamp::collect(&root, options.mode)?;
    let mut document = template;
    for section in &selected {
        let table = report::render(section, &results, &stamp)
            .map_err(|err| format!("section {section}: {err}"))?;
        document = markers::replace(&document, section, &table)?;
    }
    // The README's performance summary is the targets table, and only a
    // full run that rewrites docs/PERFORMANCE.md rewrites it.
    let summary = match (&options.out, selected.contains(&"targets")) {
        (None, true) => {
            let readme_path = root.join("README.md");
            let readme = std::fs::read_to_string(&readme_path)
                .map_err(|err| format!("reading {}: {err}", readme_path.display()))?;
            let targets = report::render("targets", &results, &stamp)
                .map_err(|err| format!("section targets: {err}"))?;
            Some((
                readme_path.clone(),
                markers::replace(&readme, "targets", &targets)?,
            ))
        }
        _ => None,
    };
    let out = options.out.unwrap_or(template_path);
    std::fs::write(&out, document).map_err(|err| format!("writing {}: {err}", out.display()))?;
    if let Some((readme_path, readme)) = summary {
        std::fs::write(&readme_path, readme)
            .map_err(|err| format!("writing {}: {err}", readme_path.display()))?;
        println!("xtask: wrote {}", readme_path.display());
    }
    if selected.contains(&"scaling") {
        // Beside the report, which links to it by its file name.
        let plot = out.with_file_name("scaling.svg");
        let svg = report::scaling_svg(&results).map_err(|err| format!("section scaling: {err}"))?;
        std::fs::write(&plot, svg).map_err(|err| format!("writing {}: {err}", plot.display()))?;
        println!("xtask: wrote {}", plot.display());
    }
    println!(
        "xtask: wrote {} ({} run; sections: {})",
        out.display(),
        mode_name,
        selected.join(", ")
    );
    Ok(())
}

/// Runs `f`, printing its name and how long it took.
fn step<T>(name: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    println!("xtask: {name} ...");
    let started = std::time::Instant::now();
    let value = f()?;
    println!(
        "xtask: {name}: done in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(value)
}

/// Runs `cargo` with `args` in `root`, with extra environment variables;
/// its output goes to this process's.
fn cargo(root: &Path, args: &[&str], env: &[(&str, &Path)]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(&cargo);
    command.args(args).current_dir(root);
    for (key, value) in env {
        command.env(key, value);
    }
    let status = command
        .status()
        .map_err(|err| format!("running {cargo}: {err}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed: {status}", args.join(" ")))
    }
}
