//! A supervised child for the tree benches (`scaling`'s tree and
//! `subsystems`): it counts its incarnations, so a bench can wait for a
//! restart by watching the count, and it fails or stops when told.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proc_daemon::actors::prelude::*;

/// A child that adds one to a shared count each time an incarnation of it
/// starts, and fails ([`Fail`]) or stops ([`Quit`]) when told.
#[derive(Debug)]
pub struct CountedChild {
    starts: Arc<AtomicU64>,
}

impl CountedChild {
    /// A child that counts its starts in `starts` (shared by every child of
    /// a bench, which waits for it to reach a total).
    pub fn new(starts: Arc<AtomicU64>) -> Self {
        Self { starts }
    }
}

impl Actor for CountedChild {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.starts.fetch_add(1, Ordering::Release);
        Ok(())
    }
}

/// Makes a [`CountedChild`] fail, which its supervisor sees as a failure
/// (and restarts it under `RestartPolicy::OnFailure` or `Always`).
#[derive(Debug)]
pub struct Fail;

impl Handler<Fail> for CountedChild {
    type Reply = ();
    async fn handle(&mut self, _: Fail, ctx: &mut Context<Self>) {
        ctx.fail("told to fail");
    }
}

/// Makes a [`CountedChild`] stop normally (not restarted under
/// `RestartPolicy::OnFailure`).
#[derive(Debug)]
pub struct Quit;

impl Handler<Quit> for CountedChild {
    type Reply = ();
    async fn handle(&mut self, _: Quit, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
