//! The executor: a pool of worker threads, pinned to cores in NUMA order.
//!
//! Being built. What exists is [`topology`]: the NUMA nodes, cores and
//! processing units the process may use, which the workers will be placed
//! by. The worker pool itself (`performance.worker_threads`,
//! `thread_pinning`, `numa_aware`) is not built yet; the README's feature
//! table tracks it.

pub mod topology;
