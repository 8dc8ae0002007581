//! Coordination primitives: [`chan`], a multi-producer, multi-consumer
//! channel for handing work between threads and tasks outside the actor
//! system.
//!
//! ```
//! use proc_daemon::coord::chan;
//!
//! let (tx, rx) = chan::unbounded::<String>();
//! tx.send("hello".into()).ok();
//!
//! // Non-blocking receive
//! if let Ok(msg) = chan::try_recv(&rx) {
//!     println!("Got: {}", msg);
//! }
//! ```
//!
//! Actors talk through their mailboxes (`ActorRef::tell`); `chan` is for
//! the code around them: a thread pool that feeds results back, several
//! workers that share one queue of jobs. The subsystem event ring the
//! reference lists under the same heading needs no flag here:
//! [`SubsystemManager`](crate::SubsystemManager) is always available.

pub mod chan;
