//! Locking that tolerates poison, for the daemon's own bookkeeping.
//!
//! A panic while a lock is held poisons it, and `lock().unwrap()` then
//! panics in every later user: one failure becomes many, in a process that
//! is meant to keep running. This helper takes the guard anyway. That is
//! right when the data is consistent between any two statements that
//! change it, as the daemon's bookkeeping is (a reason slot, a list of
//! listeners, a PID file handle). The actors crate has its own copy for
//! its own mutexes; neither is public API.

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`, ignoring poison (see the module docs).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
