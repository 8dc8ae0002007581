//! Locking that tolerates poison.
//!
//! The few mutexes in this crate guard bookkeeping: a join handle's waker
//! slot, a child's mailboxes between incarnations, the executor's shutdown
//! state. Each is left consistent between any two statements, so a panic
//! elsewhere while one was held (which poisons it) leaves data that is
//! still correct, and refusing to lock it would turn one panic into many.
//! Actor code never runs under these locks.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poison (see the module docs).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
