//! Loading the reference `daemon.toml`: proc-daemon's full load (read,
//! parse with spans, apply to the schema, derive, validate) side by side
//! with the floor, a plain `toml` parse of the same text into a table.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench config_load
//! ```

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

criterion_group!(benches, config_load);
criterion_main!(benches);
