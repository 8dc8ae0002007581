//! The process's exit codes: what a daemon's end means to whoever
//! started it (a shell, systemd's `Restart=on-failure`, Kubernetes).
//!
//! They live in a module of their own, beneath everything else, because
//! both the error type ([`Error::exit_code`](crate::Error::exit_code)) and
//! the kill stage (which calls `_exit` from a signal handler) need them,
//! and neither should depend on the daemon to get them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 ([`EXIT_CLEAN`]) | everything stopped within its timeout |
//! | 1 ([`EXIT_FAILURE`]) | the supervision tree gave up (a restart storm escalated to the root), or the daemon could not start |
//! | 2 ([`EXIT_FORCED`]) | the shutdown was forced: a second SIGINT, or something was aborted at the force timeout |
//! | 3 ([`EXIT_KILLED`]) | the kill timeout was reached; the process exited with work still running (killed by SIGKILL instead if its realtime signal could not be delivered) |
//! | 4 ([`EXIT_CLEANUP_FAILED`]) | everything stopped in time, but a subsystem's cleanup failed: its `run` returned an error or panicked after the shutdown began (each one is logged with its name) |
//!
//! When more than one applies, the lowest non-zero code wins: a forced
//! stop whose cleanups also failed exits 2, and its error lists both.
//!
//! A `main` returning `proc_daemon::Result<()>` exits with 1 for any `Err`
//! (Rust's rule); call `std::process::exit(err.exit_code())` to keep the
//! distinction, as `examples/comprehensive.rs` does.

/// Exit code: a clean stop.
pub const EXIT_CLEAN: i32 = 0;
/// Exit code: the supervision tree failed, or the daemon could not start.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: the shutdown was forced.
pub const EXIT_FORCED: i32 = 2;
/// Exit code: the kill timeout was reached.
pub const EXIT_KILLED: i32 = 3;
/// Exit code: everything stopped in time, but a subsystem's cleanup failed:
/// its `run` returned an error or panicked after the shutdown began.
pub const EXIT_CLEANUP_FAILED: i32 = 4;
