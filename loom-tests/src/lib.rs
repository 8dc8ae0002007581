//! loom models of proc-daemon's lock-free parts.
//!
//! The models live in `tests/` and run only under `--cfg loom`, in their own
//! target directory so that the loom build does not evict the normal one:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p proc-daemon-loom-tests --release
//! ```
//!
//! Under `--cfg loom` the actors crate routes its atomics, cells and threads
//! through loom (a shim like tokio's `src/loom`), so the models check the very
//! algorithm that ships.
//!
//! | file | what it models |
//! |---|---|
//! | `tests/mailbox.rs` | the lock-free mailboxes |
//! | `tests/task_state.rs` | a task's state word and its joiner's waker |
//! | `tests/cancel.rs` | the cancel token behind every shutdown signal |
//! | `tests/pool.rs` | the message pool's hand-out and recycle paths |
//!
//! docs/architecture.md ("Verification") says what each covers and what it
//! does not.
