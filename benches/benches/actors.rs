//! Actors side by side with kameo 0.22 and actix 0.13, in one run.
//!
//! ```text
//! cargo bench -p proc-daemon-benches --bench actors
//! ```
//!
//! - `tell_same_worker`: one task sends `tell`s to an actor on the same
//!   thread; an `ask` at the end makes sure all were handled. Time per
//!   message. proc-daemon: both on worker 0 of a 2-worker pinned executor.
//!   kameo: a tokio current-thread runtime. actix: one `System` thread.
//! - `tell_cross_worker`: the sender and the actor on different threads.
//!   proc-daemon: workers 0 and 1. kameo: a 2-worker multi-thread runtime
//!   (tokio places the tasks). actix: the actor in its own `Arbiter`.
//! - `ask_same_worker`: round trips on one thread.
//! - `ask_cross_worker`: round trips from one thread to an actor on
//!   another, placed as in `tell_cross_worker`.
//! - `ping_pong_cross_worker`: two actors on two threads hand a message
//!   back and forth, each hop a `tell` from inside the handler (actix:
//!   `do_send`); time per round trip.
//! - `spawn_stop`: start an actor and stop it, per actor, in batches of
//!   1000. proc-daemon: unsupervised actors on one worker, and supervised
//!   children stopped by stopping their supervisor, placed round-robin
//!   (`proc-daemon-supervised`) or all on the spawner's worker
//!   (`proc-daemon-supervised-one-worker`). kameo: `spawn` then `stop_gracefully` and
//!   `wait_for_shutdown`. actix: `start`, then dropping the last address.
//!
//! - `restart`: from a `tell` that makes a supervised child panic to the
//!   answer of an `ask` that the next incarnation handles (see `restart`).
//!
//! Memory per actor is measured by `benches/actor_memory.rs`, one fresh
//! process per framework.

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proc_daemon::actors::executor::Executor;
use proc_daemon::actors::prelude::*;
use proc_daemon::actors::spawn::{SpawnOptions, spawn_on};

mod peers;
use peers::{Idle, KIdle};

// The message every framework's counter handles, and proc-daemon's
// counter: the fixture the tests use too.
#[path = "../../tests/fixtures/counter.rs"]
mod counter;
use counter::{Add, Counter};

fn executor() -> Executor {
    Executor::builder()
        .worker_threads(2)
        .thread_pinning(true)
        .build()
        .expect("executor")
}

// ---- kameo ----

#[derive(kameo::Actor)]
struct KCounter(u64);

struct KAdd(u64);
impl kameo::message::Message<KAdd> for KCounter {
    type Reply = u64;
    async fn handle(
        &mut self,
        KAdd(n): KAdd,
        _ctx: &mut kameo::message::Context<Self, Self::Reply>,
    ) -> u64 {
        self.0 += n;
        self.0
    }
}

// ---- actix ----

struct ACounter(u64);
impl actix::Actor for ACounter {
    type Context = actix::Context<Self>;
}
struct AAdd(u64);
impl actix::Message for AAdd {
    type Result = u64;
}
impl actix::Handler<AAdd> for ACounter {
    type Result = u64;
    fn handle(&mut self, AAdd(n): AAdd, _ctx: &mut Self::Context) -> u64 {
        self.0 += n;
        self.0
    }
}

fn tokio_current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn tokio_two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `iters` tells and one ask, timed, from worker `sender` to an actor on
/// worker `actor_worker`.
fn proc_daemon_tells(
    executor: &Executor,
    sender: usize,
    actor_worker: usize,
    iters: u64,
) -> Duration {
    let counter =
        spawn_on(executor, actor_worker, Counter(0), SpawnOptions::default()).expect("worker");
    let elapsed = executor
        .spawn_on(sender, {
            let counter = counter.clone();
            async move {
                let start = Instant::now();
                for _ in 0..iters {
                    counter.tell(Add(1)).await.expect("alive");
                }
                let total = counter.ask(Add(0)).await.expect("alive");
                assert_eq!(total, iters);
                start.elapsed()
            }
        })
        .expect("worker")
        .join()
        .expect("sender");
    counter.stop();
    elapsed
}

fn tell(c: &mut Criterion) {
    for (group_name, cross) in [("tell_same_worker", false), ("tell_cross_worker", true)] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(1));

        let executor = executor();
        group.bench_function("proc-daemon", |b| {
            b.iter_custom(|iters| proc_daemon_tells(&executor, 0, usize::from(cross), iters));
        });
        executor.shutdown(Duration::from_secs(5)).expect("shutdown");

        let runtime = if cross {
            tokio_two_workers()
        } else {
            tokio_current_thread()
        };
        group.bench_function("kameo", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let counter = <KCounter as kameo::actor::Spawn>::spawn(KCounter(0));
                    let sender = tokio::spawn({
                        let counter = counter.clone();
                        async move {
                            let start = Instant::now();
                            for _ in 0..iters {
                                counter.tell(KAdd(1)).await.expect("alive");
                            }
                            let total = counter.ask(KAdd(0)).await.expect("alive");
                            assert_eq!(total, iters);
                            start.elapsed()
                        }
                    });
                    let elapsed = sender.await.expect("sender");
                    let _ = counter.stop_gracefully().await;
                    counter.wait_for_shutdown().await;
                    elapsed
                })
            });
        });

        group.bench_function("actix", |b| {
            b.iter_custom(|iters| {
                let system = actix::System::new();
                let elapsed = system.block_on(async move {
                    let arbiter = cross.then(actix::Arbiter::new);
                    let counter = match &arbiter {
                        Some(arbiter) => {
                            <ACounter as actix::Actor>::start_in_arbiter(&arbiter.handle(), |_| {
                                ACounter(0)
                            })
                        }
                        None => actix::Actor::start(ACounter(0)),
                    };
                    let start = Instant::now();
                    // `do_send` is actix's fire-and-forget: it queues the
                    // message without waiting for the actor, as `tell`
                    // does. The one `send` at the end waits for the reply,
                    // as the other rows' closing `ask` does.
                    for _ in 0..iters {
                        counter.do_send(AAdd(1));
                    }
                    let total = counter.send(AAdd(0)).await.expect("alive");
                    assert_eq!(total, iters);
                    let elapsed = start.elapsed();
                    if let Some(arbiter) = arbiter {
                        arbiter.stop();
                    }
                    elapsed
                });
                drop(system);
                elapsed
            });
        });
        group.finish();
    }
}

fn ask(c: &mut Criterion) {
    for (group_name, cross) in [("ask_same_worker", false), ("ask_cross_worker", true)] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(1));

        let executor = executor();
        group.bench_function("proc-daemon", |b| {
            b.iter_custom(|iters| {
                let counter = spawn_on(
                    &executor,
                    usize::from(cross),
                    Counter(0),
                    SpawnOptions::default(),
                )
                .expect("worker");
                let elapsed = executor
                    .spawn_on(0, {
                        let counter = counter.clone();
                        async move {
                            let start = Instant::now();
                            for _ in 0..iters {
                                black_box(counter.ask(Add(1)).await.expect("alive"));
                            }
                            start.elapsed()
                        }
                    })
                    .expect("worker")
                    .join()
                    .expect("asker");
                counter.stop();
                elapsed
            });
        });
        executor.shutdown(Duration::from_secs(5)).expect("shutdown");

        let runtime = if cross {
            tokio_two_workers()
        } else {
            tokio_current_thread()
        };
        group.bench_function("kameo", |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let counter = <KCounter as kameo::actor::Spawn>::spawn(KCounter(0));
                    let asker = tokio::spawn({
                        let counter = counter.clone();
                        async move {
                            let start = Instant::now();
                            for _ in 0..iters {
                                black_box(counter.ask(KAdd(1)).await.expect("alive"));
                            }
                            start.elapsed()
                        }
                    });
                    let elapsed = asker.await.expect("asker");
                    let _ = counter.stop_gracefully().await;
                    counter.wait_for_shutdown().await;
                    elapsed
                })
            });
        });

        group.bench_function("actix", |b| {
            b.iter_custom(|iters| {
                let system = actix::System::new();
                let elapsed = system.block_on(async move {
                    let arbiter = cross.then(actix::Arbiter::new);
                    let counter = match &arbiter {
                        Some(arbiter) => {
                            <ACounter as actix::Actor>::start_in_arbiter(&arbiter.handle(), |_| {
                                ACounter(0)
                            })
                        }
                        None => actix::Actor::start(ACounter(0)),
                    };
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(counter.send(AAdd(1)).await.expect("alive"));
                    }
                    let elapsed = start.elapsed();
                    if let Some(arbiter) = arbiter {
                        arbiter.stop();
                    }
                    elapsed
                });
                drop(system);
                elapsed
            });
        });
        group.finish();
    }
}

// ---- ping-pong between two actors on two threads ----

/// A ping-pong player: hands the ball back to its peer until the count
/// runs out, then reports on `done`.
struct Player {
    peer: Option<ActorRef<Player>>,
    done: tokio::sync::mpsc::UnboundedSender<()>,
}
impl Actor for Player {}
struct SetPeer(ActorRef<Player>);
impl Handler<SetPeer> for Player {
    type Reply = ();
    async fn handle(&mut self, SetPeer(peer): SetPeer, _ctx: &mut Context<Self>) {
        self.peer = Some(peer);
    }
}
struct Ball(u64);
impl Handler<Ball> for Player {
    type Reply = ();
    async fn handle(&mut self, Ball(left): Ball, _ctx: &mut Context<Self>) {
        match (&self.peer, left) {
            (Some(peer), 1..) => peer.tell(Ball(left - 1)).await.expect("the peer"),
            _ => self.done.send(()).expect("the bench waits"),
        }
    }
}

#[derive(kameo::Actor)]
struct KPlayer {
    peer: Option<kameo::actor::ActorRef<KPlayer>>,
    done: tokio::sync::mpsc::UnboundedSender<()>,
}
struct KSetPeer(kameo::actor::ActorRef<KPlayer>);
impl kameo::message::Message<KSetPeer> for KPlayer {
    type Reply = ();
    async fn handle(
        &mut self,
        KSetPeer(peer): KSetPeer,
        _: &mut kameo::message::Context<Self, ()>,
    ) {
        self.peer = Some(peer);
    }
}
struct KBall(u64);
impl kameo::message::Message<KBall> for KPlayer {
    type Reply = ();
    async fn handle(&mut self, KBall(left): KBall, _: &mut kameo::message::Context<Self, ()>) {
        match (&self.peer, left) {
            (Some(peer), 1..) => peer.tell(KBall(left - 1)).await.expect("the peer"),
            _ => self.done.send(()).expect("the bench waits"),
        }
    }
}

struct APlayer {
    peer: Option<actix::Addr<APlayer>>,
    done: tokio::sync::mpsc::UnboundedSender<()>,
}
impl actix::Actor for APlayer {
    type Context = actix::Context<Self>;
}
struct ASetPeer(actix::Addr<APlayer>);
impl actix::Message for ASetPeer {
    type Result = ();
}
impl actix::Handler<ASetPeer> for APlayer {
    type Result = ();
    fn handle(&mut self, ASetPeer(peer): ASetPeer, _: &mut Self::Context) {
        self.peer = Some(peer);
    }
}
struct ABall(u64);
impl actix::Message for ABall {
    type Result = ();
}
impl actix::Handler<ABall> for APlayer {
    type Result = ();
    fn handle(&mut self, ABall(left): ABall, _: &mut Self::Context) {
        match (&self.peer, left) {
            (Some(peer), 1..) => peer.do_send(ABall(left - 1)),
            _ => self.done.send(()).expect("the bench waits"),
        }
    }
}

/// Two actors on two threads hand a ball back and forth, each hop a
/// `tell` from inside the handler; time per round trip (two hops).
/// proc-daemon: workers 0 and 1. kameo: tokio multi-thread, 2 workers
/// (tokio places the actors). actix: one in the `System`'s arbiter, one
/// in its own `Arbiter`, `do_send` (unbounded).
fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("ping_pong_cross_worker");
    group.throughput(Throughput::Elements(1));

    let executor = executor();
    group.bench_function("proc-daemon", |b| {
        b.iter_custom(|iters| {
            let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
            let player = |worker| {
                let done = done.clone();
                spawn_on(
                    &executor,
                    worker,
                    Player { peer: None, done },
                    SpawnOptions::default(),
                )
                .expect("worker")
            };
            let (a, b) = (player(0), player(1));
            executor
                .spawn_on(0, {
                    let (a, b) = (a.clone(), b.clone());
                    async move {
                        a.ask(SetPeer(b.clone())).await.expect("a");
                        b.ask(SetPeer(a.clone())).await.expect("b");
                        let start = Instant::now();
                        a.tell(Ball(2 * iters)).await.expect("a");
                        finished.recv().await.expect("the last hop");
                        let elapsed = start.elapsed();
                        a.stop();
                        b.stop();
                        elapsed
                    }
                })
                .expect("worker")
                .join()
                .expect("the game")
        });
    });
    executor.shutdown(Duration::from_secs(5)).expect("shutdown");

    let runtime = tokio_two_workers();
    group.bench_function("kameo", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
                let player = || {
                    <KPlayer as kameo::actor::Spawn>::spawn(KPlayer {
                        peer: None,
                        done: done.clone(),
                    })
                };
                let (a, b) = (player(), player());
                a.ask(KSetPeer(b.clone())).await.expect("a");
                b.ask(KSetPeer(a.clone())).await.expect("b");
                let start = Instant::now();
                a.tell(KBall(2 * iters)).await.expect("a");
                finished.recv().await.expect("the last hop");
                let elapsed = start.elapsed();
                for player in [a, b] {
                    let _ = player.stop_gracefully().await;
                    player.wait_for_shutdown().await;
                }
                elapsed
            })
        });
    });

    group.bench_function("actix", |b| {
        b.iter_custom(|iters| {
            let system = actix::System::new();
            let elapsed = system.block_on(async move {
                let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
                let arbiter = actix::Arbiter::new();
                let a = actix::Actor::start(APlayer {
                    peer: None,
                    done: done.clone(),
                });
                let b = <APlayer as actix::Actor>::start_in_arbiter(&arbiter.handle(), move |_| {
                    APlayer { peer: None, done }
                });
                a.send(ASetPeer(b.clone())).await.expect("a");
                b.send(ASetPeer(a.clone())).await.expect("b");
                let start = Instant::now();
                a.do_send(ABall(2 * iters));
                finished.recv().await.expect("the last hop");
                let elapsed = start.elapsed();
                arbiter.stop();
                elapsed
            });
            drop(system);
            elapsed
        });
    });
    group.finish();
}

/// Actors per `spawn_stop` iteration.
const BATCH: u64 = 1000;

/// An idle actix actor that counts itself among the living from its
/// creation to its `stopped` hook, so that `spawn_stop` can wait for every
/// stop.
struct ACounted(Rc<Cell<u64>>);
impl ACounted {
    fn new(alive: &Rc<Cell<u64>>) -> Self {
        alive.set(alive.get() + 1);
        ACounted(alive.clone())
    }
}
impl actix::Actor for ACounted {
    type Context = actix::Context<Self>;
    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.0.set(self.0.get() - 1);
    }
}

fn spawn_stop(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn_stop");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);

    let executor = executor();
    group.bench_function("proc-daemon", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let spawner = executor.clone();
                total += executor
                    .spawn_on(0, async move {
                        let start = Instant::now();
                        let mut actors = Vec::with_capacity(BATCH as usize);
                        for _ in 0..BATCH {
                            actors.push(
                                spawn_on(&spawner, 0, Idle, SpawnOptions::default())
                                    .expect("worker"),
                            );
                        }
                        for actor in &actors {
                            actor.stop();
                        }
                        for actor in &actors {
                            actor.wait_for_stop().await;
                        }
                        start.elapsed()
                    })
                    .expect("worker")
                    .join()
                    .expect("spawner");
            }
            total
        });
    });
    // Two placements: the default (the supervisor and its children placed
    // round-robin over both workers, so most spawns and stops cross
    // threads), and everything on the spawner's worker, as the peers' rows
    // run everything on one thread.
    for (name, one_worker) in [
        ("proc-daemon-supervised", false),
        ("proc-daemon-supervised-one-worker", true),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let root = if one_worker {
                        Supervisor::builder()
                            .spawn_on(&executor, 0)
                            .expect("worker")
                    } else {
                        Supervisor::builder().spawn(&executor)
                    };
                    total += executor
                        .spawn_on(0, async move {
                            let start = Instant::now();
                            for _ in 0..BATCH {
                                let child = root.child("idle", || Idle);
                                let child = if one_worker {
                                    child.on_worker(0)
                                } else {
                                    child
                                };
                                child.spawn().await.expect("alive");
                            }
                            root.stop();
                            root.wait_for_stop().await;
                            start.elapsed()
                        })
                        .expect("worker")
                        .join()
                        .expect("spawner");
                }
                total
            });
        });
    }
    executor.shutdown(Duration::from_secs(5)).expect("shutdown");

    let runtime = tokio_current_thread();
    group.bench_function("kameo", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let mut actors = Vec::with_capacity(BATCH as usize);
                    for _ in 0..BATCH {
                        actors.push(<KIdle as kameo::actor::Spawn>::spawn(KIdle));
                    }
                    for actor in &actors {
                        let _ = actor.stop_gracefully().await;
                    }
                    for actor in &actors {
                        actor.wait_for_shutdown().await;
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    });

    group.bench_function("actix", |b| {
        b.iter_custom(|iters| {
            actix::System::new().block_on(async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let alive = Rc::new(Cell::new(0u64));
                    let start = Instant::now();
                    let addresses: Vec<_> = (0..BATCH)
                        .map(|_| actix::Actor::start(ACounted::new(&alive)))
                        .collect();
                    // An actix actor stops once its last address is gone;
                    // wait until every one has run its `stopped` hook, as
                    // the other rows wait for their actors to end.
                    drop(addresses);
                    while alive.get() > 0 {
                        tokio::task::yield_now().await;
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    });
    group.finish();
}

// ---- restart latency ----

/// Panics when told `Crash`; answers `Ping`.
struct Crashy;
impl Actor for Crashy {}
struct Crash;
impl Handler<Crash> for Crashy {
    type Reply = ();
    async fn handle(&mut self, _: Crash, _ctx: &mut Context<Self>) {
        panic!("told to crash");
    }
}
struct Ping;
impl Handler<Ping> for Crashy {
    type Reply = ();
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) {}
}

#[derive(kameo::Actor)]
struct KSupervisor;

#[derive(Clone)]
struct KCrashy;
impl kameo::Actor for KCrashy {
    type Args = Self;
    type Error = kameo::error::Infallible;
    async fn on_start(
        state: Self::Args,
        _: kameo::actor::ActorRef<Self>,
    ) -> Result<Self, Self::Error> {
        Ok(state)
    }
}
struct KCrash;
impl kameo::message::Message<KCrash> for KCrashy {
    type Reply = ();
    async fn handle(&mut self, _: KCrash, _ctx: &mut kameo::message::Context<Self, ()>) {
        panic!("told to crash");
    }
}
struct KPing;
impl kameo::message::Message<KPing> for KCrashy {
    type Reply = ();
    async fn handle(&mut self, _: KPing, _ctx: &mut kameo::message::Context<Self, ()>) {}
}

/// `restart`: a supervised child on one thread is told to panic, then
/// asked a `Ping` until the next incarnation answers (proc-daemon keeps the
/// mailbox across the restart, so its first ask waits and succeeds; kameo
/// refuses asks while the actor is down, so it asks again). Time per
/// crash, from the `tell` to the answer. Both
/// supervisors restart at once (no backoff) and have their restart limits
/// set out of the way. The panic hook is silenced for this group, so that
/// printing the panic is not what is measured.
fn restart(c: &mut Criterion) {
    let mut group = c.benchmark_group("restart");
    group.throughput(Throughput::Elements(1));
    // Silence only the panics this group causes; anything else still
    // reports.
    let previous_hook = std::sync::Arc::new(std::panic::take_hook());
    let report = previous_hook.clone();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<&str>() != Some(&"told to crash") {
            report(info);
        }
    }));

    let executor = executor();
    let supervisor = Supervisor::builder()
        .intensity(u32::MAX, Duration::from_millis(1))
        .spawn_on(&executor, 0)
        .expect("worker");
    let crashy = executor
        .spawn_on(0, {
            let supervisor = supervisor.clone();
            async move {
                supervisor
                    .child("crashy", || Crashy)
                    .on_worker(0)
                    .restart(RestartPolicy::OnFailure)
                    .spawn()
                    .await
                    .expect("supervised")
            }
        })
        .expect("worker")
        .join()
        .expect("spawned");
    group.bench_function("proc-daemon", |b| {
        b.iter_custom(|iters| {
            let crashy = crashy.clone();
            executor
                .spawn_on(0, async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        crashy.tell(Crash).await.expect("alive");
                        // The same loop as kameo's; here the first ask
                        // waits in the mailbox for the next incarnation.
                        while crashy.ask(Ping).await.is_err() {
                            tokio::task::yield_now().await;
                        }
                    }
                    start.elapsed()
                })
                .expect("worker")
                .join()
                .expect("crasher")
        });
    });
    supervisor.stop();
    executor.shutdown(Duration::from_secs(5)).expect("shutdown");

    let runtime = tokio_current_thread();
    let kameo_crashy = runtime.block_on(async {
        let supervisor = <KSupervisor as kameo::actor::Spawn>::spawn(KSupervisor);
        let crashy = <KCrashy as kameo::actor::Spawn>::supervise(&supervisor, KCrashy)
            .restart_policy(kameo::supervision::RestartPolicy::Transient)
            .restart_limit(u32::MAX, Duration::from_millis(1))
            .spawn()
            .await;
        (supervisor, crashy)
    });
    group.bench_function("kameo", |b| {
        b.iter_custom(|iters| {
            let crashy = kameo_crashy.1.clone();
            runtime.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    crashy.tell(KCrash).await.expect("alive");
                    // An ask that reaches kameo's actor between its death
                    // and its restart fails with ActorStopped: ask again
                    // until the new incarnation answers.
                    while crashy.ask(KPing).await.is_err() {
                        tokio::task::yield_now().await;
                    }
                }
                start.elapsed()
            })
        });
    });
    group.finish();
    let _ = std::panic::take_hook();
}

criterion_group!(benches, tell, ask, ping_pong, spawn_stop, restart);
criterion_main!(benches);
