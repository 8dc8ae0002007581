//! Scheduler hints (feature `scheduler-hints`), read back from /proc: the
//! nice value of every thread after `apply_process_hints`, and the timer
//! slack of every executor worker after `apply_runtime_hints`.
#![cfg(feature = "scheduler-hints")]

use std::time::Duration;

use proc_daemon::prelude::*;
use proc_daemon::scheduler;

/// Each thread of this process: its name and its /proc/self/task entry.
fn threads() -> Vec<(String, std::path::PathBuf)> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = std::fs::read_to_string(path.join("comm")).unwrap();
            (name.trim().to_owned(), path)
        })
        .collect()
}

/// Field 19 of /proc/<tid>/stat: the nice value.
fn nice_of(task: &std::path::Path) -> i32 {
    let stat = std::fs::read_to_string(task.join("stat")).unwrap();
    // The command may contain spaces; the fields after it do not.
    let after_command = &stat[stat.rfind(')').unwrap() + 2..];
    after_command.split(' ').nth(16).unwrap().parse().unwrap()
}

#[test]
fn hints_show_in_proc_for_every_thread_and_worker() {
    // Nice 7: raising the value needs no privilege.
    let config = Config::builder()
        .name("sched")
        .worker_threads(2)
        .process_priority(7)
        .ignore_env()
        .build()
        .unwrap();
    // The daemon applies the process hints as it starts.
    let daemon = Daemon::builder(config.clone())
        .with_signal_config(SignalConfig::none())
        .build()
        .unwrap();
    let workers: Vec<_> = threads()
        .into_iter()
        .filter(|(name, _)| name.starts_with("sched-worker"))
        .collect();
    assert_eq!(workers.len(), 2, "{:?}", threads());
    // The workers, and this thread. (Other tests' threads come and go
    // meanwhile under `cargo test`; they are not looked at.)
    for (name, task) in &workers {
        assert_eq!(nice_of(task), 7, "worker {name}");
    }
    assert_eq!(nice_of(std::path::Path::new("/proc/thread-self")), 7);
    // Applied again by hand, it reports what it did.
    let applied = scheduler::apply_process_hints(&config);
    assert_eq!(applied.priority, Some(7));
    assert!(applied.threads_set >= 3, "{applied:?}");
    assert_eq!(applied.refused, None);

    let runtime = scheduler::apply_runtime_hints();
    assert_eq!(runtime.workers_set, 2, "{runtime:?}");
    assert!(runtime.caller_set);
    for (name, task) in &workers {
        // timerslack_ns is under /proc/<tid>, not /proc/self/task/<tid>.
        let tid = task.file_name().unwrap().to_str().unwrap();
        let slack = std::fs::read_to_string(format!("/proc/{tid}/timerslack_ns")).unwrap();
        assert_eq!(slack.trim(), "1", "worker {name}");
    }

    daemon.shutdown();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(20), daemon.run()).await })
        .unwrap()
        .unwrap();
    // The daemon has stopped: its workers are no longer reached.
    assert_eq!(scheduler::apply_runtime_hints().workers_set, 0);
}

#[test]
fn an_unset_priority_changes_nothing_and_says_so() {
    let config = Config::builder().ignore_env().build().unwrap();
    let applied = scheduler::apply_process_hints(&config);
    assert_eq!(applied.priority, None);
    assert_eq!(applied.threads_set, 0);
}

#[test]
fn the_priority_is_validated() {
    let err = Config::builder()
        .env_vars([("DAEMON_PERFORMANCE_PROCESS_PRIORITY", "25")])
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("performance.process_priority"),
        "{err}"
    );
    assert!(err.to_string().contains("-20"), "{err}");
}
