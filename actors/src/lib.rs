//! The actor runtime under proc-daemon.
//!
//! This crate holds the parts of proc-daemon that know nothing about config
//! files or signals: actors, their mailboxes, the worker-pool executor and
//! supervision. The daemon layer (`proc-daemon`) depends on it and re-exports
//! it as `proc_daemon::actors`; the dependency never points the other way.
//!
//! It is being built issue by issue; the README's feature table says what
//! exists. Today:
//!
//! - [`mailbox`]: the lock-free MPSC queues in front of every actor,
//!   verified with loom (`loom-tests/`) and Miri.
//! - [`executor`]: the worker pool every actor runs on, one tokio
//!   current-thread runtime per worker thread, pinned in NUMA order from
//!   [`executor::topology`].
//!
//! The lock-free code reaches atomics, cells and threads only through
//! `loom.rs`, a std/loom shim, so that `RUSTFLAGS="--cfg loom"` model-checks
//! the code that ships.

#[cfg(not(loom))]
pub mod executor;
pub(crate) mod loom;
pub mod mailbox;
