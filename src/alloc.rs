//! The global allocator chosen by features.
//!
//! With `mimalloc`, every allocation of a program that links proc-daemon goes
//! through mimalloc, which is faster than glibc's allocator for the small,
//! short-lived, cross-thread allocations of message passing. A library can
//! only do this for the whole program, so the choice is documented in the
//! README's feature table, and the library never installs two allocators:
//! when heap profiling is built it will take precedence, because a profile of
//! a different allocator is what the user asked for.

/// The allocator every allocation goes through when `mimalloc` is on.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
