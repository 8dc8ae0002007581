//! A daemon whose subsystems misbehave on request: the binary that the
//! process-level tests (`tests/daemon_process.rs`) start, signal and watch.
//!
//! It prints one line on stdout per event a test checks (`ready`,
//! `cleanup done: <name>`, `aborted: <name>` never prints: an aborted task
//! prints nothing), and exits with the daemon's exit code. Timeouts come
//! from the usual `DAEMON_SHUTDOWN_*` variables.
//!
//! ```text
//! cargo run --example shutdown_scenarios -- --subsystems 10
//! cargo run --example shutdown_scenarios -- --subsystems 1 --cleanup-ms 2000
//! cargo run --example shutdown_scenarios -- --ignore-cancel
//! cargo run --example shutdown_scenarios -- --restart-storm
//! cargo run --example shutdown_scenarios -- --pid-file /tmp/demo.pid
//! ```
//!
//! Options:
//! - `--subsystems N`: N well-behaved subsystems `sub-0`.. (default 0);
//! - `--cleanup-ms MS`: each of them takes MS of cleanup after cancel;
//! - `--ignore-cancel`: adds `stubborn`, which never looks at its handle;
//! - `--block-on-cancel`: adds `blocker`, which blocks its thread in
//!   `std::thread::sleep` once cancelled (only the kill stage ends it);
//! - `--request-shutdown-after-ms MS`: adds `requester`, which asks the
//!   daemon to stop after MS;
//! - `--restart-storm`: adds `crasher`, which fails as soon as it starts;
//! - `--panic-in-cleanup`: adds `fragile`, which panics in its cleanup,
//!   after its handle is cancelled;
//! - `--wedge-after-ms MS`: blocks the control worker (worker 0, where the
//!   daemon's root actor runs) for an hour, MS after start: a wedged
//!   daemon, which must stop petting systemd's watchdog;
//! - `--child-env`: once started, runs `sh -c` to print which of systemd's
//!   variables a child process inherits (`child env: ...`);
//! - `--config PATH`: load the configuration from this TOML file (and the
//!   `DAEMON_*` variables) instead of the variables alone;
//! - `--health-check`: every subsystem gets a health check that passes;
//! - `--no-signals`: handle no signal (programmatic shutdown only);
//! - `--pid-file PATH`: lock a PID file;
//! - `--no-free-realtime-signal`: ignore every realtime signal before the
//!   daemon starts, so its kill stage finds none to claim and falls back
//!   to SIGKILL.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proc_daemon::{Config, Daemon, Error, Result, ShutdownHandle, SignalConfig, Subsystem};

/// Prints a line and flushes, so a test reading the pipe sees it at once.
fn say(line: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.as_ref());
    let _ = out.flush();
}

struct Options {
    subsystems: usize,
    cleanup: Duration,
    ignore_cancel: bool,
    block_on_cancel: bool,
    request_after: Option<Duration>,
    restart_storm: bool,
    health_check: bool,
    no_signals: bool,
    pid_file: Option<String>,
    no_free_realtime_signal: bool,
    panic_in_cleanup: bool,
    config: Option<String>,
    wedge_after: Option<Duration>,
    child_env: bool,
}

fn parse() -> std::result::Result<Options, String> {
    let mut options = Options {
        subsystems: 0,
        cleanup: Duration::ZERO,
        ignore_cancel: false,
        block_on_cancel: false,
        request_after: None,
        restart_storm: false,
        health_check: false,
        no_signals: false,
        pid_file: None,
        no_free_realtime_signal: false,
        panic_in_cleanup: false,
        config: None,
        wedge_after: None,
        child_env: false,
    };
    let mut args = std::env::args().skip(1);
    let number = |flag: &str, value: Option<String>| -> std::result::Result<u64, String> {
        value
            .ok_or_else(|| format!("{flag} needs a value"))?
            .parse()
            .map_err(|err| format!("{flag}: {err}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--subsystems" => options.subsystems = number(&arg, args.next())? as usize,
            "--cleanup-ms" => options.cleanup = Duration::from_millis(number(&arg, args.next())?),
            "--ignore-cancel" => options.ignore_cancel = true,
            "--block-on-cancel" => options.block_on_cancel = true,
            "--request-shutdown-after-ms" => {
                options.request_after = Some(Duration::from_millis(number(&arg, args.next())?));
            }
            "--restart-storm" => options.restart_storm = true,
            "--health-check" => options.health_check = true,
            "--no-signals" => options.no_signals = true,
            "--pid-file" => options.pid_file = Some(args.next().ok_or("--pid-file needs a path")?),
            "--no-free-realtime-signal" => options.no_free_realtime_signal = true,
            "--panic-in-cleanup" => options.panic_in_cleanup = true,
            "--child-env" => options.child_env = true,
            "--wedge-after-ms" => {
                options.wedge_after = Some(Duration::from_millis(number(&arg, args.next())?));
            }
            "--config" => options.config = Some(args.next().ok_or("--config needs a path")?),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

/// A well-behaved subsystem with a configurable cleanup time.
struct Worker {
    name: String,
    cleanup: Duration,
    health_check: bool,
    checks: Arc<AtomicU64>,
}

impl Subsystem for Worker {
    fn run(
        &self,
        mut shutdown: ShutdownHandle,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>> {
        let (name, cleanup) = (self.name.clone(), self.cleanup);
        Box::pin(async move {
            shutdown.cancelled().await;
            if !cleanup.is_zero() {
                say(format!("cleanup started: {name}"));
                tokio::time::sleep(cleanup).await;
            }
            say(format!("cleanup done: {name}"));
            Ok(())
        })
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn health_check(&self) -> Option<Box<dyn Fn() -> bool + Send + Sync>> {
        if !self.health_check {
            return None;
        }
        let checks = self.checks.clone();
        Some(Box::new(move || {
            checks.fetch_add(1, Ordering::Relaxed);
            true
        }))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = match parse() {
        Ok(options) => options,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(proc_daemon::daemon::EXIT_FAILURE);
        }
    };
    let code = match run(options).await {
        Ok(exit) => {
            say(format!(
                "stopped: {} (code {})",
                exit.reason(),
                exit.exit_code()
            ));
            exit.exit_code()
        }
        Err(err) => {
            say(format!("error: {err}"));
            err.exit_code()
        }
    };
    std::process::exit(code);
}

async fn run(options: Options) -> Result<proc_daemon::DaemonExit> {
    if options.no_free_realtime_signal {
        for signal in libc::SIGRTMIN()..=libc::SIGRTMAX() {
            // SAFETY: sets a signal's disposition to "ignore", which
            // installs no handler of ours.
            unsafe { libc::signal(signal, libc::SIG_IGN) };
        }
    }
    let config = match &options.config {
        Some(path) => Config::load_from_file(path)?,
        None => Config::new()?,
    };
    let checks = Arc::new(AtomicU64::new(0));
    let mut builder = Daemon::builder(config);
    for index in 0..options.subsystems {
        builder = builder.with_subsystem(Worker {
            name: format!("sub-{index}"),
            cleanup: options.cleanup,
            health_check: options.health_check,
            checks: checks.clone(),
        });
    }
    if options.ignore_cancel {
        builder = builder.with_task("stubborn", |_shutdown| async {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    if options.block_on_cancel {
        builder = builder.with_task("blocker", |mut shutdown| async move {
            shutdown.cancelled().await;
            say("blocking the thread");
            std::thread::sleep(Duration::from_secs(3600));
            Ok(())
        });
    }
    if let Some(after) = options.request_after {
        builder = builder.with_task("requester", move |shutdown| async move {
            tokio::time::sleep(after).await;
            say("requesting shutdown");
            shutdown.request_shutdown("the requester subsystem is done");
            Ok(())
        });
    }
    if options.panic_in_cleanup {
        builder = builder.with_task("fragile", |mut shutdown| async move {
            shutdown.cancelled().await;
            say("fragile cleanup starting");
            panic!("fragile's cleanup fails on purpose");
        });
    }
    if options.restart_storm {
        builder = builder.with_subsystem_fn("crasher", |_shutdown| async {
            say("crasher starting");
            Err(Error::subsystem("crasher", "fails on purpose"))
        });
    }
    if options.no_signals {
        builder = builder.with_signal_config(SignalConfig::none());
    }
    if let Some(path) = &options.pid_file {
        builder = builder.with_pid_file(path);
    }
    let daemon = builder.build()?;
    if let Some(after) = options.wedge_after {
        let wedge = daemon.executor().spawn_on(0, async move {
            tokio::time::sleep(after).await;
            say("wedging the control worker");
            std::thread::sleep(Duration::from_secs(3600));
        });
        drop(wedge.map_err(|err| Error::subsystem("wedge", err.to_string()))?);
    }
    if options.child_env {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg("echo NOTIFY_SOCKET=${NOTIFY_SOCKET-unset} WATCHDOG_USEC=${WATCHDOG_USEC-unset} LISTEN_FDS=${LISTEN_FDS-unset}")
            .output()
            .map_err(|err| Error::subsystem("child-env", err.to_string()))?;
        say(format!(
            "child env: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        ));
    }
    say(format!("ready pid={}", std::process::id()));
    let exit = daemon.run().await;
    if options.health_check {
        say(format!(
            "health checks run: {}",
            checks.load(Ordering::Relaxed)
        ));
    }
    exit
}
