//! Heap profiles with `dhat`: every allocation's size, lifetime and
//! call stack, written as JSON for the dhat viewer
//! (<https://nnethercote.github.io/dh_view/dh_view.html>).
//!
//! ```no_run
//! use proc_daemon::profiling::heap::HeapProfiler;
//!
//! let hp = HeapProfiler::start(Some("heap_profile.json"))?;
//! // ... run workload ...
//! hp.stop();
//! # Ok::<(), proc_daemon::Error>(())
//! ```
//!
//! dhat sees allocations only through its own global allocator, which
//! this feature installs for the whole program. With `mimalloc` on as
//! well, heap profiling wins: mimalloc is not installed, because a
//! profile of another allocator than the one in use is what was asked
//! for. The allocator slows every allocation while a profile runs, and
//! a little even while none does.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// The allocator dhat needs, for every allocation of the program.
#[global_allocator]
static DHAT: dhat::Alloc = dhat::Alloc;

/// Set while a profile runs: dhat allows one at a time.
static RUNNING: AtomicBool = AtomicBool::new(false);

/// A heap profile being taken. One at a time per process.
#[derive(Debug)]
pub struct HeapProfiler {
    path: PathBuf,
    profiler: Option<dhat::Profiler>,
}

impl HeapProfiler {
    /// Starts recording allocations; [`stop`](Self::stop) writes them to
    /// `path` (default `dhat-heap.json` in the working directory).
    ///
    /// # Errors
    ///
    /// A heap profile is already running, or `path` cannot be written
    /// (checked now, by creating the file, so that the profile is not
    /// lost at the end).
    pub fn start(path: Option<impl AsRef<Path>>) -> Result<HeapProfiler> {
        let path = path.map_or_else(
            || PathBuf::from("dhat-heap.json"),
            |p| p.as_ref().to_owned(),
        );
        if RUNNING.swap(true, Ordering::AcqRel) {
            return Err(Error::profiling(
                "a heap profile is already being taken in this process; stop it first",
            ));
        }
        if let Err(err) = std::fs::File::create(&path) {
            RUNNING.store(false, Ordering::Release);
            return Err(Error::profiling(format!(
                "cannot write the heap profile to {}: {err}",
                path.display()
            )));
        }
        let profiler = dhat::Profiler::builder().file_name(&path).build();
        Ok(HeapProfiler {
            path,
            profiler: Some(profiler),
        })
    }

    /// Where the profile is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops and writes the profile. (Dropping the profiler does too.)
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(profiler) = self.profiler.take() {
            drop(profiler);
            RUNNING.store(false, Ordering::Release);
        }
    }
}

impl Drop for HeapProfiler {
    fn drop(&mut self) {
        self.finish();
    }
}
