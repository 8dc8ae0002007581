//! Issue 24's 100k-subsystem run at CI size (`benches/subsystems.rs` runs
//! it at full size): a daemon with 1,000 supervised subsystems under one
//! pool supervisor, 1% of them restarted after a failure, then the
//! daemon's staged shutdown. Each subsystem counts its own incarnations,
//! so the test can tell that exactly the failed ones restarted, once each,
//! and that every one stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use proc_daemon::actors::ActorState;
use proc_daemon::prelude::*;
use proc_daemon::{SignalConfig, Supervisor};

const SUBSYSTEMS: usize = 1_000;
const FAILING: usize = SUBSYSTEMS / 100;

/// A subsystem that counts its incarnations and fails when told.
struct Worker {
    starts: Arc<AtomicU64>,
}

impl Actor for Worker {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Fail;
impl Handler<Fail> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: Fail, ctx: &mut Context<Self>) {
        ctx.fail("told to fail");
    }
}

#[path = "fixtures/wait.rs"]
mod wait;
use wait::{until, within};

#[tokio::test]
async fn a_thousand_subsystems_start_restart_one_percent_and_shut_down() {
    let config = Config::builder()
        .name("scale-test")
        .worker_threads(2)
        .ignore_env()
        .build()
        .expect("a valid config");
    let daemon = Daemon::builder(config)
        .with_signal_config(SignalConfig::none())
        .build()
        .expect("a daemon");
    let pool = within(
        "the pool's spawn",
        daemon
            .supervisor()
            .child("pool", || {
                Supervisor::builder()
                    .name("pool")
                    .intensity(FAILING as u32 * 2, Duration::from_secs(60))
                    .build()
            })
            .spawn(),
    )
    .await
    .expect("the pool supervisor");

    let counters: Vec<Arc<AtomicU64>> = (0..SUBSYSTEMS)
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let options = daemon.mailbox_options();
    let spawner = {
        let pool = pool.clone();
        let counters = counters.clone();
        daemon.executor().spawn(async move {
            let mut workers = Vec::with_capacity(SUBSYSTEMS);
            for (n, starts) in counters.into_iter().enumerate() {
                workers.push(
                    pool.child(format!("worker-{n}"), move || Worker {
                        starts: starts.clone(),
                    })
                    .mailbox(options)
                    .spawn()
                    .await
                    .expect("a subsystem"),
                );
            }
            workers
        })
    };
    let workers = within("the spawns", spawner).await.expect("the spawner");
    until("every subsystem's start", || {
        counters.iter().all(|c| c.load(Ordering::SeqCst) == 1)
    })
    .await;

    // Every 100th subsystem, spread over the pool.
    let failing: Vec<usize> = (0..FAILING).map(|k| k * 100 + 37).collect();
    for &index in &failing {
        workers[index].tell(Fail).await.expect("a tell");
    }
    until("the restarts", || {
        failing
            .iter()
            .all(|&index| counters[index].load(Ordering::SeqCst) == 2)
    })
    .await;
    for (index, starts) in counters.iter().enumerate() {
        let expected = if failing.contains(&index) { 2 } else { 1 };
        assert_eq!(starts.load(Ordering::SeqCst), expected, "subsystem {index}");
    }
    let snapshot = within("the pool's children", pool.children())
        .await
        .expect("the pool answers");
    assert_eq!(snapshot.len(), SUBSYSTEMS);
    for &index in &failing {
        assert_eq!(snapshot[index].restarts, 1, "{:?}", snapshot[index]);
    }

    daemon.shutdown();
    let exit = within("the staged shutdown", daemon.run())
        .await
        .expect("a clean stop");
    assert_eq!(exit.exit_code(), 0, "{exit:?}");
    assert!(
        workers
            .iter()
            .all(|worker| worker.state() == ActorState::Stopped),
        "every subsystem stopped"
    );
    assert_eq!(pool.state(), ActorState::Stopped);
}
