//! kameo actors as supervised children (feature `kameo`).
//!
//! ```
//! use std::time::Duration;
//! use proc_daemon_actors::kameo_child::KameoChild;
//! use proc_daemon_actors::prelude::*;
//!
//! #[derive(kameo::Actor)]
//! struct Tally(u64);
//!
//! struct Bump;
//! impl kameo::message::Message<Bump> for Tally {
//!     type Reply = u64;
//!     async fn handle(&mut self, _: Bump, _ctx: &mut kameo::message::Context<Self, u64>) -> u64 {
//!         self.0 += 1;
//!         self.0
//!     }
//! }
//!
//! let executor = Executor::builder().worker_threads(1).build()?;
//! let root = Supervisor::builder().spawn(&executor);
//! let count = executor
//!     .spawn(async move {
//!         // The factory gives the kameo actor's `Args` for each incarnation.
//!         let tally = root
//!             .child("tally", || KameoChild::<Tally>::new(Tally(0)))
//!             .restart(RestartPolicy::OnFailure)
//!             .spawn()
//!             .await?;
//!         let count = tally.ask(Bump).await?;
//!         root.stop();
//!         root.wait_for_stop().await;
//!         Ok::<_, Box<dyn std::error::Error + Send + Sync>>(count)
//!     })
//!     .join()??;
//! assert_eq!(count, Ok(1));
//! # executor.shutdown(Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```
//!
//! A `KameoChild<K>` is a proc-daemon actor that owns one running kameo
//! actor `K`: it spawns it in `started` (kameo spawns with `tokio::spawn`,
//! so it runs on the child's executor worker), forwards every message `K`
//! handles to it as a kameo `ask`, and watches it. When the kameo actor
//! stops by itself, the child's incarnation ends with it (`Completed` for a
//! normal stop, `Failed` otherwise), so the supervisor restarts it under
//! its policy with fresh `Args` from the factory. Stopping the child stops
//! the kameo actor with `stop_gracefully`, and kills it after
//! [`KameoChild::stop_timeout`].
//!
//! The child's `ActorRef` is the stable handle: messages sent while the
//! kameo actor restarts wait in the child's mailbox and reach the next
//! kameo incarnation.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kameo::Reply;
use kameo::actor::Spawn;

use crate::actor::{Actor, BoxError, ExitReason, message_error};
use crate::context::Context;
use crate::message::Handler;
use crate::system::SystemMsg;

/// How long [`KameoChild`] waits for the kameo actor's graceful stop by
/// default before it kills it.
pub const DEFAULT_KAMEO_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A supervised proc-daemon actor running one kameo actor `K`. See the
/// module docs.
pub struct KameoChild<K: kameo::Actor> {
    args: Option<K::Args>,
    running: Option<kameo::actor::ActorRef<K>>,
    /// Set before this incarnation stops the kameo actor itself, so the
    /// watcher does not report that stop to the next incarnation.
    stopping_it: Arc<AtomicBool>,
    stop_timeout: Duration,
}

impl<K: kameo::Actor> fmt::Debug for KameoChild<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KameoChild")
            .field("actor", &std::any::type_name::<K>())
            .field("running", &self.running.is_some())
            .field("stop_timeout", &self.stop_timeout)
            .finish()
    }
}

impl<K: kameo::Actor> KameoChild<K> {
    /// A child that will spawn `K` with `args`.
    pub fn new(args: K::Args) -> Self {
        KameoChild {
            args: Some(args),
            running: None,
            stopping_it: Arc::new(AtomicBool::new(false)),
            stop_timeout: DEFAULT_KAMEO_STOP_TIMEOUT,
        }
    }

    /// How long to wait for the kameo actor's graceful stop before killing
    /// it (default [`DEFAULT_KAMEO_STOP_TIMEOUT`]). Keep it below the
    /// child's own shutdown timeout.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }
}

impl<K> Actor for KameoChild<K>
where
    K: kameo::Actor,
    K::Error: Clone,
{
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let args = self
            .args
            .take()
            .ok_or("a KameoChild was started twice; the factory must build a new one")?;
        let kameo_ref = <K as Spawn>::spawn(args);
        let watched = kameo_ref.clone();
        let me = ctx.actor_ref().clone();
        let incarnation = me.cell().system.incarnation();
        let stopping_it = self.stopping_it.clone();
        // Ends this incarnation when the kameo actor stops by itself. A stop
        // that `stopped` asked for is not reported: the system inbox
        // outlives the incarnation, and the report would end the next one.
        drop(ctx.executor().spawn(async move {
            let outcome = watched.wait_for_shutdown_result().await;
            if stopping_it.load(Ordering::Acquire) {
                return;
            }
            let message = match outcome {
                Ok(kameo::error::ActorStopReason::Normal) => SystemMsg::Complete,
                Ok(reason) => SystemMsg::Fail(message_error(format!(
                    "the kameo actor stopped: {reason:?}"
                ))),
                Err(error) => {
                    SystemMsg::Fail(message_error(format!("the kameo actor failed: {error:?}")))
                }
            };
            me.cell().system.send_to_incarnation(incarnation, message);
        }));
        self.running = Some(kameo_ref);
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        let Some(kameo_ref) = self.running.take() else {
            return;
        };
        self.stopping_it.store(true, Ordering::Release);
        if kameo_ref.is_alive() {
            let _ = kameo_ref.stop_gracefully().await;
            if tokio::time::timeout(self.stop_timeout, kameo_ref.wait_for_shutdown())
                .await
                .is_err()
            {
                tracing::warn!(actor = std::any::type_name::<K>(), timeout = ?self.stop_timeout, "kameo actor did not stop in time; killing it");
                kameo_ref.kill();
            }
        }
    }
}

/// Why a message forwarded to a kameo actor has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KameoError {
    /// The kameo actor was not running (it stopped, or is being replaced).
    #[error("the kameo actor is not running")]
    NotRunning,
    /// kameo refused or lost the message; the text is kameo's error.
    #[error("kameo: {0}")]
    Send(String),
}

impl<K, M> Handler<M> for KameoChild<K>
where
    K: kameo::Actor + kameo::message::Message<M>,
    K::Error: Clone,
    M: Send + 'static,
    <K::Reply as Reply>::Error: fmt::Debug,
{
    type Reply = Result<<K::Reply as Reply>::Ok, KameoError>;

    async fn handle(&mut self, msg: M, _ctx: &mut Context<Self>) -> Self::Reply {
        let kameo_ref = self.running.as_ref().ok_or(KameoError::NotRunning)?;
        kameo_ref.ask(msg).await.map_err(|error| match error {
            kameo::error::SendError::ActorNotRunning(_) | kameo::error::SendError::ActorStopped => {
                KameoError::NotRunning
            }
            other => KameoError::Send(format!("{:?}", other.map_msg(|_| ()))),
        })
    }
}
