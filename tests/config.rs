//! Configuration: files, environment, builder, precedence and every bad input.
//!
//! The environment layer is injected with `env_vars` so that tests do not
//! race on the process environment; tests/config_explain.rs checks the real
//! process environment through the example binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use proc_daemon::config::Source;
use proc_daemon::{Config, ConfigError, ConfigProblem, ErrorKind, LogLevel};

const REFERENCE_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/daemon.toml");

/// A temporary TOML file, removed when dropped.
struct TempToml {
    dir: tempfile::TempDir,
}

impl TempToml {
    fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("create temp dir");
        std::fs::write(dir.path().join("daemon.toml"), text).expect("write config");
        TempToml { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("daemon.toml")
    }
}

fn no_env() -> [(&'static str, &'static str); 0] {
    []
}

/// Loads `text` as a file with no environment and returns the error.
fn file_error(text: &str) -> (ConfigError, PathBuf) {
    let file = TempToml::new(text);
    let err = Config::builder()
        .file(file.path())
        .env_vars(no_env())
        .build()
        .expect_err("the file should be rejected");
    let config_err = err;
    (config_err, file.path())
}

fn file_source(path: &Path, line: usize) -> Source {
    Source::File {
        path: path.to_owned(),
        line,
    }
}

#[test]
fn reference_daemon_toml_parses_to_exactly_its_values() {
    let config = Config::builder()
        .file(REFERENCE_TOML)
        .env_vars(no_env())
        .build()
        .unwrap();
    assert_eq!(config.name, "my-production-daemon");
    assert_eq!(config.logging.level, LogLevel::Info);
    assert!(!config.logging.json);
    assert!(config.logging.color);
    assert_eq!(
        config.logging.file.as_deref(),
        Some(Path::new("/var/log/my-daemon.log"))
    );
    assert_eq!(config.logging.max_file_size, 104_857_600);
    assert_eq!(config.logging.max_files, 5);
    assert_eq!(config.shutdown.timeout_ms, 30_000);
    assert_eq!(config.shutdown.force_timeout_ms, 45_000);
    assert_eq!(config.shutdown.kill_timeout_ms, 60_000);
    assert_eq!(config.performance.worker_threads, 0);
    assert!(!config.performance.thread_pinning);
    assert_eq!(config.performance.memory_pool_size, 1_048_576);
    assert!(!config.performance.numa_aware);
    assert!(config.performance.lock_free);
    assert!(config.monitoring.enable_metrics);
    assert_eq!(config.monitoring.metrics_interval_ms, 1000);
    assert!(config.monitoring.track_resources);
    assert!(config.monitoring.health_checks);
    assert_eq!(config.monitoring.health_check_interval_ms, 5000);
    assert_eq!(config.pid_file, None);
    assert_eq!(config.work_dir, None);
    assert!(!config.hot_reload);
}

#[test]
fn every_key_of_the_reference_file_is_attributed_to_its_line() {
    let explained = Config::builder()
        .file(REFERENCE_TOML)
        .env_vars(no_env())
        .explain()
        .unwrap();
    let path = Path::new(REFERENCE_TOML);
    for (key, line) in [
        ("name", 1),
        ("logging.level", 4),
        ("logging.max_files", 9),
        ("shutdown.timeout_ms", 12),
        ("shutdown.kill_timeout_ms", 14),
        ("performance.lock_free", 21),
        ("monitoring.health_check_interval_ms", 28),
    ] {
        assert_eq!(
            explained.source_of(key),
            Some(&file_source(path, line)),
            "{key}"
        );
    }
    assert_eq!(explained.source_of("pid_file"), Some(&Source::Default));
}

#[test]
fn a_complete_file_is_honoured_over_every_default() {
    let text = r#"
name = "complete"
pid_file = "/run/complete.pid"
work_dir = "/srv/complete"
hot_reload = true

[logging]
level = "trace"
json = true
color = false
file = "/tmp/complete.log"
max_file_size = 4096
max_files = 2

[shutdown]
timeout_ms = 1000
force_timeout_ms = 2000
kill_timeout_ms = 3000

[performance]
worker_threads = 3
thread_pinning = true
memory_pool_size = 0
numa_aware = true
lock_free = false
process_priority = 10

[monitoring]
enable_metrics = true
metrics_interval_ms = 250
track_resources = true
health_checks = false
health_check_interval_ms = 750
http_listen = "[::1]:9464"

[control]
socket = "/run/complete/control.sock"

[service]
notification_fd = 5
upgrade_timeout_ms = 7000
"#;
    let file = TempToml::new(text);
    let explained = Config::builder()
        .file(file.path())
        .env_vars(no_env())
        .explain()
        .unwrap();
    let config = explained.config();
    assert_eq!(config.name, "complete");
    assert_eq!(
        config.pid_file.as_deref(),
        Some(Path::new("/run/complete.pid"))
    );
    assert_eq!(config.work_dir.as_deref(), Some(Path::new("/srv/complete")));
    assert!(config.hot_reload);
    assert_eq!(config.logging.level, LogLevel::Trace);
    assert!(config.logging.json);
    assert!(!config.logging.color);
    assert_eq!(
        config.logging.file.as_deref(),
        Some(Path::new("/tmp/complete.log"))
    );
    assert_eq!(config.logging.max_file_size, 4096);
    assert_eq!(config.logging.max_files, 2);
    assert_eq!(config.shutdown.timeout_ms, 1000);
    assert_eq!(config.shutdown.force_timeout_ms, 2000);
    assert_eq!(config.shutdown.kill_timeout_ms, 3000);
    assert_eq!(config.performance.worker_threads, 3);
    assert!(config.performance.thread_pinning);
    assert_eq!(config.performance.memory_pool_size, 0);
    assert!(config.performance.numa_aware);
    assert!(!config.performance.lock_free);
    assert_eq!(config.performance.process_priority, Some(10));
    assert!(config.monitoring.enable_metrics);
    assert_eq!(config.monitoring.metrics_interval_ms, 250);
    assert!(config.monitoring.track_resources);
    assert!(!config.monitoring.health_checks);
    assert_eq!(config.monitoring.health_check_interval_ms, 750);
    assert_eq!(
        config.monitoring.http_listen,
        Some("[::1]:9464".parse().unwrap())
    );
    assert_eq!(
        config.control.socket.as_deref(),
        Some(Path::new("/run/complete/control.sock"))
    );
    assert_eq!(config.service.notification_fd, Some(5));
    assert_eq!(config.upgrade_timeout(), Duration::from_secs(7));
    // Every value came from the file: none is a default.
    for entry in explained.values() {
        assert!(
            matches!(entry.source, Source::File { .. }),
            "{} came from {}",
            entry.key,
            entry.source
        );
    }
}

#[test]
fn a_partial_file_merges_with_the_defaults() {
    let file =
        TempToml::new("[shutdown]\ntimeout_ms = 5000\n\n[performance]\nworker_threads = 3\n");
    let explained = Config::builder()
        .file(file.path())
        .env_vars(no_env())
        .explain()
        .unwrap();
    let config = explained.config();
    let defaults = Config::default();
    assert_eq!(config.shutdown.timeout_ms, 5000);
    assert_eq!(config.performance.worker_threads, 3);
    // The stages follow the graceful timeout when not set.
    assert_eq!(config.shutdown.force_timeout_ms, 7500);
    assert_eq!(config.shutdown.kill_timeout_ms, 10_000);
    assert_eq!(
        explained.source_of("shutdown.force_timeout_ms"),
        Some(&Source::Derived {
            from: "shutdown.timeout_ms"
        })
    );
    // Everything else is the default.
    assert_eq!(config.name, defaults.name);
    assert_eq!(config.logging, defaults.logging);
    assert_eq!(config.monitoring, defaults.monitoring);
    assert_eq!(
        config.performance.memory_pool_size,
        defaults.performance.memory_pool_size
    );
    assert_eq!(explained.source_of("name"), Some(&Source::Default));
}

#[test]
fn older_key_names_still_work() {
    let file = TempToml::new("[shutdown]\ngraceful = 2000\nforce = 3000\nkill = 4000\n");
    let config = Config::builder()
        .file(file.path())
        .env_vars(no_env())
        .build()
        .unwrap();
    assert_eq!(
        (
            config.shutdown.timeout_ms,
            config.shutdown.force_timeout_ms,
            config.shutdown.kill_timeout_ms
        ),
        (2000, 3000, 4000)
    );
}

#[test]
fn precedence_is_defaults_then_file_then_env_then_builder() {
    let file = TempToml::new("name = \"from-file\"\n[performance]\nworker_threads = 2\n");
    let env = [
        ("DAEMON_PERFORMANCE_WORKER_THREADS", "4"),
        ("DAEMON_LOGGING_LEVEL", "warn"),
    ];

    let explained = Config::builder()
        .file(file.path())
        .env_vars(env)
        .explain()
        .unwrap();
    assert_eq!(explained.config().name, "from-file");
    assert_eq!(explained.config().performance.worker_threads, 4);
    assert_eq!(explained.config().logging.level, LogLevel::Warn);
    assert_eq!(
        explained.source_of("performance.worker_threads"),
        Some(&Source::Env {
            var: "DAEMON_PERFORMANCE_WORKER_THREADS".into()
        })
    );

    let explained = Config::builder()
        .file(file.path())
        .env_vars(env)
        .worker_threads(8)
        .explain()
        .unwrap();
    assert_eq!(explained.config().performance.worker_threads, 8);
    assert_eq!(
        explained.source_of("performance.worker_threads"),
        Some(&Source::Builder)
    );
    assert_eq!(explained.config().logging.level, LogLevel::Warn);
}

#[test]
fn the_references_env_examples_take_effect() {
    let config = Config::builder()
        .env_vars([
            ("DAEMON_NAME", "env-daemon"),
            ("DAEMON_LOGGING_LEVEL", "debug"),
            ("DAEMON_SHUTDOWN_TIMEOUT_MS", "60000"),
            ("DAEMON_PERFORMANCE_WORKER_THREADS", "16"),
        ])
        .build()
        .unwrap();
    assert_eq!(config.name, "env-daemon");
    assert_eq!(config.logging.level, LogLevel::Debug);
    assert_eq!(config.shutdown.timeout_ms, 60_000);
    assert_eq!(config.performance.worker_threads, 16);
    // The later stages follow the raised graceful timeout.
    assert_eq!(config.shutdown.force_timeout_ms, 90_000);
    assert_eq!(config.shutdown.kill_timeout_ms, 120_000);
}

#[test]
fn env_overrides_a_file_and_still_validates() {
    // The reference file sets force_timeout_ms = 45000 explicitly, so a
    // 60 s graceful timeout from the environment contradicts it.
    let err = Config::builder()
        .file(REFERENCE_TOML)
        .env_vars([("DAEMON_SHUTDOWN_TIMEOUT_MS", "60000")])
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("shutdown.timeout_ms"));
    assert_eq!(err.value(), Some("60000"));
    assert_eq!(
        err.origin(),
        Some(&Source::Env {
            var: "DAEMON_SHUTDOWN_TIMEOUT_MS".into()
        })
    );
    match err.problem() {
        ConfigProblem::Conflict {
            other_key,
            other_value,
            other_source,
            ..
        } => {
            assert_eq!(other_key, "shutdown.force_timeout_ms");
            assert_eq!(other_value, "45000");
            assert_eq!(other_source, &file_source(Path::new(REFERENCE_TOML), 13));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn config_new_and_load_from_file_read_the_defaults_and_the_file() {
    // Both read the process environment; this test only checks the parts no
    // DAEMON_* variable in the test environment would change.
    let loaded = Config::load_from_file(REFERENCE_TOML);
    if std::env::vars().all(|(k, _)| !k.starts_with("DAEMON_")) {
        assert_eq!(loaded.unwrap().name, "my-production-daemon");
        assert_eq!(Config::new().unwrap(), Config::default());
    }
}

#[test]
fn zero_timeouts_are_rejected_with_key_value_source_and_line() {
    for key in ["timeout_ms", "force_timeout_ms", "kill_timeout_ms"] {
        let (err, path) = file_error(&format!("[shutdown]\n{key} = 0\n"));
        let full = format!("shutdown.{key}");
        assert_eq!(err.key(), Some(full.as_str()));
        assert_eq!(err.value(), Some("0"));
        assert_eq!(err.origin(), Some(&file_source(&path, 2)));
        assert_eq!(err.line(), Some(2));
        let text = err.to_string();
        assert!(text.contains(&full) && text.contains("line 2"), "{text}");
        assert!(text.contains("greater than 0"), "{text}");
    }
    let (err, _) = file_error("[monitoring]\nhealth_check_interval_ms = 0\n");
    assert_eq!(err.key(), Some("monitoring.health_check_interval_ms"));
}

#[test]
fn stages_out_of_order_are_rejected() {
    let (err, path) = file_error("[shutdown]\ntimeout_ms = 5000\nforce_timeout_ms = 4000\n");
    assert_eq!(err.key(), Some("shutdown.timeout_ms"));
    assert_eq!(err.origin(), Some(&file_source(&path, 2)));
    assert!(
        matches!(err.problem(), ConfigProblem::Conflict { other_key, .. } if other_key == "shutdown.force_timeout_ms")
    );

    let (err, _) = file_error("[shutdown]\nforce_timeout_ms = 50000\nkill_timeout_ms = 40000\n");
    assert_eq!(err.key(), Some("shutdown.force_timeout_ms"));
    assert!(err.to_string().contains("kill_timeout_ms"));

    let err = Config::builder()
        .env_vars(no_env())
        .shutdown_timeout(Duration::from_secs(10))
        .force_shutdown_timeout(Duration::from_secs(5))
        .build()
        .unwrap_err();
    assert_eq!(err.origin(), Some(&Source::Builder));
}

#[test]
fn an_empty_name_is_rejected() {
    let (err, path) = file_error("name = \"\"\n");
    assert_eq!(err.key(), Some("name"));
    assert_eq!(err.origin(), Some(&file_source(&path, 1)));
    let err = Config::builder()
        .env_vars([("DAEMON_NAME", "  ")])
        .build()
        .unwrap_err();
    assert_eq!(
        err.origin(),
        Some(&Source::Env {
            var: "DAEMON_NAME".into()
        })
    );
    let err = Config::builder()
        .env_vars(no_env())
        .name("")
        .build()
        .unwrap_err();
    // Converted into the crate's error, it is of kind Config.
    assert_eq!(proc_daemon::Error::from(err).kind(), ErrorKind::Config);
}

#[test]
fn an_unknown_key_is_rejected_with_the_nearest_known_key() {
    let (err, path) = file_error("[logging]\nlevel = \"info\"\nlevle = \"debug\"\n");
    assert_eq!(err.key(), Some("logging.levle"));
    assert_eq!(err.origin(), Some(&file_source(&path, 3)));
    assert_eq!(
        err.problem(),
        &ConfigProblem::UnknownKey {
            suggestion: Some("logging.level".into())
        }
    );
    assert!(err.to_string().contains("did you mean `logging.level`?"));

    // A key in the wrong section is found by name.
    let (err, _) = file_error("timeout_ms = 5000\n");
    assert_eq!(
        err.problem(),
        &ConfigProblem::UnknownKey {
            suggestion: Some("shutdown.timeout_ms".into())
        }
    );
    // A misspelt section.
    let (err, _) = file_error("[preformance]\nworker_threads = 1\n");
    assert_eq!(
        err.problem(),
        &ConfigProblem::UnknownKey {
            suggestion: Some("performance".into())
        }
    );
    // Nothing close: no suggestion, but still an error.
    let (err, _) = file_error("[performance]\nturbo_mode = true\n");
    assert_eq!(
        err.problem(),
        &ConfigProblem::UnknownKey { suggestion: None }
    );
}

#[test]
fn an_unknown_env_variable_is_rejected_with_the_nearest_known_one() {
    let err = Config::builder()
        .env_vars([("DAEMON_SHUTDOWN_TIMEOUT", "5000")])
        .build()
        .unwrap_err();
    assert_eq!(
        err.problem(),
        &ConfigProblem::UnknownKey {
            suggestion: Some("DAEMON_SHUTDOWN_TIMEOUT_MS".into())
        }
    );
    // Variables without the prefix are not ours.
    Config::builder()
        .env_vars([("PATH", "/bin"), ("DAEMONIZE", "1")])
        .build()
        .unwrap();
    // Another prefix, for hosts where DAEMON_* is taken.
    let config = Config::builder()
        .env_prefix("MYAPP_")
        .env_vars([("DAEMON_WHATEVER", "x"), ("MYAPP_NAME", "mine")])
        .build()
        .unwrap();
    assert_eq!(config.name, "mine");
}

#[test]
fn a_wrong_type_is_rejected() {
    let (err, path) = file_error("[performance]\nworker_threads = \"four\"\n");
    assert_eq!(err.key(), Some("performance.worker_threads"));
    assert_eq!(err.value(), Some("\"four\""));
    assert_eq!(err.origin(), Some(&file_source(&path, 2)));
    assert!(matches!(err.problem(), ConfigProblem::WrongType { .. }));

    for (text, key) in [
        ("[logging]\njson = \"yes\"\n", "logging.json"),
        ("[logging]\nlevel = \"verbose\"\n", "logging.level"),
        (
            "[performance]\nworker_threads = -1\n",
            "performance.worker_threads",
        ),
        (
            "[performance]\nworker_threads = 1.5\n",
            "performance.worker_threads",
        ),
        ("[logging]\nmax_files = 5000000000\n", "logging.max_files"),
        ("name = 7\n", "name"),
        ("pid_file = \"\"\n", "pid_file"),
        ("shutdown = 3\n", "shutdown"),
    ] {
        let (err, _) = file_error(text);
        assert_eq!(err.key(), Some(key), "{text}");
        assert_eq!(err.line(), Some(text.lines().count()), "{text}");
    }
}

#[test]
fn an_unparsable_env_value_is_rejected() {
    for (var, value, key) in [
        (
            "DAEMON_PERFORMANCE_WORKER_THREADS",
            "abc",
            "performance.worker_threads",
        ),
        ("DAEMON_SHUTDOWN_TIMEOUT_MS", "-5", "shutdown.timeout_ms"),
        (
            "DAEMON_MONITORING_ENABLE_METRICS",
            "maybe",
            "monitoring.enable_metrics",
        ),
        ("DAEMON_LOGGING_LEVEL", "loud", "logging.level"),
        (
            "DAEMON_LOGGING_MAX_FILES",
            "99999999999",
            "logging.max_files",
        ),
    ] {
        let err = Config::builder()
            .env_vars([(var, value)])
            .build()
            .unwrap_err();
        assert_eq!(err.key(), Some(key));
        assert_eq!(err.value(), Some(format!("{value:?}").as_str()));
        assert_eq!(err.origin(), Some(&Source::Env { var: var.into() }));
        assert!(err.to_string().contains(var), "{err}");
    }
}

#[test]
fn a_key_and_its_alias_together_are_rejected() {
    let (err, _) = file_error("[shutdown]\ngraceful = 1000\ntimeout_ms = 2000\n");
    assert_eq!(err.line(), Some(3));
    assert!(err.to_string().contains("shutdown.graceful"), "{err}");
    let err = Config::builder()
        .env_vars([
            ("DAEMON_SHUTDOWN_GRACEFUL", "1000"),
            ("DAEMON_SHUTDOWN_TIMEOUT_MS", "2000"),
        ])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("set only one"), "{err}");
}

#[test]
fn broken_toml_is_rejected_with_its_line() {
    let (err, path) = file_error("name = \"ok\"\n\n[shutdown\ntimeout_ms = 1\n");
    assert!(matches!(err.problem(), ConfigProblem::Syntax { .. }));
    assert_eq!(err.origin(), Some(&file_source(&path, 3)));
    let (err, _) = file_error("name = \"a\"\nname = \"b\"\n");
    assert!(matches!(err.problem(), ConfigProblem::Syntax { .. }));
    assert_eq!(err.line(), Some(2));
}

#[test]
fn a_file_that_is_not_utf8_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.toml");
    std::fs::write(&path, b"name = \"ok\"\nname2 = \"\xff\"\n").unwrap();
    let err = Config::builder()
        .file(&path)
        .env_vars(no_env())
        .build()
        .unwrap_err();
    assert_eq!(err.line(), Some(2));
}

#[test]
fn a_missing_file_is_a_config_error_naming_the_path_and_the_io_kind() {
    let err = Config::builder()
        .file("/nonexistent/proc-daemon/daemon.toml")
        .env_vars(no_env())
        .build()
        .unwrap_err();
    match err.problem() {
        ConfigProblem::Unreadable { kind, .. } => {
            assert_eq!(*kind, std::io::ErrorKind::NotFound)
        }
        other => panic!("expected an unreadable file, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/proc-daemon/daemon.toml") && text.contains("read config file"),
        "{text}"
    );
}

#[test]
fn builder_durations_must_be_whole_milliseconds() {
    let err = Config::builder()
        .env_vars(no_env())
        .shutdown_timeout(Duration::from_micros(1500))
        .build()
        .unwrap_err();
    assert_eq!(err.key(), Some("shutdown.timeout_ms"));
    assert_eq!(err.origin(), Some(&Source::Builder));
}

#[test]
fn the_references_builder_sample_builds() {
    let config = Config::builder()
        .name("production-daemon")
        .log_level(LogLevel::Info)
        .json_logging(true)
        .shutdown_timeout(Duration::from_secs(30))
        .worker_threads(8)
        .enable_metrics(true)
        .hot_reload(true)
        .env_vars(no_env())
        .build()
        .unwrap();
    assert_eq!(config.shutdown_timeout(), Duration::from_secs(30));
    assert_eq!(config.force_shutdown_timeout(), Duration::from_secs(45));
    assert_eq!(config.kill_timeout(), Duration::from_secs(60));
    assert!(config.hot_reload && config.monitoring.enable_metrics);
}

#[test]
fn validate_checks_a_config_changed_in_code() {
    let mut config = Config::default();
    config.validate().unwrap();
    config.shutdown.kill_timeout_ms = 1;
    let err = config.validate().unwrap_err();
    assert_eq!(err.key(), Some("shutdown.force_timeout_ms"));
    assert_eq!(err.origin(), Some(&Source::Code));
}

#[test]
fn the_performance_section_drives_the_executor() {
    // `numa_aware` is passed the same way; its placement is tested in
    // actors/tests/executor.rs with a two-node fixture topology.
    let file = TempToml::new(
        "[performance]\nworker_threads = 3\nthread_pinning = true\nnuma_aware = true\n",
    );
    let config = Config::builder()
        .file(file.path())
        .env_vars(no_env())
        .build()
        .unwrap();
    let executor = config.performance.executor_builder().build().unwrap();
    assert_eq!(executor.worker_count(), 3);
    let allowed = proc_daemon::actors::executor::topology::allowed_cpus();
    for worker in executor.workers() {
        let cpu = worker.pinned_cpu.expect("thread_pinning = true pins");
        assert!(allowed.contains(&cpu));
    }
    executor.shutdown(Duration::from_secs(5)).unwrap();

    // Unpinned by default.
    let defaults = Config::builder().env_vars(no_env()).build().unwrap();
    let executor = defaults.performance.executor_builder().build().unwrap();
    assert!(executor.workers().iter().all(|w| w.pinned_cpu.is_none()));
    assert_eq!(
        executor.worker_count(),
        proc_daemon::actors::executor::topology::allowed_cpus().len()
    );
    executor.shutdown(Duration::from_secs(5)).unwrap();
}

/// docs/deploy/kubernetes.md's ConfigMap carries a `daemon.toml`: every key
/// in it exists and every value is valid.
#[test]
fn the_kubernetes_configmap_daemon_toml_loads() {
    let doc = include_str!("../docs/deploy/kubernetes.md");
    let mut toml = String::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.trim_end() == "  daemon.toml: |" {
            inside = true;
            continue;
        }
        if inside {
            match line.strip_prefix("    ") {
                Some(body) => toml.push_str(body),
                None if line.trim().is_empty() => {}
                None => break,
            }
            toml.push('\n');
        }
    }
    assert!(
        toml.contains("[shutdown]"),
        "no daemon.toml found in the ConfigMap:\n{toml}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.toml");
    std::fs::write(&path, &toml).unwrap();
    let config = proc_daemon::Config::load_from_file(&path).unwrap();
    assert_eq!(config.name, "my-daemon");
    assert_eq!(config.kill_timeout(), std::time::Duration::from_secs(28));
    assert_eq!(
        config.monitoring.http_listen,
        Some("0.0.0.0:9090".parse().unwrap())
    );
}
