//! A kameo 0.22 actor supervised as a child: spawned on the executor,
//! restarted under its policy after a panic, stopped gracefully.
#![cfg(feature = "kameo")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proc_daemon_actors::kameo_child::{KameoChild, KameoError};
use proc_daemon_actors::prelude::*;

mod common;
use common::{executor, run_within, shut_down, until_stopped};

/// Counts in its own state; records starts and graceful stops.
struct Tally {
    count: u64,
    starts: Arc<AtomicU32>,
    graceful_stops: Arc<AtomicU32>,
}

impl kameo::Actor for Tally {
    type Args = Self;
    type Error = std::convert::Infallible;

    async fn on_start(args: Self, _: kameo::actor::ActorRef<Self>) -> Result<Self, Self::Error> {
        args.starts.fetch_add(1, Ordering::SeqCst);
        Ok(args)
    }

    async fn on_stop(
        &mut self,
        _: kameo::actor::WeakActorRef<Self>,
        reason: kameo::error::ActorStopReason,
    ) -> Result<(), Self::Error> {
        if matches!(reason, kameo::error::ActorStopReason::Normal) {
            self.graceful_stops.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

struct Bump;
impl kameo::message::Message<Bump> for Tally {
    type Reply = u64;
    async fn handle(&mut self, _: Bump, _ctx: &mut kameo::message::Context<Self, u64>) -> u64 {
        self.count += 1;
        self.count
    }
}

struct Crash;
impl kameo::message::Message<Crash> for Tally {
    type Reply = ();
    async fn handle(&mut self, _: Crash, _ctx: &mut kameo::message::Context<Self, ()>) {
        panic!("the kameo actor was told to crash");
    }
}

#[test]
fn a_kameo_actor_is_restarted_under_its_policy_and_stopped_gracefully() {
    let executor = executor();
    let root = Supervisor::builder().spawn(&executor);
    let starts = Arc::new(AtomicU32::new(0));
    let graceful_stops = Arc::new(AtomicU32::new(0));
    run_within(&executor, Duration::from_secs(20), {
        let root = root.clone();
        let starts = starts.clone();
        let graceful_stops = graceful_stops.clone();
        async move {
            let (s, g) = (starts.clone(), graceful_stops.clone());
            let tally = root
                .child("tally", move || {
                    KameoChild::<Tally>::new(Tally {
                        count: 0,
                        starts: s.clone(),
                        graceful_stops: g.clone(),
                    })
                })
                .restart(RestartPolicy::OnFailure)
                .spawn()
                .await
                .unwrap();
            assert_eq!(tally.ask(Bump).await, Ok(Ok(1)));
            assert_eq!(tally.ask(Bump).await, Ok(Ok(2)));

            // The kameo actor panics; the ask through the child fails...
            let crashed = tally.ask(Crash).await.unwrap();
            assert!(
                matches!(crashed, Err(KameoError::NotRunning | KameoError::Send(_))),
                "{crashed:?}"
            );
            // ...and the supervisor restarts it with fresh state, behind the
            // same reference.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            loop {
                if starts.load(Ordering::SeqCst) == 2 && tally.ask(Bump).await == Ok(Ok(1)) {
                    break;
                }
                assert!(tokio::time::Instant::now() < deadline, "not restarted");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(tally.ask(Bump).await, Ok(Ok(2)));

            root.stop();
            until_stopped(&root).await;
            assert_eq!(tally.ask(Bump).await, Err(AskError::Stopped));
        }
    });
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    assert_eq!(
        graceful_stops.load(Ordering::SeqCst),
        1,
        "stop_gracefully reached on_stop"
    );
    shut_down(executor);
}
