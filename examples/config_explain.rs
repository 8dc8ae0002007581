//! Prints the effective configuration and where each value came from.
//!
//! ```text
//! cargo run --example config_explain -- [FILE] [--name NAME] [--log-level LEVEL]
//!     [--shutdown-timeout-ms MS] [--worker-threads N]
//! ```
//!
//! The layers are the defaults, then FILE (a TOML file) if given, then the
//! `DAEMON_*` environment variables, then the flags, which stand for values
//! set in code with `Config::builder()`. On bad input it prints one line
//! naming the key, the value and where it came from, and exits with 1.
//!
//! Try:
//!
//! ```text
//! cargo run --example config_explain -- examples/daemon.toml
//! DAEMON_PERFORMANCE_WORKER_THREADS=16 cargo run --example config_explain
//! DAEMON_SHUTDOWN_TIMEOUT_MS=60000 cargo run --example config_explain
//! ```

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use proc_daemon::{Config, ConfigBuilder, LogLevel};

const USAGE: &str = "usage: config_explain [FILE] [--name NAME] [--log-level LEVEL] \
                     [--shutdown-timeout-ms MS] [--worker-threads N]";

fn main() -> ExitCode {
    let builder = match parse_args(std::env::args().skip(1)) {
        Ok(builder) => builder,
        Err(message) => {
            eprintln!("config_explain: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match builder.explain() {
        Ok(explained) => {
            // Written by hand rather than with `print!`, so that a closed pipe
            // (`config_explain | head`) ends the program quietly.
            let mut out = std::io::stdout().lock();
            let _ = write!(
                out,
                "# effective configuration (defaults < file < environment < builder)\n{explained}"
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Turns the command line into a builder: a file and builder values.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<ConfigBuilder, String> {
    let mut builder = Config::builder();
    let mut file_given = false;
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        builder = match arg.as_str() {
            "-h" | "--help" => return Err("help requested".to_owned()),
            "--name" => builder.name(value("--name")?),
            "--log-level" => {
                let level: LogLevel = value("--log-level")?
                    .parse()
                    .map_err(|e| format!("--log-level: {e}"))?;
                builder.log_level(level)
            }
            "--shutdown-timeout-ms" => {
                let ms: u64 = value("--shutdown-timeout-ms")?
                    .parse()
                    .map_err(|e| format!("--shutdown-timeout-ms: {e}"))?;
                builder.shutdown_timeout(Duration::from_millis(ms))
            }
            "--worker-threads" => {
                let n: usize = value("--worker-threads")?
                    .parse()
                    .map_err(|e| format!("--worker-threads: {e}"))?;
                builder.worker_threads(n)
            }
            flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
            path if !file_given => {
                file_given = true;
                builder.file(path)
            }
            extra => {
                return Err(format!(
                    "unexpected argument {extra}: only one file is read"
                ));
            }
        };
    }
    Ok(builder)
}
