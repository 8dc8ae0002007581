//! Synchronization utilities: locks that tolerate poison.
//!
//! ```
//! use std::sync::{Mutex, RwLock};
//! use proc_daemon::lock::{lock, read, write};
//!
//! let counter = Mutex::new(0);
//! let _ = std::panic::catch_unwind(|| {
//!     let _guard = counter.lock().unwrap();
//!     panic!("poisons the mutex");
//! });
//! *lock(&counter) += 1; // still usable
//! assert_eq!(*lock(&counter), 1);
//!
//! let table = RwLock::new(vec![1]);
//! write(&table).push(2);
//! assert_eq!(read(&table).len(), 2);
//! ```
//!
//! A panic while a lock is held poisons it, and `lock().unwrap()` then
//! panics in every later user: one failure becomes many, in a process that
//! is meant to keep running. These helpers take the guard anyway. That is
//! right when the data is consistent between any two statements that
//! change it, as the daemon's own bookkeeping is (a reason slot, a list of
//! listeners, a PID file handle); where a panic could leave data half
//! updated, handle the poison instead.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, ignoring poison.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Read-locks `rwlock`, ignoring poison.
pub fn read<T>(rwlock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    rwlock
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Write-locks `rwlock`, ignoring poison.
pub fn write<T>(rwlock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    rwlock
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
