//! Profiling: CPU profiles with `pprof` (feature `profiling`) and heap
//! profiles with `dhat` (feature `heap-profiling`, in [`heap`]).
//!
//! ```no_run
//! use proc_daemon::profiling::CpuProfiler;
//!
//! let cpu = CpuProfiler::start()?;
//! // ... run workload ...
//! cpu.stop_to_file("cpu_profile.pb")?;
//! // Analyze with: go tool pprof cpu_profile.pb
//! # Ok::<(), proc_daemon::Error>(())
//! ```
//!
//! A running daemon with `monitoring.http_listen` also serves a profile at
//! `/debug/pprof/profile?seconds=N`, as Go's `net/http/pprof` does.
//!
//! # How stacks are taken
//!
//! The profiler samples every thread at [`DEFAULT_FREQUENCY_HZ`] from a
//! `SIGPROF` handler. It walks stacks by frame pointers (pprof's
//! `frame-pointer` unwinder), not with its default unwinder, which is
//! reported to crash inside the signal handler (pprof-rs issues #75 and
//! #203). Every address it reads is validated first, so code built
//! without frame pointers gives short stacks, never a crash. For full
//! stacks, build with `RUSTFLAGS="-C force-frame-pointers=yes"`.
//!
//! Errors (a second profile while one runs, an unwritable path) are
//! [`Error::Profiling`](crate::Error::Profiling), never panics.

#[cfg(feature = "heap-profiling")]
pub mod heap;

#[cfg(feature = "profiling")]
pub use cpu::{CpuProfiler, DEFAULT_FREQUENCY_HZ};

#[cfg(feature = "profiling")]
mod cpu {
    use std::io::Write;
    use std::path::Path;

    use pprof::protos::Message;

    use crate::error::{Error, Result};

    /// Samples per second, per thread: 99, not 100, so that sampling does
    /// not fall into step with work that runs every 10 ms.
    pub const DEFAULT_FREQUENCY_HZ: i32 = 99;

    /// A CPU profile being taken. One at a time per process.
    pub struct CpuProfiler {
        guard: pprof::ProfilerGuard<'static>,
    }

    impl std::fmt::Debug for CpuProfiler {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("CpuProfiler").finish_non_exhaustive()
        }
    }

    impl CpuProfiler {
        /// Starts sampling at [`DEFAULT_FREQUENCY_HZ`].
        ///
        /// # Errors
        ///
        /// A profile is already being taken in this process, or the
        /// profiling timer cannot be set.
        pub fn start() -> Result<CpuProfiler> {
            CpuProfiler::start_with_frequency(DEFAULT_FREQUENCY_HZ)
        }

        /// Starts sampling at `hz` samples per second (1 to 1000).
        ///
        /// # Errors
        ///
        /// As [`start`](Self::start), or `hz` is out of range.
        pub fn start_with_frequency(hz: i32) -> Result<CpuProfiler> {
            if !(1..=1000).contains(&hz) {
                return Err(Error::profiling(format!(
                    "a frequency of {hz} Hz is out of range: 1 to 1000"
                )));
            }
            let guard = pprof::ProfilerGuardBuilder::default()
                .frequency(hz)
                // Frames inside these libraries cannot be walked safely.
                .blocklist(&["libc", "libgcc", "pthread", "vdso"])
                .build()
                .map_err(|err| match err {
                    pprof::Error::Running => Error::profiling(
                        "a CPU profile is already being taken in this process; stop it first",
                    ),
                    other => Error::profiling(format!("the CPU profiler did not start: {other}")),
                })?;
            Ok(CpuProfiler { guard })
        }

        /// Stops and returns the profile as pprof protobuf bytes (what `go
        /// tool pprof` reads).
        ///
        /// # Errors
        ///
        /// The report cannot be built.
        pub fn stop_to_protobuf(self) -> Result<Vec<u8>> {
            let report =
                self.guard.report().build().map_err(|err| {
                    Error::profiling(format!("the CPU profile did not build: {err}"))
                })?;
            let profile = report.pprof().map_err(|err| {
                Error::profiling(format!("the CPU profile did not encode: {err}"))
            })?;
            Ok(profile.encode_to_vec())
        }

        /// Stops and writes the profile to `path` as pprof protobuf.
        ///
        /// # Errors
        ///
        /// The report cannot be built, or `path` cannot be written.
        pub fn stop_to_file(self, path: impl AsRef<Path>) -> Result<()> {
            let path = path.as_ref();
            // Opened first: a bad path fails before the profile is spent.
            let mut file = open(path)?;
            let bytes = self.stop_to_protobuf()?;
            file.write_all(&bytes)
                .map_err(|err| write_failed(path, &err))
        }

        /// Stops and writes the profile to `path` as a flame graph (SVG).
        ///
        /// # Errors
        ///
        /// The report cannot be built, or `path` cannot be written.
        pub fn stop_to_flamegraph(self, path: impl AsRef<Path>) -> Result<()> {
            let path = path.as_ref();
            let file = open(path)?;
            let report =
                self.guard.report().build().map_err(|err| {
                    Error::profiling(format!("the CPU profile did not build: {err}"))
                })?;
            report
                .flamegraph(std::io::BufWriter::new(file))
                .map_err(|err| Error::profiling(format!("writing {}: {err}", path.display())))
        }
    }

    fn open(path: &Path) -> Result<std::fs::File> {
        std::fs::File::create(path).map_err(|err| write_failed(path, &err))
    }

    fn write_failed(path: &Path, err: &std::io::Error) -> Error {
        Error::profiling(format!(
            "cannot write the profile to {}: {err}",
            path.display()
        ))
    }
}
