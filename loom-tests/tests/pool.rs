//! loom models of the message pool's hand-out and recycle paths
//! (`actors/src/pool.rs`).
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p proc-daemon-loom-tests --release --test pool
//! ```
//!
//! What loom sees, and what it does not: the pool's own atomics (the
//! counter that hands out a slab's untouched blocks, the hit and miss
//! counters) go through the crate's loom shim, so loom explores every
//! interleaving of them. The queues that hold given-back blocks are
//! crossbeam-queue's `ArrayQueue` and `SegQueue`, built on std atomics that
//! loom does not instrument; the models treat each push and pop as one
//! atomic step (crossbeam's own tests check the queues). So these models
//! check the pool's logic around the queues (which path a block takes, and
//! that no block is handed to two owners), not the queues' internals.
#![cfg(loom)]

use std::alloc::Layout;
use std::ptr::NonNull;

use loom::sync::Arc;
use loom::thread;
use proc_daemon_actors::pool::ModelPool;

/// A layout of the smallest class (64-byte blocks).
fn small() -> Layout {
    Layout::from_size_align(48, 8).unwrap()
}

/// Writes `owner` over the block, gives loom a chance to run another
/// thread, and checks that nobody else wrote to it meanwhile.
fn hold(block: NonNull<u8>, owner: u8) {
    // SAFETY: a block handed out by the pool is at least 48 writable bytes
    // that the caller alone owns until it frees it.
    unsafe { block.as_ptr().write_bytes(owner, 48) };
    thread::yield_now();
    // SAFETY: as above; still owned by the caller.
    let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), 48) };
    assert!(
        bytes.iter().all(|&b| b == owner),
        "a block was handed to two owners"
    );
}

/// Two threads race for a class's only untouched block: one gets it (a
/// hit), the other falls back to the allocator (a miss), never both the
/// same block. Freed, the slab block is recycled and the allocator's block
/// goes back to the allocator; the next allocation hits the recycled one.
#[test]
fn two_threads_race_for_the_last_untouched_block() {
    loom::model(|| {
        // 256 bytes: 64 a class, so one block of 64 and no other class.
        let pool = Arc::new(ModelPool::new(256));
        let threads: Vec<_> = (1..=2u8)
            .map(|owner| {
                let pool = pool.clone();
                thread::spawn(move || {
                    let block = pool.allocate(small());
                    hold(block, owner);
                    (pool.owns(block), block.as_ptr().addr())
                })
            })
            .collect();
        let results: Vec<(bool, usize)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|(from_slab, _)| *from_slab).count(),
            1,
            "exactly one thread got the slab's block: {results:?}"
        );
        assert_eq!(pool.hits_and_misses(), (1, 1));
        // Give both back: the threads are done with them.
        for (_, addr) in results {
            let block = NonNull::new(addr as *mut u8).unwrap();
            // SAFETY: each block came from this pool's `allocate` with
            // `small()` and is freed once, here.
            unsafe { pool.free(block, small()) };
        }
        let again = pool.allocate(small());
        assert!(pool.owns(again), "the recycled block is handed out again");
        assert_eq!(pool.hits_and_misses(), (2, 1));
        // SAFETY: from this pool, freed once.
        unsafe { pool.free(again, small()) };
    });
}

/// Two threads each take a block, use it, give it back, and take one
/// again, from a class of two blocks: the second round is served from the
/// recycled blocks, every allocation is counted once, and no block is ever
/// held by both.
#[test]
fn blocks_recycled_between_threads_are_never_shared() {
    loom::model(|| {
        // 512 bytes: 128 a class, so two blocks of 64 (and one of 128).
        let pool = Arc::new(ModelPool::new(512));
        let threads: Vec<_> = (1..=2u8)
            .map(|owner| {
                let pool = pool.clone();
                thread::spawn(move || {
                    for _ in 0..2 {
                        let block = pool.allocate(small());
                        hold(block, owner);
                        assert!(pool.owns(block), "two blocks for two threads: never a miss");
                        // SAFETY: from this pool with `small()`, freed once.
                        unsafe { pool.free(block, small()) };
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(pool.hits_and_misses(), (4, 0));
    });
}
