//! Property tests: any valid configuration survives a round trip through
//! TOML, and any environment override lands on its key.

use std::path::PathBuf;

use proc_daemon::config::{
    MAX_LOG_FILE_SIZE, MAX_LOG_FILES, MAX_MEMORY_POOL_SIZE, MAX_TIMEOUT_MS, MAX_WORKER_THREADS,
    Source,
};
use proc_daemon::{Config, LogLevel};
use proptest::prelude::*;

fn path() -> impl Strategy<Value = Option<PathBuf>> {
    proptest::option::of("/[a-z0-9_.-]{1,12}(/[a-z0-9_. -]{1,12}){0,3}".prop_map(PathBuf::from))
}

prop_compose! {
    fn valid_config()(
        name in "\\PC{1,24}".prop_filter("not blank", |s| !s.trim().is_empty()),
        pid_file in path(),
        work_dir in path(),
        log_file in path(),
        hot_reload in any::<bool>(),
        level in proptest::sample::select(LogLevel::ALL.to_vec()),
        flags in proptest::collection::vec(any::<bool>(), 9),
        max_file_size in 1..=MAX_LOG_FILE_SIZE,
        max_files in 1..=MAX_LOG_FILES,
        // Three stages in order, each within the bound.
        stages in proptest::array::uniform3(1..=MAX_TIMEOUT_MS),
        worker_threads in 0..=MAX_WORKER_THREADS,
        memory_pool_size in 0..=MAX_MEMORY_POOL_SIZE,
        metrics_interval in 1..=MAX_TIMEOUT_MS,
        health_interval in 1..=MAX_TIMEOUT_MS,
    ) -> Config {
        let mut c = Config::default();
        c.name = name;
        c.pid_file = pid_file;
        c.work_dir = work_dir;
        c.hot_reload = hot_reload;
        c.logging.level = level;
        c.logging.json = flags[0];
        c.logging.color = flags[1];
        c.logging.file = log_file;
        c.logging.max_file_size = max_file_size;
        c.logging.max_files = max_files;
        let mut stages = stages;
        stages.sort_unstable();
        c.shutdown.timeout_ms = stages[0];
        c.shutdown.force_timeout_ms = stages[1];
        c.shutdown.kill_timeout_ms = stages[2];
        c.performance.worker_threads = worker_threads;
        c.performance.thread_pinning = flags[2];
        c.performance.memory_pool_size = memory_pool_size;
        c.performance.numa_aware = flags[3];
        c.performance.lock_free = flags[4];
        c.monitoring.enable_metrics = flags[5];
        c.monitoring.metrics_interval_ms = metrics_interval;
        c.monitoring.track_resources = flags[6];
        c.monitoring.health_checks = flags[7];
        c.monitoring.health_check_interval_ms = health_interval;
        c
    }
}

/// Loads a TOML document through a real file, with no environment.
fn load(text: &str) -> Result<Config, proc_daemon::ConfigError> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("daemon.toml");
    std::fs::write(&path, text).expect("write");
    Config::builder().file(&path).ignore_env().build()
}

/// The dotted keys and values of a config, as its TOML document has them.
fn flat_keys(config: &Config) -> Vec<(String, toml::Value)> {
    let table: toml::Table = toml::from_str(&config.to_toml_string().unwrap()).unwrap();
    let mut keys = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(section) => {
                keys.extend(section.into_iter().map(|(k, v)| (format!("{key}.{k}"), v)))
            }
            value => keys.push((key, value)),
        }
    }
    keys
}

fn env_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => panic!("unexpected value in config TOML: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_valid_config_round_trips_through_toml(config in valid_config()) {
        config.validate().unwrap();
        let text = config.to_toml_string().unwrap();
        let loaded = load(&text).unwrap();
        prop_assert_eq!(loaded, config);
    }

    #[test]
    fn any_env_override_lands_on_its_key(
        config in valid_config(),
        chosen in proptest::collection::vec(any::<bool>(), 32),
    ) {
        // A random subset of keys is overridden through the environment. The
        // three shutdown stages go together, since setting one alone can
        // contradict the defaults of the others.
        let keys = flat_keys(&config);
        let take_shutdown = chosen[31];
        let subset: Vec<&(String, toml::Value)> = keys
            .iter()
            .enumerate()
            .filter(|(i, (key, _))| {
                if key.starts_with("shutdown.") { take_shutdown } else { chosen[*i % 31] }
            })
            .map(|(_, kv)| kv)
            .collect();

        let vars: Vec<(String, String)> = subset
            .iter()
            .map(|(key, value)| {
                (format!("DAEMON_{}", key.replace('.', "_").to_uppercase()), env_text(value))
            })
            .collect();
        let explained = Config::builder().env_vars(vars.clone()).explain().unwrap();

        // The same keys written to a file give the same config...
        let mut expected_doc = toml::Table::new();
        for (key, value) in &subset {
            match key.split_once('.') {
                None => { expected_doc.insert(key.clone(), value.clone()); }
                Some((section, name)) => {
                    expected_doc
                        .entry(section)
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                        .as_table_mut()
                        .unwrap()
                        .insert(name.to_owned(), value.clone());
                }
            }
        }
        let expected = load(&toml::to_string(&expected_doc).unwrap()).unwrap();
        prop_assert_eq!(explained.config(), &expected);

        // ...and each chosen key says it came from its variable.
        for ((key, _), (var, _)) in subset.iter().zip(&vars) {
            prop_assert_eq!(
                explained.source_of(key),
                Some(&Source::Env { var: var.clone() })
            );
        }
    }
}
