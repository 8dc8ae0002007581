//! Shows where the executor puts its workers on this machine, from the
//! same configuration a daemon would use (defaults, then `DAEMON_*`
//! variables, then an optional TOML file given as the first argument).
//!
//! ```text
//! cargo run --example executor_info
//! DAEMON_PERFORMANCE_THREAD_PINNING=true cargo run --example executor_info
//! DAEMON_PERFORMANCE_THREAD_PINNING=true taskset -c 1 cargo run --example executor_info
//! ```

use std::process::ExitCode;
use std::time::Duration;

use proc_daemon::Config;

fn main() -> ExitCode {
    let mut builder = Config::builder();
    if let Some(path) = std::env::args().nth(1) {
        builder = builder.file(path);
    }
    let config = match builder.build() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::FAILURE;
        }
    };
    let executor = match config.performance.executor_builder().build() {
        Ok(executor) => executor,
        Err(error) => {
            eprintln!("cannot start the executor: {error}");
            return ExitCode::FAILURE;
        }
    };
    let topology = executor.topology();
    println!("topology from {:?}", topology.source());
    for node in topology.nodes() {
        let cpus: Vec<String> = node.cpus().map(|cpu| cpu.to_string()).collect();
        println!("  node {}: CPUs {}", node.id, cpus.join(","));
    }
    println!(
        "{} workers (worker_threads = {}, thread_pinning = {}, numa_aware = {})",
        executor.worker_count(),
        config.performance.worker_threads,
        config.performance.thread_pinning,
        config.performance.numa_aware
    );
    for worker in executor.workers() {
        let pinned = worker.pinned_cpu.map_or_else(
            || "unpinned".to_owned(),
            |cpu| format!("pinned to CPU {cpu}"),
        );
        // Ask the worker itself which CPUs the kernel lets it use.
        let allowed = executor
            .spawn_on(worker.index, async {
                std::fs::read_to_string("/proc/thread-self/status")
                    .ok()
                    .and_then(|status| {
                        status
                            .lines()
                            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
                            .map(|list| list.trim().to_owned())
                    })
                    .unwrap_or_else(|| "unknown".to_owned())
            })
            .expect("the index comes from the executor")
            .join()
            .unwrap_or_else(|error| format!("({error})"));
        println!(
            "  worker {} `{}`: node {}, {pinned}, kernel allows CPUs {allowed}",
            worker.index, worker.thread_name, worker.node
        );
    }
    match executor.shutdown(Duration::from_secs(5)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
