//! The one check that a file the daemon opened is a regular file.
//!
//! Both the configuration file and the PID file must be regular files: a
//! FIFO blocks a read forever, `/dev/zero` never ends, and a write to a
//! device or through a link lands somewhere else. Each opens its file
//! without blocking (and the PID file without following a link), then
//! asks this module about the open descriptor, so that a file swapped
//! after a check by path cannot slip past.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileTypeExt;

/// `Ok` if `file` is a regular file; otherwise an error that says what it
/// is instead: "it is a FIFO; a `role` must be a regular file".
pub(crate) fn require_regular(file: &File, role: &str) -> io::Result<std::fs::Metadata> {
    let metadata = file.metadata()?;
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(metadata);
    }
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a device"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}; a {role} must be a regular file"),
    ))
}
