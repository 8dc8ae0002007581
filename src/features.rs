//! The one feature combination that cannot build stops the build here,
//! with words: proc-daemon without `tokio`.
//!
//! Every flag of the API reference's feature table exists in `Cargo.toml`
//! and is built. While a flag's module was still to be written, it stopped
//! the build here with a `compile_error!` naming what was missing, so that
//! no flag ever compiled to nothing.

#[cfg(not(feature = "tokio"))]
compile_error!(
    "proc-daemon needs the `tokio` feature (on by default): its executor runs a tokio \
     current-thread runtime on every worker thread. Keep default features, or add \
     `features = [\"tokio\"]`."
);
