//! Configuration reload: the daemon reads a TOML file, and each reload
//! (SIGHUP, or `Daemon::reload`) puts the file's new content in effect.
//!
//! ```text
//! cargo run --example hot_reload -- path/to/daemon.toml   # default: ./daemon.toml
//! kill -HUP <pid>                                          # after editing the file
//! ```
//!
//! It prints the live name and level once at start (`live: ...`), again
//! on one line after every reload that changed something, and stops on
//! SIGTERM or Ctrl-C with exit code 0. A file that does not parse, or a
//! value that is not valid, leaves the running configuration as it was;
//! the daemon logs the error, naming the file, the key and the line.
//!
//! `hot_reload = true` asks for the file to be watched as well: built with
//! the `config-watch` feature, an edit reloads by itself; without it, the
//! daemon warns once at start and reloads on SIGHUP only.

use proc_daemon::prelude::*;

/// Prints the live values after each reload that changed something.
struct Printer;

impl Actor for Printer {}

impl Handler<ConfigReloaded> for Printer {
    type Reply = ();
    async fn handle(&mut self, reloaded: ConfigReloaded, _ctx: &mut Context<Self>) {
        if !reloaded.changed.is_empty() {
            print_live(&reloaded.new, &reloaded.changed);
        }
    }
}

/// One line with the values in effect, and the keys that changed.
fn print_live(config: &Config, changed: &[&str]) {
    println!(
        "live: name={:?} level={} changed={changed:?}",
        config.name,
        config.logging.level.as_str()
    );
}

#[tokio::main]
async fn main() {
    std::process::exit(match run().await {
        Ok(exit) => exit.exit_code(),
        Err(err) => {
            eprintln!("hot_reload: {err}");
            err.exit_code()
        }
    });
}

async fn run() -> Result<DaemonExit> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "daemon.toml".to_owned());
    let config = Config::builder().file(&path).hot_reload(true).build()?;
    let daemon = Daemon::builder(config).build()?;
    let printer = daemon
        .supervisor()
        .child("printer", || Printer)
        .spawn()
        .await?;
    daemon.subscribe_reload(printer.recipient());
    print_live(&daemon.config_snapshot(), &[]);
    println!("pid: {}", std::process::id());
    let exit = daemon.run().await?;
    println!("stopped: {} (code {})", exit.reason(), exit.exit_code());
    Ok(exit)
}
