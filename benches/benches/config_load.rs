//! Loading the reference `daemon.toml`: proc-daemon's full load (read,
//! parse with spans, apply to the schema, derive, validate) side by side
//! with the floor, a plain `toml` parse of the same text into a table.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench config_load
//! ```
//!
//! `config_read` compares the two ways the loader gets a file's bytes, a
//! read (the default) and a memory map (`mmap-config`), each followed by
//! the same UTF-8 check and the same parse with spans
//! (`toml::de::DeTable`), on generated 4 KiB and 4 MiB files. The feature
//! is chosen at compile time, so the two loaders cannot run in one
//! binary; these rows time the step the feature changes, in one run. (The
//! loader itself refuses files above 1 MiB, `MAX_CONFIG_FILE_BYTES`; the
//! 4 MiB row shows where a map would start to pay.)

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use proc_daemon::Config;

const REFERENCE_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/daemon.toml");

fn config_load(c: &mut Criterion) {
    let text = std::fs::read_to_string(REFERENCE_TOML).expect("examples/daemon.toml");
    let mut group = c.benchmark_group("config_load");
    group.bench_function("proc_daemon_load_from_file", |b| {
        b.iter(|| {
            Config::builder()
                .file(black_box(REFERENCE_TOML))
                .ignore_env()
                .build()
                .expect("valid")
        })
    });
    group.bench_function("toml_read_and_parse_table", |b| {
        b.iter(|| {
            let text = std::fs::read_to_string(black_box(REFERENCE_TOML)).expect("read");
            toml::from_str::<toml::Table>(&text).expect("valid")
        })
    });
    group.bench_function("toml_parse_table_only", |b| {
        b.iter(|| toml::from_str::<toml::Table>(black_box(&text)).expect("valid"))
    });
    group.finish();
}

/// A TOML file of about `bytes` bytes: one table of string keys.
fn generated(dir: &std::path::Path, bytes: usize) -> std::path::PathBuf {
    let mut text = String::from("[generated]\n");
    let mut n = 0;
    while text.len() < bytes {
        text.push_str(&format!(
            "key_{n:07} = \"value number {n:07} of the generated file\"\n"
        ));
        n += 1;
    }
    let path = dir.join(format!("generated-{bytes}.toml"));
    std::fs::write(&path, text).expect("write the generated file");
    path
}

fn parse(bytes: &[u8]) -> usize {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    toml::de::DeTable::parse(text)
        .expect("valid")
        .get_ref()
        .len()
}

fn config_read(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("config-read-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let mut group = c.benchmark_group("config_read");
    for (label, bytes) in [("4KiB", 4 * 1024), ("4MiB", 4 * 1024 * 1024)] {
        let path = generated(&dir, bytes);
        group.bench_function(format!("read_{label}"), |b| {
            b.iter(|| parse(&std::fs::read(black_box(&path)).expect("read")))
        });
        group.bench_function(format!("mmap_{label}"), |b| {
            b.iter(|| {
                let file = std::fs::File::open(black_box(&path)).expect("open");
                // SAFETY: a private read-only map of a file this bench
                // wrote and nothing else changes.
                let map = unsafe { memmap2::Mmap::map(&file) }.expect("map");
                parse(&map)
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, config_load, config_read);
criterion_main!(benches);
