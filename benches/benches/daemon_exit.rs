//! SIGTERM to process exit, and idle CPU and wake-ups, for a daemon with 10
//! idle subsystems: proc-daemon, the proc-daemon 1.x crate (`upstream`,
//! 1.1.3), and a bare tokio process that SIGTERM's default action kills
//! (the floor). Every process is a fresh copy of this binary in one role,
//! and the roles are interleaved round by round, so drift on a noisy
//! machine hits them alike.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench daemon_exit
//! cargo bench -p proc-daemon-benches --bench daemon_exit -- --rounds 50 --idle-seconds 10
//! cargo bench -p proc-daemon-benches --bench daemon_exit -- --subsystems 0 --idle-seconds 0
//! cargo bench -p proc-daemon-benches --bench daemon_exit -- --json target/daemon_exit.json
//! ```
//!
//! `--json FILE` also writes the results as JSON, which
//! `cargo xtask perf-report` reads.
//!
//! `--idle-seconds 0` skips the idle measurement. `--subsystems N`
//! (default 10) changes the number of idle subsystems (or
//! tasks) in every role. Comparing 0, 1 and 10 separates the fixed cost of
//! a daemon's way out from the cost per subsystem.
//!
//! Exit time is measured by the parent from `kill(SIGTERM)` to `wait4`
//! returning, so it includes the kernel's teardown of the process, which
//! every role pays. Next to it, `cpu` is the median CPU time the process
//! used on its way out, all threads, user and system (its `wait4` resource
//! usage less its `schedstat` total just before the signal): on a 2-vCPU
//! machine, where the exiting threads contend for the CPUs, that work is
//! most of what separates the roles. Before the signal, each daemon has printed `ready`
//! from inside all 10 of its subsystems, and the parent waits 50 ms more
//! so that signal handlers are certainly installed.
//!
//! The last line pairs the two daemons round by round: the median of
//! each round's difference, with a 95% bootstrap interval
//! (`proc_daemon_benches::paired_difference`). The machine's drift within
//! a run moves both medians; it cancels out of the paired difference.
//!
//! Idle cost: after 1 s of settling, the parent sums over every thread of
//! the child the CPU time from `/proc/PID/task/*/schedstat` and the
//! voluntary and involuntary context switches from
//! `/proc/PID/task/*/status`, waits `--idle-seconds`, and sums again. A
//! voluntary switch is a thread going to sleep, so after a wake-up: the
//! difference counts wake-ups.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proc_daemon_benches::{arg_or, paired_difference, percentile, write_json_results};

const ROLE: &str = "DAEMON_EXIT_ROLE";
/// How many subsystems the children start; the parent passes its
/// `--subsystems` on through this variable.
const SUBSYSTEMS_VAR: &str = "DAEMON_EXIT_SUBSYSTEMS";
/// The issue's workload: 10 idle subsystems.
const DEFAULT_SUBSYSTEMS: usize = 10;
/// The health-check interval of the "health checks on" role.
const HEALTH_INTERVAL_MS: u64 = 1000;

fn main() {
    match std::env::var(ROLE) {
        Ok(role) => run_role(&role),
        Err(_) => drive(),
    }
}

// ---- the children -----------------------------------------------------------

/// The number of subsystems this child starts.
fn subsystems() -> usize {
    std::env::var(SUBSYSTEMS_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SUBSYSTEMS)
}

/// How many `ready` lines a child prints: one per subsystem, or one from
/// `main` just before the daemon runs when there are none.
fn ready_lines(subsystems: usize) -> usize {
    subsystems.max(1)
}

fn say_ready(index: usize) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready {index}");
    let _ = out.flush();
}

fn run_role(role: &str) {
    match role {
        "proc-daemon" | "proc-daemon-health" => ours(role == "proc-daemon-health"),
        "upstream" => upstream_daemon(),
        "bare-tokio" => bare_tokio(),
        other => panic!("unknown role {other}"),
    }
}

/// An idle subsystem of ours, with a health check that passes.
struct Idle {
    name: String,
    index: usize,
}

impl proc_daemon::Subsystem for Idle {
    fn run(
        &self,
        mut shutdown: proc_daemon::ShutdownHandle,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = proc_daemon::Result<()>> + Send>> {
        let index = self.index;
        Box::pin(async move {
            say_ready(index);
            shutdown.cancelled().await;
            Ok(())
        })
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn health_check(&self) -> Option<Box<dyn Fn() -> bool + Send + Sync>> {
        Some(Box::new(|| true))
    }
}

fn ours(health_checks: bool) {
    let config = proc_daemon::Config::builder()
        .name("bench")
        .log_level(proc_daemon::LogLevel::Warn)
        .health_checks(health_checks)
        .health_check_interval(Duration::from_millis(HEALTH_INTERVAL_MS))
        .ignore_env()
        .build()
        .expect("config");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let count = subsystems();
    let code = runtime.block_on(async move {
        let mut builder = proc_daemon::Daemon::builder(config);
        for index in 0..count {
            builder = builder.with_subsystem(Idle {
                name: format!("idle-{index}"),
                index,
            });
        }
        if count == 0 {
            say_ready(0);
        }
        match builder.run().await {
            Ok(exit) => exit.exit_code(),
            Err(err) => err.exit_code(),
        }
    });
    std::process::exit(code);
}

fn upstream_daemon() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = runtime.block_on(async {
        let config = upstream::Config::builder()
            .name("bench")
            .log_level(upstream::LogLevel::Warn)
            .build()
            .expect("config");
        let count = subsystems();
        let mut builder = upstream::Daemon::builder(config);
        if count == 0 {
            say_ready(0);
        }
        for index in 0..count {
            builder = builder.with_task(&format!("idle-{index}"), move |mut shutdown| async move {
                say_ready(index);
                shutdown.cancelled().await;
                Ok(())
            });
        }
        builder.run().await
    });
    std::process::exit(i32::from(result.is_err()));
}

fn bare_tokio() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for index in 0..ready_lines(subsystems()) {
            say_ready(index);
        }
        std::future::pending::<()>().await;
    });
}

// ---- the parent ---------------------------------------------------------------

struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start(role: &str, subsystems: usize) -> Running {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(ROLE, role)
        .env(SUBSYSTEMS_VAR, subsystems.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a child");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    for _ in 0..ready_lines(subsystems) {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("ready") => {}
            other => panic!("{role}: expected `ready`, got {other:?}"),
        }
    }
    // Keep reading (and discarding) so a late write never blocks the child.
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(50));
    Running { child }
}

fn sigterm(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill failed");
}

/// One SIGTERM-to-exit measurement.
struct Exit {
    /// From `kill(SIGTERM)` to `wait4` returning.
    took: Duration,
    /// CPU time the process used from the signal to its end, all threads,
    /// user and system: its total from `wait4`'s resource usage less what
    /// `/proc/PID/task/*/schedstat` said just before the signal.
    cpu: Duration,
    /// How the process ended.
    how: String,
}

fn exit_once(role: &str, subsystems: usize) -> Exit {
    let running = start(role, subsystems);
    let pid = libc::pid_t::try_from(running.child.id()).expect("pid");
    let (cpu_before, ..) = idle_counters(running.child.id());
    let start = Instant::now();
    sigterm(&running.child);
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4(2) on our own unreaped child, with pointers to locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = start.elapsed();
    assert_eq!(reaped, pid, "wait4 failed");
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    let cpu_total = Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime));
    let how = if libc::WIFEXITED(status) {
        format!("exit {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("signal {}", libc::WTERMSIG(status))
    } else {
        "unknown".to_owned()
    };
    // `Running`'s drop sees the child reaped (by wait4) and leaves it.
    drop(running);
    Exit {
        took,
        cpu: cpu_total.saturating_sub(Duration::from_nanos(cpu_before)),
        how,
    }
}

/// CPU nanoseconds and (voluntary, involuntary) switches, summed over the
/// process's threads.
fn idle_counters(pid: u32) -> (u64, u64, u64, usize) {
    let mut cpu = 0;
    let mut voluntary = 0;
    let mut involuntary = 0;
    let mut threads = 0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task");
    for task in tasks.flatten() {
        let path = task.path();
        let Ok(schedstat) = std::fs::read_to_string(path.join("schedstat")) else {
            continue;
        };
        threads += 1;
        cpu += schedstat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
        if let Ok(status) = std::fs::read_to_string(path.join("status")) {
            for line in status.lines() {
                let value = |l: &str| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                if line.starts_with("voluntary_ctxt_switches") {
                    voluntary += value(line);
                } else if line.starts_with("nonvoluntary_ctxt_switches") {
                    involuntary += value(line);
                }
            }
        }
    }
    (cpu, voluntary, involuntary, threads)
}

fn drive() {
    let rounds: usize = arg_or("--rounds", 30);
    let idle_seconds: u64 = arg_or("--idle-seconds", 10);
    let subsystems: usize = arg_or("--subsystems", DEFAULT_SUBSYSTEMS);
    let roles = ["proc-daemon", "upstream", "bare-tokio"];
    println!("SIGTERM to exit, {subsystems} idle subsystems, {rounds} rounds, roles interleaved");
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); roles.len()];
    let mut cpu: Vec<Vec<Duration>> = vec![Vec::new(); roles.len()];
    let mut endings: Vec<std::collections::BTreeSet<String>> =
        vec![Default::default(); roles.len()];
    for _ in 0..rounds {
        for (index, role) in roles.iter().enumerate() {
            let exit = exit_once(role, subsystems);
            samples[index].push(exit.took);
            cpu[index].push(exit.cpu);
            endings[index].insert(exit.how);
        }
    }
    // Paired by round, before the samples are sorted below.
    let paired = paired_difference(&samples[0], &samples[1]);
    let mut medians = Vec::new();
    let mut exit_results = serde_json::Map::new();
    for (index, role) in roles.iter().enumerate() {
        let sorted = &mut samples[index];
        sorted.sort();
        let median = percentile(sorted, 0.5);
        medians.push(median);
        cpu[index].sort();
        let cpu_median = percentile(&cpu[index], 0.5);
        println!(
            "  {role:<12} median {:>8.3} ms   p10 {:>8.3} ms   p90 {:>8.3} ms   cpu {:>6.3} ms   ended by {:?}",
            median.as_secs_f64() * 1e3,
            percentile(sorted, 0.1).as_secs_f64() * 1e3,
            percentile(sorted, 0.9).as_secs_f64() * 1e3,
            cpu_median.as_secs_f64() * 1e3,
            endings[index]
        );
        exit_results.insert(
            (*role).to_owned(),
            serde_json::json!({
                "median_us": micros(median),
                "p10_us": micros(percentile(sorted, 0.1)),
                "p90_us": micros(percentile(sorted, 0.9)),
                "cpu_median_us": micros(cpu_median),
                "ended_by": endings[index].iter().collect::<Vec<_>>(),
            }),
        );
    }
    let mut results = serde_json::json!({
        "rounds": rounds,
        "subsystems": subsystems,
        "exit": exit_results,
        "paired_proc_daemon_minus_upstream_us": {
            "median": paired.median_us,
            "low": paired.low_us,
            "high": paired.high_us,
        },
        "idle_seconds": idle_seconds,
        "health_interval_ms": HEALTH_INTERVAL_MS,
    });
    println!(
        "  ratios: proc-daemon / upstream = {:.2}, proc-daemon / bare-tokio floor = {:.2}",
        medians[0].as_secs_f64() / medians[1].as_secs_f64(),
        medians[0].as_secs_f64() / medians[2].as_secs_f64()
    );
    println!(
        "  paired by round: proc-daemon - upstream = {:+.1} us (95% CI {:+.1} to {:+.1} us)",
        paired.median_us, paired.low_us, paired.high_us
    );

    if idle_seconds == 0 {
        write_json_results(&results);
        return;
    }
    let mut idle_results = serde_json::Map::new();
    println!(
        "\nidle for {idle_seconds} s after 1 s of settling ({subsystems} subsystems; health checks every {HEALTH_INTERVAL_MS} ms when on)"
    );
    for role in [
        "bare-tokio",
        "proc-daemon",
        "proc-daemon-health",
        "upstream",
    ] {
        let running = start(role, subsystems);
        std::thread::sleep(Duration::from_secs(1));
        let pid = running.child.id();
        let (cpu0, vol0, invol0, _) = idle_counters(pid);
        std::thread::sleep(Duration::from_secs(idle_seconds));
        let (cpu1, vol1, invol1, threads) = idle_counters(pid);
        println!(
            "  {role:<19} threads {threads:>3}   cpu {:>9.3} ms   voluntary switches {:>6}   involuntary {:>5}",
            (cpu1.saturating_sub(cpu0)) as f64 / 1e6,
            vol1.saturating_sub(vol0),
            invol1.saturating_sub(invol0)
        );
        idle_results.insert(
            role.to_owned(),
            serde_json::json!({
                "threads": threads,
                "cpu_us": cpu1.saturating_sub(cpu0) as f64 / 1e3,
                "voluntary_switches": vol1.saturating_sub(vol0),
                "involuntary_switches": invol1.saturating_sub(invol0),
            }),
        );
        drop(running);
    }
    results["idle"] = serde_json::Value::Object(idle_results);
    write_json_results(&results);
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
