//! The message pool: pre-allocated blocks for the allocations every
//! message makes, sized by `performance.memory_pool_size`.
//!
//! ```
//! use proc_daemon_actors::{pool, support};
//!
//! // Once per process, before the first message (a daemon does this from
//! // its config, `performance.memory_pool_size`). Later calls are refused:
//! // blocks already handed out must go back to the allocator they came
//! // from.
//! let _ = support::install_message_pool(1 << 20);
//! let stats = pool::stats();
//! assert!(stats.installed_bytes == 0 || stats.installed_bytes >= 1 << 19);
//! ```
//!
//! # What is pooled, and why
//!
//! Every `tell` allocates twice: the envelope that carries the message
//! through the mailbox, and the future that handles it (its type depends on
//! the message, so the actor's loop holds it boxed). An `ask` adds its reply
//! channel and its request future. The envelope and the handling future go
//! through this pool; the reply channel is tokio's and is not pooled.
//!
//! # Design
//!
//! Four size classes (64, 128, 256 and 512 bytes), every block 64-byte
//! aligned. The pool's bytes are split evenly between the classes. Each
//! class takes its bytes from the global allocator up front, as one slab,
//! and cuts it into blocks. A class hands out its blocks in three ways, in
//! this order:
//!
//! 1. a block given back earlier, from a `crossbeam-queue` [`ArrayQueue`]
//!    of at most `RECYCLED_CAPACITY` (256) blocks;
//! 2. a block given back while that queue was full, from a
//!    `crossbeam-queue` [`SegQueue`] (the spill);
//! 3. the slab's next block that was never handed out: a counter, bumped
//!    with one atomic add.
//!
//! - An allocation that fits a class takes a block, or, when all three are
//!   empty, allocates a block of the class's layout from the global
//!   allocator (a miss).
//! - Freeing a block of the slab puts it back in the queue, or in the spill
//!   when the queue is full; freeing a missed block returns it to the
//!   global allocator. The block's address says which it is.
//! - An allocation larger than 512 bytes or more aligned than 64 bytes, or
//!   any allocation while the pool is off (size 0, or never installed),
//!   goes to the global allocator with its own layout.
//!
//! The choice depends only on the layout, on the pool's configuration,
//! which is fixed at the first use (installing is refused afterwards), and
//! on the address, so freeing always takes the same path as allocating.
//!
//! Invariants: every block of a slab is in exactly one place: below the
//! counter (never handed out), with an owner, in the queue, or in the
//! spill. The counter only grows, and a block leaves the part below it
//! once. Blocks in the queue and the spill are owned by nobody else.
//!
//! # Why one slab, touched lazily, and why the counter
//!
//! A slab is reserved address space: the kernel backs a page only when a
//! block on it is first written. An idle daemon's resident memory holds
//! the blocks it has used, not the whole pool, and the process's exit does
//! not have to tear down pages nothing touched. The first version
//! allocated every block on its own, which wrote the allocator's header of
//! each: 1 MiB of pool made 2.3 MiB resident, and unmapping it added about
//! 0.15 ms to the daemon's exit (docs/performance-history.md, "Daemon").
//!
//! The second version kept every free block in one `ArrayQueue` as large
//! as the slab. That queue is written in full when it is made (a stamp and
//! a pointer per slot): 123 KB for 1 MiB of pool, resident from the start,
//! which cost the daemon's exit 15–17 µs. And a queue is FIFO: a steady
//! load cycled through every block of the slab, so the whole slab soon
//! became resident and each block came back cold. With the counter, blocks
//! are handed out in address order only when nothing given back is
//! waiting, so the blocks in use are about as many as the most messages
//! ever in flight at once, and the memory they cover is all that becomes
//! resident. The queue stays small (`RECYCLED_CAPACITY` slots) because
//! it only has to hold what is given back between two allocations; a
//! burst beyond it goes to the spill, which grows and shrinks with it.

use std::alloc::{Layout, alloc, dealloc, handle_alloc_error};
use std::ptr::NonNull;
#[cfg(not(loom))]
use std::sync::OnceLock;

use crate::loom::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_queue::{ArrayQueue, SegQueue};

/// The block sizes, smallest first.
pub(crate) const CLASS_SIZES: [usize; 4] = [64, 128, 256, 512];
/// The alignment of every pooled block.
pub(crate) const BLOCK_ALIGN: usize = 64;
/// The most given-back blocks a class keeps in its queue (16 bytes a
/// slot); more go to its spill.
pub(crate) const RECYCLED_CAPACITY: usize = 256;

/// A free block. Plain memory owned by the pool, so it may move between
/// threads.
struct Block(NonNull<u8>);

// SAFETY: a `Block` is an exclusively owned, unaliased allocation with no
// thread affinity; sending it to another thread moves that ownership.
unsafe impl Send for Block {}

#[derive(Debug)]
struct Class {
    layout: Layout,
    /// Blocks given back, up to `RECYCLED_CAPACITY`.
    recycled: ArrayQueue<Block>,
    /// Blocks given back while `recycled` was full.
    spilled: SegQueue<Block>,
    /// The slab's first block: blocks `0..never_used` have been handed out
    /// at some time, the others never.
    slab_start: NonNull<u8>,
    /// The index of the slab's first block never handed out. It may end a
    /// little past `blocks`: allocations racing for the last block each
    /// add one.
    never_used: AtomicUsize,
    /// How many blocks the slab holds.
    blocks: usize,
}

// SAFETY: `slab_start` only locates the slab, which the class owns for the
// life of the process; every block it leads to is handed to one owner at a
// time through the atomic counter and the queues.
unsafe impl Send for Class {}
// SAFETY: as for `Send`: shared access only reads `slab_start`, and the
// counter and the queues are thread-safe.
unsafe impl Sync for Class {}

impl Class {
    /// The slab's address range, `start..end`: a freed block inside it goes
    /// back to the class.
    fn slab(&self) -> std::ops::Range<usize> {
        let start = self.slab_start.as_ptr().addr();
        start..start + self.blocks * self.layout.size()
    }

    /// A free block, or `None` when the class has none left.
    fn take(&self) -> Option<NonNull<u8>> {
        if let Some(Block(block)) = self.recycled.pop() {
            return Some(block);
        }
        if let Some(Block(block)) = self.spilled.pop() {
            return Some(block);
        }
        // The load keeps a used-up slab from bumping the counter forever.
        if self.never_used.load(Ordering::Relaxed) < self.blocks {
            let index = self.never_used.fetch_add(1, Ordering::Relaxed);
            if index < self.blocks {
                // SAFETY: `index < blocks`, so the block lies inside the
                // slab; the counter hands each index out once.
                return Some(unsafe { self.slab_start.add(index * self.layout.size()) });
            }
        }
        None
    }

    /// Takes back a block of this class's slab.
    fn give_back(&self, block: NonNull<u8>) {
        if let Err(block) = self.recycled.push(Block(block)) {
            self.spilled.push(block);
        }
    }
}

/// The process's pool. `classes` is empty when the pool is off.
#[derive(Debug)]
struct Pool {
    classes: Vec<Class>,
    installed_bytes: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[cfg(not(loom))]
static POOL: OnceLock<Pool> = OnceLock::new();

/// The largest pool [`install_message_pool`](crate::support::install_message_pool) accepts: 1 GiB. The pool is allocated
/// whole at start, so a mistyped size (`1e12`) would otherwise ask the
/// allocator for a terabyte.
pub const MAX_BYTES: usize = 1 << 30;

/// Why [`install_message_pool`](crate::support::install_message_pool) did not configure the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The pool was already configured, or already used: its
    /// configuration is fixed for the life of the process.
    #[error(
        "the message pool is already configured ({installed_bytes} bytes); it is set once per process, before the first message"
    )]
    AlreadyInstalled {
        /// The size it has.
        installed_bytes: usize,
    },
    /// More than [`MAX_BYTES`] was asked for.
    #[error(
        "a message pool of {bytes} bytes is larger than the most allowed, {MAX_BYTES} bytes (1 GiB)"
    )]
    TooLarge {
        /// The size asked for.
        bytes: usize,
    },
    /// The allocator could not give the pool its memory. The pool stays
    /// unconfigured, so a later `install` may try a smaller size.
    #[error(
        "could not allocate the message pool's {bytes} bytes: the allocator refused (out of memory, or a memory limit)"
    )]
    OutOfMemory {
        /// The size asked for.
        bytes: usize,
    },
}

/// Configures the pool with `bytes` of pre-allocated blocks (0 turns it
/// off). Only the first configuration counts, and a message sent before it
/// fixes the pool as off.
///
/// # Errors
///
/// [`InstallError::AlreadyInstalled`] if the pool was already configured
/// or used; [`InstallError::TooLarge`] above [`MAX_BYTES`];
/// [`InstallError::OutOfMemory`] if the memory cannot be allocated (never
/// an abort).
#[cfg(not(loom))]
pub(crate) fn install(bytes: usize) -> Result<(), InstallError> {
    if bytes > MAX_BYTES {
        return Err(InstallError::TooLarge { bytes });
    }
    let already = |pool: &Pool| InstallError::AlreadyInstalled {
        installed_bytes: pool.installed_bytes,
    };
    if let Some(pool) = POOL.get() {
        return Err(already(pool));
    }
    let fresh = Pool::try_with_bytes(bytes).ok_or(InstallError::OutOfMemory { bytes })?;
    // Another thread may have configured (or used) the pool meanwhile; then
    // the fresh one, never handed out, is freed here.
    POOL.set(fresh)
        .map_err(|_unused| already(POOL.get().expect("set by the other thread")))
}

#[cfg(not(loom))]
fn pool() -> &'static Pool {
    POOL.get_or_init(Pool::off)
}

/// How the pool has been used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// The bytes pre-allocated (0: the pool is off).
    pub installed_bytes: usize,
    /// Allocations served from a free block.
    pub hits: u64,
    /// Allocations that fit a class with no free block left.
    pub misses: u64,
}

/// The pool's configuration and counters.
#[cfg(not(loom))]
pub fn stats() -> PoolStats {
    let pool = pool();
    PoolStats {
        installed_bytes: pool.installed_bytes,
        hits: pool.hits.load(Ordering::Relaxed),
        misses: pool.misses.load(Ordering::Relaxed),
    }
}

impl Pool {
    /// The pool switched off: no classes, every allocation goes to the
    /// global allocator.
    fn off() -> Pool {
        Pool {
            classes: Vec::new(),
            installed_bytes: 0,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A pool of `bytes`; `None` if a slab cannot be allocated (the slabs
    /// already allocated are freed by the partial pool's `Drop`).
    fn try_with_bytes(bytes: usize) -> Option<Pool> {
        let per_class = bytes / CLASS_SIZES.len();
        let mut pool = Pool::off();
        for size in CLASS_SIZES {
            let blocks = per_class / size;
            if blocks == 0 {
                continue;
            }
            let layout = Layout::from_size_align(size, BLOCK_ALIGN).expect("a valid class layout");
            let slab_layout =
                Layout::from_size_align(blocks * size, BLOCK_ALIGN).expect("a valid slab layout");
            // Freed only if the pool is dropped, which the process's pool
            // never is (see `Drop for Pool`).
            let slab = try_allocate_with(slab_layout)?;
            pool.installed_bytes += blocks * size;
            pool.classes.push(Class {
                layout,
                recycled: ArrayQueue::new(blocks.min(RECYCLED_CAPACITY)),
                spilled: SegQueue::new(),
                slab_start: slab,
                never_used: AtomicUsize::new(0),
                blocks,
            });
        }
        Some(pool)
    }

    /// A pool of `bytes`, for the unit tests.
    #[cfg(all(test, not(loom)))]
    fn with_bytes(bytes: usize) -> Pool {
        Pool::try_with_bytes(bytes).expect("a test pool's memory")
    }

    fn class_for(&self, layout: Layout) -> Option<&Class> {
        if layout.align() > BLOCK_ALIGN {
            return None;
        }
        self.classes
            .iter()
            .find(|class| layout.size() <= class.layout.size())
    }
}

/// The process's pool is a static and is never dropped. What is dropped:
/// the unit tests' own pools, which give every block back first; a pool
/// whose construction failed part-way (its classes so far); and a pool
/// built by an `install` that lost the race to configure the process's
/// pool. The last two never handed a block out.
impl Drop for Pool {
    fn drop(&mut self) {
        for class in &self.classes {
            let layout = Layout::from_size_align(class.slab().len(), BLOCK_ALIGN)
                .expect("the slab's layout when it was allocated");
            // SAFETY: the slab was allocated with this layout and is freed
            // once, here; the pool is private, and no block of it is in use
            // when it is dropped (see above).
            unsafe { dealloc(class.slab_start.as_ptr(), layout) };
        }
    }
}

/// Allocates `layout` from the global allocator; `None` when it refuses.
fn try_allocate_with(layout: Layout) -> Option<NonNull<u8>> {
    if layout.size() == 0 {
        return Some(allocate_with(layout));
    }
    // SAFETY: `layout` has a non-zero size (checked above).
    NonNull::new(unsafe { alloc(layout) })
}

/// Allocates `layout` from the global allocator; a zero-sized layout gets a
/// dangling, well-aligned pointer.
fn allocate_with(layout: Layout) -> NonNull<u8> {
    if layout.size() == 0 {
        // A zero-sized value needs an aligned, non-null pointer and no memory.
        return NonNull::new(std::ptr::without_provenance_mut(layout.align()))
            .expect("an alignment is never 0");
    }
    // SAFETY: `layout` has a non-zero size (checked above).
    let raw = unsafe { alloc(layout) };
    NonNull::new(raw).unwrap_or_else(|| handle_alloc_error(layout))
}

impl Pool {
    /// Allocates memory for a value of `layout` from this pool; see the
    /// module docs for where it comes from.
    fn allocate(&self, layout: Layout) -> NonNull<u8> {
        if layout.size() == 0 {
            return allocate_with(layout);
        }
        match self.class_for(layout) {
            Some(class) => match class.take() {
                Some(block) => {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    block
                }
                None => {
                    self.misses.fetch_add(1, Ordering::Relaxed);
                    allocate_with(class.layout)
                }
            },
            None => allocate_with(layout),
        }
    }

    /// Frees memory from [`Pool::allocate`].
    ///
    /// # Safety
    ///
    /// `ptr` came from this pool's `allocate` with this `layout`, nothing
    /// else frees it, and nothing uses it afterwards.
    unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() == 0 {
            return;
        }
        match self.class_for(layout) {
            Some(class) if class.slab().contains(&ptr.as_ptr().addr()) => class.give_back(ptr),
            // SAFETY: a block of a class from outside its slab is a miss,
            // which `allocate` took from the global allocator with the
            // class's layout; the caller gives up `ptr`.
            Some(class) => unsafe { dealloc(ptr.as_ptr(), class.layout) },
            // SAFETY: outside every class, `allocate` used the global
            // allocator with this very layout; the caller gives up `ptr`.
            None => unsafe { dealloc(ptr.as_ptr(), layout) },
        }
    }
}

/// Allocates memory for a value of `layout` from the process's pool. Free
/// it with [`free`] and the same layout.
#[cfg(not(loom))]
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    pool().allocate(layout)
}

/// Frees memory from [`allocate`].
///
/// # Safety
///
/// `ptr` came from [`allocate`] with this `layout`, nothing else frees it,
/// and nothing uses it afterwards. (Any value in it must already be
/// dropped or moved out.)
#[cfg(not(loom))]
pub(crate) unsafe fn free(ptr: NonNull<u8>, layout: Layout) {
    // SAFETY: the caller's guarantees are `Pool::free`'s, for the process's
    // pool, which `allocate` used.
    unsafe { pool().free(ptr, layout) }
}

/// One private pool, for the loom models (`loom-tests/tests/pool.rs`):
/// the process's pool is a static, and loom needs its objects created
/// inside each model run.
#[cfg(loom)]
#[derive(Debug)]
pub struct ModelPool(Pool);

#[cfg(loom)]
impl ModelPool {
    /// A pool of `bytes`, split between the classes as the process's is.
    pub fn new(bytes: usize) -> Self {
        ModelPool(Pool::try_with_bytes(bytes).expect("a model pool's memory"))
    }

    /// [`allocate`], from this pool.
    pub fn allocate(&self, layout: Layout) -> NonNull<u8> {
        self.0.allocate(layout)
    }

    /// [`free`], to this pool.
    ///
    /// # Safety
    ///
    /// As for `free`: `ptr` came from this pool's `allocate` with this
    /// `layout`, and nothing uses it afterwards.
    pub unsafe fn free(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's guarantees.
        unsafe { self.0.free(ptr, layout) }
    }

    /// Allocations served from a free block, and those that fell back to
    /// the allocator.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.0.hits.load(Ordering::SeqCst),
            self.0.misses.load(Ordering::SeqCst),
        )
    }

    /// Whether `ptr` is a block of one of the pool's slabs.
    pub fn owns(&self, ptr: NonNull<u8>) -> bool {
        let addr = ptr.as_ptr().addr();
        self.0
            .classes
            .iter()
            .any(|class| class.slab().contains(&addr))
    }
}

/// A value of type `T` in pool memory: a `Box` whose allocation comes from
/// the pool. Only the message path uses it, through [`crate::message`].
#[cfg(not(loom))]
pub(crate) struct PoolBox<T> {
    ptr: NonNull<T>,
}

// SAFETY: a `PoolBox<T>` owns its `T` exclusively, as a `Box<T>` does.
#[cfg(not(loom))]
unsafe impl<T: Send> Send for PoolBox<T> {}

#[cfg(not(loom))]
impl<T> PoolBox<T> {
    /// Moves `value` into pool memory.
    pub(crate) fn new(value: T) -> Self {
        let ptr = allocate(Layout::new::<T>()).cast::<T>();
        // SAFETY: `ptr` is valid for writes of a `T` and aligned for it
        // (its block is at least as large and as aligned as `T`'s layout).
        unsafe { ptr.as_ptr().write(value) };
        PoolBox { ptr }
    }

    /// Moves the value out and frees the memory.
    pub(crate) fn into_inner(self) -> T {
        let ptr = self.ptr;
        std::mem::forget(self);
        // SAFETY: `ptr` holds an initialised `T` that this box owned; after
        // the read nothing uses the memory but `free`, with the layout it
        // was allocated with.
        unsafe {
            let value = ptr.as_ptr().read();
            free(ptr.cast(), Layout::new::<T>());
            value
        }
    }

    /// The raw pointer, for type-erased owners that call
    /// [`PoolBox::from_raw`] exactly once later.
    pub(crate) fn into_raw(self) -> NonNull<T> {
        let ptr = self.ptr;
        std::mem::forget(self);
        ptr
    }

    /// Rebuilds the box from [`PoolBox::into_raw`].
    ///
    /// # Safety
    ///
    /// `ptr` came from `PoolBox::<T>::into_raw`, and this is the only call
    /// that takes it back.
    pub(crate) unsafe fn from_raw(ptr: NonNull<T>) -> Self {
        PoolBox { ptr }
    }
}

#[cfg(not(loom))]
impl<T> std::ops::Deref for PoolBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the box owns an initialised `T` until it is dropped.
        unsafe { self.ptr.as_ref() }
    }
}

#[cfg(not(loom))]
impl<T> std::ops::DerefMut for PoolBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { self.ptr.as_mut() }
    }
}

#[cfg(not(loom))]
impl<T> Drop for PoolBox<T> {
    fn drop(&mut self) {
        // SAFETY: the box owns an initialised `T`; it is dropped once here,
        // and then the memory is freed with the layout it was allocated
        // with.
        unsafe {
            std::ptr::drop_in_place(self.ptr.as_ptr());
            free(self.ptr.cast(), Layout::new::<T>());
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_pool_above_the_bound_is_refused_before_anything_is_allocated() {
        let bytes = MAX_BYTES + 1;
        assert_eq!(install(bytes), Err(InstallError::TooLarge { bytes }));
        assert_eq!(
            install(usize::MAX),
            Err(InstallError::TooLarge { bytes: usize::MAX })
        );
    }

    #[test]
    fn pool_boxes_of_every_class_and_beyond_round_trip() {
        let _ = install(64 * 1024);
        let mut small = PoolBox::new([1u8; 10]);
        small[0] = 9;
        assert_eq!(small[0], 9, "written through DerefMut");
        let mid = PoolBox::new([2u64; 20]);
        let big = PoolBox::new([3u64; 100]);
        let zero = PoolBox::new(());
        #[repr(align(128))]
        struct OverAligned(u8);
        let aligned = PoolBox::new(OverAligned(7));
        assert_eq!(small[9], 1);
        assert_eq!(mid[19], 2);
        assert_eq!(big[99], 3);
        assert_eq!(aligned.0, 7);
        assert_eq!((&*aligned as *const OverAligned as usize) % 128, 0);
        assert_eq!(zero.into_inner(), ());
        assert_eq!(big.into_inner()[0], 3);
        drop((small, mid, aligned));
    }

    #[test]
    fn values_with_drop_glue_are_dropped_once() {
        let _ = install(64 * 1024);
        let shared = std::sync::Arc::new(());
        let boxes: Vec<_> = (0..100).map(|_| PoolBox::new(shared.clone())).collect();
        assert_eq!(std::sync::Arc::strong_count(&shared), 101);
        let taken = boxes
            .into_iter()
            .enumerate()
            .filter_map(|(i, b)| {
                if i % 2 == 0 {
                    Some(b.into_inner())
                } else {
                    None
                }
            })
            .count();
        assert_eq!(taken, 50);
        assert_eq!(std::sync::Arc::strong_count(&shared), 1);
    }

    /// Takes `count` blocks of the smallest class of `pool`.
    fn take_blocks(pool: &Pool, count: usize) -> Vec<NonNull<u8>> {
        (0..count)
            .map(|_| pool.classes[0].take().expect("a free block"))
            .collect()
    }

    fn addresses(blocks: &[NonNull<u8>]) -> Vec<usize> {
        blocks.iter().map(|block| block.as_ptr().addr()).collect()
    }

    #[test]
    fn a_class_hands_out_given_back_blocks_before_untouched_ones() {
        // 512 bytes a class: eight blocks of 64 bytes.
        let pool = Pool::with_bytes(4 * 512);
        let class = &pool.classes[0];
        let start = class.slab().start;
        let mut out = take_blocks(&pool, 2);
        assert_eq!(
            addresses(&out),
            [start, start + 64],
            "untouched blocks in address order"
        );
        class.give_back(out.remove(0));
        out.extend(take_blocks(&pool, 2));
        assert_eq!(
            addresses(&out),
            [start + 64, start, start + 128],
            "the block given back comes first, then the next untouched one"
        );
        out.extend(take_blocks(&pool, 5));
        assert_eq!(out.last().map(|b| b.as_ptr().addr()), Some(start + 7 * 64));
        assert!(class.take().is_none(), "all eight are out");
        for block in out {
            class.give_back(block);
        }
    }

    #[test]
    fn blocks_given_back_beyond_the_queue_spill_and_are_handed_out_again() {
        let blocks = RECYCLED_CAPACITY + 44;
        let pool = Pool::with_bytes(4 * 64 * blocks);
        let class = &pool.classes[0];
        assert_eq!(class.blocks, blocks);
        let all = take_blocks(&pool, blocks);
        let mut expected = addresses(&all);
        assert!(class.take().is_none());
        for block in all {
            class.give_back(block);
        }
        assert_eq!(class.recycled.len(), RECYCLED_CAPACITY);
        assert_eq!(class.spilled.len(), 44);
        let again = take_blocks(&pool, blocks);
        assert!(class.take().is_none(), "no block is handed out twice");
        let mut seen = addresses(&again);
        seen.sort_unstable();
        expected.sort_unstable();
        assert_eq!(seen, expected, "every block comes back, once");
        for block in again {
            class.give_back(block);
        }
    }

    #[test]
    fn threads_taking_and_giving_back_never_share_a_block() {
        // Eight blocks for four threads that each hold up to three: the
        // class runs dry at times, and blocks move between threads.
        let pool = Pool::with_bytes(4 * 64 * 8);
        let rounds = if cfg!(miri) { 20 } else { 2_000 };
        std::thread::scope(|scope| {
            for id in 1..=4u8 {
                let class = &pool.classes[0];
                scope.spawn(move || {
                    for round in 0..rounds {
                        let held: Vec<NonNull<u8>> =
                            (0..1 + round % 3).filter_map(|_| class.take()).collect();
                        for block in &held {
                            // SAFETY: a taken block is 64 writable bytes
                            // that this thread alone owns until it gives
                            // it back.
                            unsafe { block.as_ptr().write_bytes(id, 64) };
                        }
                        std::thread::yield_now();
                        for block in held {
                            // SAFETY: as above; still owned by this thread.
                            let bytes = unsafe { std::slice::from_raw_parts(block.as_ptr(), 64) };
                            assert!(bytes.iter().all(|&b| b == id), "a block was shared");
                            class.give_back(block);
                        }
                    }
                });
            }
        });
        // Every block that was handed out came back. (All eight are handed
        // out only if the threads held eight at once at some point, which
        // the schedule decides: under Miri's 20 rounds it may not happen.)
        let class = &pool.classes[0];
        let handed_out = class.never_used.load(Ordering::Relaxed).min(class.blocks);
        assert_eq!(
            class.recycled.len() + class.spilled.len(),
            handed_out,
            "every block handed out came back"
        );
    }

    #[test]
    fn a_private_pool_counts_hits_and_misses_and_frees_each_where_it_came_from() {
        // 256 bytes: one 64-byte block, and no other class.
        let pool = Pool::with_bytes(4 * 64);
        let small = Layout::from_size_align(48, 8).unwrap();
        let big = Layout::from_size_align(1000, 8).unwrap();
        let blocks: Vec<NonNull<u8>> = (0..3).map(|_| pool.allocate(small)).collect();
        let outside = pool.allocate(big);
        let zero = pool.allocate(Layout::new::<()>());
        assert_eq!(pool.hits.load(Ordering::Relaxed), 1);
        assert_eq!(pool.misses.load(Ordering::Relaxed), 2);
        let in_slab = |block: &NonNull<u8>| pool.classes[0].slab().contains(&block.as_ptr().addr());
        assert_eq!(blocks.iter().filter(|b| in_slab(b)).count(), 1);
        for block in &blocks {
            // SAFETY: each block is 48 writable bytes this test owns.
            unsafe { block.as_ptr().write_bytes(0xAB, 48) };
        }
        // SAFETY: each pointer came from this pool's `allocate` with the
        // layout given here, and is freed once. The slab's block goes back
        // to its class, the misses and the large one to the allocator
        // (Miri reports a wrong layout or a leak).
        unsafe {
            for block in blocks {
                pool.free(block, small);
            }
            pool.free(outside, big);
            pool.free(zero, Layout::new::<()>());
        }
        assert_eq!(pool.classes[0].recycled.len(), 1);
    }

    #[test]
    fn misses_come_from_the_allocator_and_go_back_to_it() {
        // Whatever the process's pool is, taking more blocks than any
        // class holds makes misses; giving them all back frees the misses
        // to the allocator and the slab's blocks to the queue.
        let boxes: Vec<_> = (0..20_000).map(|i| PoolBox::new([i as u8; 48])).collect();
        for (i, b) in boxes.iter().enumerate() {
            assert_eq!(b[0], i as u8);
        }
        drop(boxes);
    }
}
