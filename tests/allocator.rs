//! With the `mimalloc` feature, the program's allocations come from mimalloc.
#![cfg(all(feature = "mimalloc", not(feature = "heap-profiling")))]

use std::ffi::c_void;

/// Whether mimalloc owns the memory at `p`.
fn in_mimalloc_heap(p: *const u8) -> bool {
    // SAFETY: `mi_is_in_heap_region` only compares the address with the
    // regions mimalloc has reserved; it never dereferences it.
    unsafe { libmimalloc_sys::mi_is_in_heap_region(p.cast::<c_void>()) }
}

#[test]
fn allocations_go_through_mimalloc() {
    // Linking proc-daemon is what installs the allocator.
    let config = Box::new(proc_daemon::Config::default());
    let small = Box::new(7u64);
    let large: Vec<u8> = vec![1; 4 << 20];
    let text = String::from("allocated on the heap");
    for p in [
        (&*config as *const proc_daemon::Config).cast::<u8>(),
        (&*small as *const u64).cast::<u8>(),
        large.as_ptr(),
        text.as_ptr(),
    ] {
        assert!(in_mimalloc_heap(p), "{p:?} is not in mimalloc's heap");
    }
    // A stack address is not, which shows the check can fail.
    let on_stack = 5u64;
    assert!(!in_mimalloc_heap((&on_stack as *const u64).cast()));
}
