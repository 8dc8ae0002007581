//! `mmap-config`: the config file parsed straight from a memory map, and
//! the guard that keeps a file truncated under the map from killing the
//! daemon.
//!
//! # The hazard
//!
//! A page of a file mapping that lies past the file's end, because the
//! file was truncated after it was mapped (an editor's truncate-then-write,
//! say), cannot be read: the kernel sends SIGBUS, whose default action
//! ends the process. A daemon that reloads its config while someone edits
//! the file must survive that.
//!
//! # The guard
//!
//! While a map is being read, its address range sits in one of a few
//! slots ([`SLOTS`]). A SIGBUS handler, installed once, checks the
//! faulting address against the slots: inside one, it maps a page of
//! zeros over the faulting page (`mmap` with `MAP_FIXED`), marks the slot,
//! and returns, so the read goes on and sees zeros. The loader then finds
//! the mark and refuses the result: "truncated while it was read", a
//! failed load like any other (a reload keeps the old configuration, and
//! the rest of the write, a new event, brings the next one). A SIGBUS
//! outside every slot is not ours: the handler puts back the disposition
//! it replaced and returns, the access faults again, and that disposition
//! acts as it would have.
//!
//! # What it is for
//!
//! docs/PERFORMANCE.md ("Config load") measures it against a plain read:
//! a config file is small, and a map costs a system call and a page fault
//! per page that a read's copy does not. It is kept for parity with the
//! 1.x crate's flag, and for large generated files, where it saves the
//! copy.

use std::io;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How many loads may be guarded at once; a load that finds every slot
/// taken reads the file with a copy instead.
pub(super) const SLOTS: usize = 8;

/// One guarded address range, `[start, end)`; `start == 0` when free.
struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    /// Set by the SIGBUS handler when it covered a page in this range.
    faulted: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // one fresh value per slot
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
};

static GUARDED: [Slot; SLOTS] = [FREE; SLOTS];

/// The page size, read once before the handler is installed.
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// The SIGBUS disposition the handler replaced, put back for faults that
/// are not ours. Written once, before the handler is installed.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs the SIGBUS handler, once per process.
fn install() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        PAGE_SIZE.store(usize::try_from(page).unwrap_or(4096), Ordering::Release);
        // SAFETY: a zeroed sigaction is a valid value to fill in; the
        // handler has the SA_SIGINFO signature; `previous` receives the
        // disposition in place, which is stored before any SIGBUS can
        // reach the new handler for one of our ranges (none is
        // registered yet).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, &action, &mut previous) != 0 {
                return Err(io::Error::last_os_error().raw_os_error().unwrap_or(0));
            }
            let _ = PREVIOUS.set(previous);
        }
        Ok(())
    });
    installed.map_err(io::Error::from_raw_os_error)
}

/// The SIGBUS handler. Async-signal-safe: atomics, `mmap` and `sigaction`
/// (system calls) only.
extern "C" fn on_sigbus(_signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let address = unsafe { (*info).si_addr() } as usize;
    let page = PAGE_SIZE.load(Ordering::Acquire);
    for slot in &GUARDED {
        let start = slot.start.load(Ordering::Acquire);
        let end = slot.end.load(Ordering::Acquire);
        if start != 0 && (start..end).contains(&address) {
            let page_start = address & !(page - 1);
            // SAFETY: the page lies inside a mapping this process made and
            // still holds (the slot is cleared before it is unmapped); a
            // fixed anonymous mapping replaces that one page with zeros.
            let covered = unsafe {
                libc::mmap(
                    page_start as *mut libc::c_void,
                    page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if covered != libc::MAP_FAILED {
                slot.faulted.store(true, Ordering::Release);
                return;
            }
        }
    }
    // Not ours: put the previous disposition back; the access faults
    // again and that disposition acts on it.
    if let Some(previous) = PREVIOUS.get() {
        // SAFETY: `previous` is the disposition sigaction returned.
        unsafe { libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut()) };
    }
}

/// Holds a slot for the life of one guarded read.
struct Guard(&'static Slot);

impl Guard {
    fn take(start: usize, len: usize) -> Option<Guard> {
        GUARDED.iter().find_map(|slot| {
            slot.start
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Acquire)
                .ok()?;
            slot.faulted.store(false, Ordering::Release);
            slot.end.store(start + len, Ordering::Release);
            slot.start.store(start, Ordering::Release);
            Some(Guard(slot))
        })
    }

    fn faulted(&self) -> bool {
        self.0.faulted.load(Ordering::Acquire)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.end.store(0, Ordering::Release);
        self.0.start.store(0, Ordering::Release);
    }
}

/// Maps `file` (already opened and checked by the caller, of `len` bytes,
/// at most the config size limit) and runs `parse` on its bytes under the
/// guard. `Ok(None)` when every slot is taken: the caller reads with a
/// copy instead.
///
/// # Errors
///
/// The map's error, or "truncated while it was read" when the guard
/// caught a fault; the parse's result is then discarded.
pub(super) fn with_mapped<T>(
    file: &std::fs::File,
    path: &Path,
    parse: impl FnOnce(&[u8]) -> T,
) -> io::Result<Option<T>> {
    install()?;
    // SAFETY: a private, read-only map of a regular file. Another process
    // may change the file under it, which Rust sees as bytes changing
    // behind a shared reference: the accepted hazard of mapping a file
    // that others write (docs/configuration.md, "mmap-config"). The parse
    // only reads the bytes, copies out every value it keeps, and its
    // result is discarded when the file was truncated under the map (the
    // guard below); a change without truncation reads like a read racing
    // a write, and the next change event reloads again.
    let map = unsafe { memmap2::Mmap::map(file)? };
    let Some(guard) = Guard::take(map.as_ptr() as usize, map.len()) else {
        return Ok(None);
    };
    let parsed = parse(&map);
    if guard.faulted() {
        drop(guard);
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{} was truncated while it was read (mmap-config); nothing of it was applied",
                path.display()
            ),
        ));
    }
    drop(guard);
    drop(map);
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A file of `pages` pages of `b'#'` (TOML comments), open for
    /// reading, and a second handle to truncate it with.
    fn file_of(pages: usize) -> (tempfile::NamedTempFile, std::fs::File) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let page = 4096;
        let mut text = vec![b'#'; pages * page];
        text.push(b'\n');
        file.write_all(&text).unwrap();
        file.flush().unwrap();
        let reader = std::fs::File::open(file.path()).unwrap();
        (file, reader)
    }

    #[test]
    fn a_file_truncated_under_the_map_is_an_error_not_a_sigbus() {
        let (file, reader) = file_of(3);
        let result = with_mapped(&reader, file.path(), |bytes| {
            // Truncated after it was mapped, before its pages are read.
            file.as_file().set_len(0).unwrap();
            bytes.iter().map(|&b| u64::from(b)).sum::<u64>()
        });
        let err = result.expect_err("a truncated file is refused");
        assert!(
            err.to_string().contains("truncated while it was read"),
            "{err}"
        );
        // The guard is released: the next load works.
        let (file, reader) = file_of(1);
        let sum = with_mapped(&reader, file.path(), |bytes| bytes.len()).unwrap();
        assert_eq!(sum, Some(4097));
    }

    /// Run in a child process by the next test: a truncated map read
    /// outside any guard, which must still end in SIGBUS.
    #[test]
    #[ignore = "a child of a_fault_outside_every_guard_keeps_its_default_action"]
    fn touch_a_truncated_map_unguarded() {
        install().unwrap();
        let (file, reader) = file_of(3);
        // SAFETY: as in `with_mapped`; this child exists to fault.
        let map = unsafe { memmap2::Mmap::map(&reader).unwrap() };
        file.as_file().set_len(0).unwrap();
        let sum: u64 = map.iter().map(|&b| u64::from(b)).sum();
        println!("read {sum} without a fault");
    }

    #[test]
    fn a_fault_outside_every_guard_keeps_its_default_action() {
        use std::os::unix::process::ExitStatusExt;
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "config::mapped::tests::touch_a_truncated_map_unguarded",
                "--ignored",
                "--nocapture",
            ])
            .output()
            .unwrap()
            .status;
        assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}");
    }
}
