//! Feature flags that are declared but not built yet stop the build here.
//!
//! Every flag of the API reference's feature table exists in `Cargo.toml`
//! from the start, so that manifests written for the reference resolve. A
//! flag whose module is not written yet must not compile to nothing: a user
//! who asks for metrics and silently gets none has been misled. So each such
//! flag raises a `compile_error!` that names what is missing. The README's
//! feature table tracks the same status; when a module lands, its line here
//! goes away.

#[cfg(not(feature = "tokio"))]
compile_error!(
    "proc-daemon needs the `tokio` feature (on by default): its executor runs a tokio \
     current-thread runtime on every worker thread. Keep default features, or add \
     `features = [\"tokio\"]`."
);

#[cfg(feature = "async-std")]
compile_error!(
    "the `async-std` feature is not built yet: async-std is discontinued upstream, and \
     proc-daemon runs its actors on tokio. Remove the feature; it is tracked in the \
     README's feature table."
);
