//! The actor runtime under proc-daemon.
//!
//! This crate holds the parts of proc-daemon that know nothing about config
//! files or signals: actors, their mailboxes, the worker-pool executor and
//! supervision. The daemon layer (`proc-daemon`) depends on it and re-exports
//! it as `proc_daemon::actors`; the dependency never points the other way.
//!
//! It is being built issue by issue. Today it is empty: the mailbox, the
//! executor and the supervisor land in their own modules (`mailbox`,
//! `executor`, `supervisor`) as they are written, and the README's feature
//! table says which are there.
