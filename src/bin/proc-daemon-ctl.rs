//! `proc-daemon-ctl`: the command-line client of a daemon's control
//! socket (feature `ctl`). See `proc_daemon::ipc` and docs/operations.md,
//! "The control socket".
//!
//! ```text
//! proc-daemon-ctl --socket /run/my-daemon/control.sock status
//! proc-daemon-ctl status --json
//! proc-daemon-ctl restart root/web
//! proc-daemon-ctl events
//! ```
//!
//! Exit codes: 0 when the daemon did what was asked, 1 when it refused
//! (the reason is printed), 2 when it could not be reached or understood
//! (and for a bad command line).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use proc_daemon::ipc::{ChildStatus, Client, ClientError, EventLine, Status};

/// Talk to a running proc-daemon daemon through its control socket.
#[derive(Debug, Parser)]
#[command(name = "proc-daemon-ctl", version, about)]
struct Cli {
    /// The daemon's control socket (its `control.socket`).
    #[arg(long, short, env = "DAEMON_CONTROL_SOCKET", value_name = "PATH")]
    socket: PathBuf,
    /// Seconds to wait for a reply.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    timeout: u64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Show the daemon and its supervision tree.
    Status {
        /// Print the reply's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Read the configuration again, as SIGHUP does, and say what changed.
    Reload,
    /// Stop the daemon (its staged shutdown, as SIGTERM does).
    Stop,
    /// Restart one child through its supervisor.
    Restart {
        /// The child's path, as `status` shows it (root/web).
        path: String,
    },
    /// Set the log level until the next reload.
    LogLevel {
        /// trace, debug, info, warn or error.
        level: String,
    },
    /// Print the supervision tree's events as they happen, until Ctrl-C.
    Events {
        /// Print each event's JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Replace the daemon's process with a new one, dropping no
    /// connection; prints the new pid once it is ready.
    Upgrade {
        /// The executable to start (default: the daemon's own path, read
        /// again from disk).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// Take a profile and print the path of the file the daemon wrote.
    Profile {
        /// What to profile: cpu.
        kind: String,
        /// For how many seconds.
        #[arg(default_value_t = 10)]
        seconds: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("proc-daemon-ctl: {err}");
            ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
        }
    }
}

fn run(cli: Cli) -> Result<(), ClientError> {
    let mut client = Client::connect(&cli.socket)?.with_timeout(Duration::from_secs(cli.timeout));
    match cli.command {
        Cmd::Status { json } => {
            let status = client.status()?;
            if json {
                println!("{}", pretty(&status));
            } else {
                print_status(&status);
            }
        }
        Cmd::Reload => {
            let result = client.reload()?;
            if result.changed.is_empty() {
                println!("reloaded: nothing changed");
            } else {
                println!("reloaded: {} changed", result.changed.join(", "));
            }
            if !result.needs_restart.is_empty() {
                println!(
                    "needs a restart to take effect: {}",
                    result.needs_restart.join(", ")
                );
            }
        }
        Cmd::Stop => {
            client.stop()?;
            println!("stopping");
        }
        Cmd::Restart { path } => {
            client.restart(&path)?;
            println!("restarted {path}");
        }
        Cmd::LogLevel { level } => {
            client.log_level(&level)?;
            println!("log level {level} until the next reload");
        }
        Cmd::Events { json } => {
            for line in client.events()? {
                let line = line?;
                if json {
                    println!("{}", serde_json::to_string(&line).unwrap_or_default());
                } else {
                    print_event(&line);
                }
                // A pipe reader sees each event as it happens.
                let _ = std::io::stdout().flush();
            }
        }
        Cmd::Upgrade { binary } => {
            let pid = client.upgrade(binary.as_deref())?;
            println!("upgraded: pid {pid} took over");
        }
        Cmd::Profile { kind, seconds } => {
            if kind != "cpu" {
                // Sent anyway: the daemon says which kinds it takes.
                let value = client.request(proc_daemon::ipc::Command::Profile { kind, seconds })?;
                println!("{value}");
            } else {
                eprintln!("profiling for {seconds} s ...");
                let path = client.profile_cpu(seconds)?;
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

fn print_status(status: &Status) {
    println!(
        "{} (pid {}), up {}, log level {}, config: {}{}",
        status.name,
        status.pid,
        duration(status.uptime_s),
        status.log_level,
        status.config_source,
        if status.shutting_down {
            ", SHUTTING DOWN"
        } else {
            ""
        }
    );
    let rows: Vec<[String; 6]> = status.tree.iter().map(row).collect();
    let header = [
        "CHILD".to_owned(),
        "STATE".to_owned(),
        "RESTARTS".to_owned(),
        "UPTIME".to_owned(),
        "MAILBOX".to_owned(),
        "PATH".to_owned(),
    ];
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    println!("{}", line(&header, &widths));
    let root = ["root", "", "", "", "", "root"].map(str::to_owned);
    println!("{}", line(&root, &widths));
    for (row, child) in rows.iter().zip(&status.tree) {
        println!("{}", line(row, &widths));
        if let Some(note) = &child.note {
            println!("{}  ({note})", " ".repeat(widths[0]));
        }
    }
}

fn row(child: &ChildStatus) -> [String; 6] {
    let depth = child.path.matches('/').count();
    let name = child.path.rsplit('/').next().unwrap_or(&child.path);
    [
        format!("{}{name}", "  ".repeat(depth)),
        child.state.clone(),
        child.restarts.to_string(),
        child.uptime_s.map_or_else(|| "-".to_owned(), duration),
        child.mailbox_depth.to_string(),
        child.path.clone(),
    ]
}

/// Left-aligned text columns, right-aligned numbers.
fn line(cells: &[String; 6], widths: &[usize; 6]) -> String {
    let mut out = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            out.push_str("  ");
        }
        if i == 2 || i == 4 {
            out.push_str(&format!("{cell:>width$}"));
        } else {
            out.push_str(&format!("{cell:<width$}"));
        }
    }
    out.trim_end().to_owned()
}

fn duration(seconds: f64) -> String {
    let whole = seconds as u64;
    match whole {
        0..60 => format!("{seconds:.1}s"),
        60..3600 => format!("{}m{:02}s", whole / 60, whole % 60),
        3600..86400 => format!("{}h{:02}m", whole / 3600, whole % 3600 / 60),
        _ => format!("{}d{:02}h", whole / 86400, whole % 86400 / 3600),
    }
}

fn print_event(line: &EventLine) {
    let event = &line.event;
    let at = utc(event.at_unix_ms);
    match &event.reason {
        Some(reason) => println!(
            "{at}  {} ({})  {}: {reason}",
            event.name, event.id, event.state
        ),
        None => println!("{at}  {} ({})  {}", event.name, event.id, event.state),
    }
}

/// `2026-12-05T20:31:07.123Z` from milliseconds since the epoch (the
/// civil-from-days algorithm, for the proleptic Gregorian calendar).
fn utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_796_473_867_123), "2026-12-05T12:31:07.123Z");
    }

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(duration(3.25), "3.2s");
        assert_eq!(duration(125.0), "2m05s");
        assert_eq!(duration(7300.0), "2h01m");
        assert_eq!(duration(90_000.0), "1d01h");
    }
}
