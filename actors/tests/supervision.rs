//! Supervision on a real executor: every strategy and policy with real
//! panics, failures and clean completions; restart intensity escalating
//! through two supervisors; no message lost across restarts; shutdown.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proc_daemon_actors::ActorState;
use proc_daemon_actors::dead_letter::{self, DeadLetterReason};
use proc_daemon_actors::mailbox::Capacity;
use proc_daemon_actors::prelude::*;
use proc_daemon_actors::spawn::SpawnOptions;
use proc_daemon_actors::supervision::Backoff;
use proc_daemon_actors::supervision::SupervisorBuilder;

mod common;
use common::{executor, run_within, shut_down, until_stopped};

/// Counts its incarnations (through a shared counter) and its messages
/// (in its own state, which a restart resets).
struct Worker {
    name: &'static str,
    starts: Arc<AtomicU32>,
    log: Arc<Mutex<Vec<String>>>,
    handled: u32,
}

impl Worker {
    fn factory(
        name: &'static str,
        log: &Log,
    ) -> (Arc<AtomicU32>, impl FnMut() -> Worker + Send + 'static) {
        let starts = Arc::new(AtomicU32::new(0));
        let counter = starts.clone();
        let log = log.clone();
        (starts, move || Worker {
            name,
            starts: counter.clone(),
            log: log.clone(),
            handled: 0,
        })
    }
}

impl Actor for Worker {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        let n = self.starts.fetch_add(1, Ordering::SeqCst) + 1;
        self.log
            .lock()
            .unwrap()
            .push(format!("{} start {n}", self.name));
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>, reason: &ExitReason) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} stop: {reason}", self.name));
    }
}

/// What a worker does with a message.
#[derive(Clone, Copy)]
enum Do {
    Count,
    Panic,
    Fail,
    Complete,
}

impl Handler<Do> for Worker {
    type Reply = u32;

    async fn handle(&mut self, what: Do, ctx: &mut Context<Self>) -> u32 {
        match what {
            Do::Count => {}
            Do::Panic => panic!("{} was told to panic", self.name),
            Do::Fail => ctx.fail(format!("{} was told to fail", self.name)),
            Do::Complete => ctx.complete(),
        }
        self.handled += 1;
        self.handled
    }
}

fn run<T: Send + 'static>(
    executor: &Executor,
    future: impl Future<Output = T> + Send + 'static,
) -> T {
    run_within(executor, Duration::from_secs(120), future)
}

/// Waits until `starts` reaches `n` (a restart is asynchronous).
async fn until_started(starts: &AtomicU32, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while starts.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "only {} starts",
            starts.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn supervisor(strategy: Strategy) -> SupervisorBuilder {
    Supervisor::builder()
        .strategy(strategy)
        .intensity(20, Duration::from_secs(10))
}

/// What the workers of a test write their lives into.
type Log = Arc<Mutex<Vec<String>>>;

/// The usual set-up: a two-worker executor, a root supervisor with
/// `strategy` (see [`supervisor`]) on it, and an empty log for its workers.
fn tree(strategy: Strategy) -> (Executor, ActorRef<Supervisor>, Log) {
    let executor = executor();
    let root = supervisor(strategy).spawn(&executor);
    (executor, root, Log::default())
}

/// One child under `policy`, sent `what`: whether it was restarted and
/// whether it is still alive afterwards.
fn one_for_one_outcome(policy: RestartPolicy, what: Do) -> (u32, bool) {
    let (executor, root, log) = tree(Strategy::OneForOne);
    let (starts, factory) = Worker::factory("w", &log);
    let outcome = run(&executor, {
        let root = root.clone();
        async move {
            let child = root
                .child("w", factory)
                .restart(policy)
                .spawn()
                .await
                .unwrap();
            assert_eq!(child.ask(Do::Count).await, Ok(1));
            let _ = child.ask(what).await;
            // Give a restart time to happen, then look.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let alive = child.is_alive();
            if alive {
                until_started(&starts, 2).await;
                // The same reference reaches the new incarnation, whose
                // state starts afresh.
                assert_eq!(child.ask(Do::Count).await, Ok(1));
            } else {
                assert_eq!(child.ask(Do::Count).await, Err(AskError::Stopped));
                assert_eq!(child.state(), ActorState::Stopped);
            }
            root.stop();
            until_stopped(&root).await;
            (starts.load(Ordering::SeqCst), alive)
        }
    });
    shut_down(executor);
    outcome
}

#[test]
fn policies_follow_otp_meanings() {
    // (policy, what happens, restarted?)
    let cases = [
        (RestartPolicy::Never, Do::Panic, false),
        (RestartPolicy::Never, Do::Fail, false),
        (RestartPolicy::Never, Do::Complete, false),
        (RestartPolicy::Always, Do::Panic, true),
        (RestartPolicy::Always, Do::Fail, true),
        (RestartPolicy::Always, Do::Complete, true),
        (RestartPolicy::OnFailure, Do::Panic, true),
        (RestartPolicy::OnFailure, Do::Fail, true),
        (RestartPolicy::OnFailure, Do::Complete, false),
    ];
    for (policy, what, restarted) in cases {
        let name = format!(
            "{policy:?} after {}",
            match what {
                Do::Panic => "a panic",
                Do::Fail => "a failure",
                Do::Complete => "a clean completion",
                Do::Count => "nothing",
            }
        );
        let (starts, alive) = one_for_one_outcome(policy, what);
        assert_eq!(alive, restarted, "{name}");
        assert_eq!(starts, if restarted { 2 } else { 1 }, "{name}");
    }
}

#[test]
fn a_child_stopped_for_good_is_not_restarted_even_if_permanent() {
    let (executor, root, log) = tree(Strategy::OneForOne);
    let (starts, factory) = Worker::factory("w", &log);
    run(&executor, {
        let root = root.clone();
        async move {
            let child = root
                .child("w", factory)
                .restart(RestartPolicy::Always)
                .spawn()
                .await
                .unwrap();
            child.ask(Do::Count).await.unwrap();
            child.stop();
            until_stopped(&child).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(starts.load(Ordering::SeqCst), 1);
            root.stop();
            until_stopped(&root).await;
        }
    });
    shut_down(executor);
}

/// Three children a, b, c under `strategy`; b panics. Returns each one's
/// number of starts.
fn strategy_restarts(strategy: Strategy) -> [u32; 3] {
    let (executor, root, log) = tree(strategy);
    let (a_starts, a) = Worker::factory("a", &log);
    let (b_starts, b) = Worker::factory("b", &log);
    let (c_starts, c) = Worker::factory("c", &log);
    let starts = run(&executor, {
        let root = root.clone();
        let log = log.clone();
        async move {
            let a = root.child("a", a).spawn().await.unwrap();
            let b = root.child("b", b).spawn().await.unwrap();
            let c = root.child("c", c).spawn().await.unwrap();
            let _ = b.ask(Do::Panic).await;
            until_started(&b_starts, 2).await;
            // Every child answers afterwards, through the same references.
            for child in [&a, &b, &c] {
                child.ask(Do::Count).await.unwrap();
            }
            let starts = [
                a_starts.load(Ordering::SeqCst),
                b_starts.load(Ordering::SeqCst),
                c_starts.load(Ordering::SeqCst),
            ];
            root.stop();
            until_stopped(&root).await;
            // Children stop in reverse start order.
            let stops: Vec<String> = log
                .lock()
                .unwrap()
                .iter()
                .filter(|line| line.contains("stop: stop was requested"))
                .cloned()
                .collect();
            assert_eq!(
                stops,
                [
                    "c stop: stop was requested",
                    "b stop: stop was requested",
                    "a stop: stop was requested"
                ]
            );
            starts
        }
    });
    shut_down(executor);
    starts
}

#[test]
fn one_for_one_restarts_only_the_failed_child() {
    assert_eq!(strategy_restarts(Strategy::OneForOne), [1, 2, 1]);
}

#[test]
fn one_for_all_restarts_every_child() {
    assert_eq!(strategy_restarts(Strategy::OneForAll), [2, 2, 2]);
}

#[test]
fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    assert_eq!(strategy_restarts(Strategy::RestForOne), [1, 2, 2]);
}

#[test]
fn no_message_is_lost_across_restarts() {
    struct Tally {
        seen: Arc<Mutex<Vec<u32>>>,
    }
    impl Actor for Tally {}
    struct Item(u32);
    impl Handler<Item> for Tally {
        type Reply = ();
        async fn handle(&mut self, Item(n): Item, _ctx: &mut Context<Self>) {
            if n % 1000 == 999 {
                panic!("poisoned message {n}");
            }
            self.seen.lock().unwrap()[n as usize] += 1;
        }
    }

    let executor = executor();
    let seen = Arc::new(Mutex::new(vec![0u32; 10_000]));
    let root = Supervisor::builder()
        .intensity(100, Duration::from_secs(60))
        .spawn(&executor);
    let poisoned = Arc::new(Mutex::new(Vec::new()));
    let target = Arc::new(Mutex::new(None));
    {
        let poisoned = poisoned.clone();
        let target = target.clone();
        dead_letter::set_hook(move |letter| {
            if Some(letter.actor) == *target.lock().unwrap()
                && let DeadLetterReason::HandlerPanicked { message } = &letter.reason
            {
                poisoned.lock().unwrap().push(message.clone());
            }
        });
    }
    run(&executor, {
        let root = root.clone();
        let seen = seen.clone();
        let target = target.clone();
        async move {
            let factory_seen = seen.clone();
            let tally = root
                .child("tally", move || Tally {
                    seen: factory_seen.clone(),
                })
                .mailbox(SpawnOptions::default().capacity(Capacity::Bounded(64)))
                .spawn()
                .await
                .unwrap();
            *target.lock().unwrap() = Some(tally.id());
            for n in 0..10_000 {
                tally.tell(Item(n)).await.unwrap();
            }
            // Everything sent is handled or poisoned before this answers.
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let handled: u32 = seen.lock().unwrap().iter().sum();
                if handled == 9_990 {
                    break;
                }
                assert!(Instant::now() < deadline, "only {handled} handled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            root.stop();
            until_stopped(&root).await;
        }
    });
    let seen = seen.lock().unwrap();
    for (n, count) in seen.iter().enumerate() {
        let expected = u32::from(n % 1000 != 999);
        assert_eq!(*count, expected, "message {n} handled {count} times");
    }
    let mut poisoned = poisoned.lock().unwrap().clone();
    poisoned.sort();
    let mut expected: Vec<String> = (0..10)
        .map(|k| format!("poisoned message {}", k * 1000 + 999))
        .collect();
    expected.sort();
    assert_eq!(poisoned, expected);
    shut_down(executor);
}

#[test]
fn a_restart_storm_escalates_through_two_supervisors() {
    let executor = executor();
    let log = Arc::new(Mutex::new(Vec::new()));
    // The root gives up at once; the middle one after 2 restarts.
    let root = Supervisor::builder()
        .intensity(0, Duration::from_secs(10))
        .spawn(&executor);
    let (starts, factory) = Worker::factory("leaf", &log);
    run(&executor, {
        let root = root.clone();
        let starts = starts.clone();
        async move {
            let middle = root
                .child("middle", || {
                    Supervisor::builder()
                        .intensity(2, Duration::from_secs(10))
                        .build()
                })
                .spawn()
                .await
                .unwrap();
            let leaf = middle.child("leaf", factory).spawn().await.unwrap();
            for n in 1..=3 {
                until_started(&starts, n).await;
                let _ = leaf.ask(Do::Panic).await;
            }
            until_stopped(&middle).await;
            until_stopped(&root).await;
            assert_eq!(leaf.state(), ActorState::Stopped);
            assert_eq!(leaf.ask(Do::Count).await, Err(AskError::Stopped));
        }
    });
    assert_eq!(
        starts.load(Ordering::SeqCst),
        3,
        "two restarts, then the middle gave up"
    );
    shut_down(executor);
}

#[test]
fn backoff_delays_grow_between_restarts() {
    let (executor, root, _) = tree(Strategy::OneForOne);
    let times = Arc::new(Mutex::new(Vec::new()));
    struct Timed(Arc<Mutex<Vec<Instant>>>);
    impl Actor for Timed {
        async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
            self.0.lock().unwrap().push(Instant::now());
            Ok(())
        }
    }
    impl Handler<Do> for Timed {
        type Reply = ();
        async fn handle(&mut self, _: Do, _ctx: &mut Context<Self>) {
            panic!("again");
        }
    }
    run(&executor, {
        let root = root.clone();
        let times = times.clone();
        async move {
            let factory_times = times.clone();
            let child = root
                .child("timed", move || Timed(factory_times.clone()))
                .restart(RestartPolicy::ExponentialBackoff(
                    Backoff::new(
                        Duration::from_millis(40),
                        Duration::from_millis(160),
                        2.0,
                        0.0,
                    )
                    .unwrap()
                    .max_attempts(4),
                ))
                .spawn()
                .await
                .unwrap();
            for n in 1..=5 {
                while times.lock().unwrap().len() < n {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                let _ = child.ask(Do::Panic).await;
            }
            // Four restarts, then it gives up.
            until_stopped(&child).await;
            root.stop();
            until_stopped(&root).await;
        }
    });
    let times = times.lock().unwrap();
    assert_eq!(times.len(), 5);
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, expected) in gaps.iter().zip([40, 80, 160, 160]) {
        assert!(*gap >= Duration::from_millis(expected), "{gaps:?}");
    }
    shut_down(executor);
}

#[test]
fn a_child_waiting_to_restart_is_not_restarted_once_shutdown_began() {
    let (executor, root, log) = tree(Strategy::OneForOne);
    let (starts, factory) = Worker::factory("w", &log);
    run(&executor, {
        let root = root.clone();
        async move {
            let child = root
                .child("w", factory)
                .restart(RestartPolicy::ExponentialBackoff(
                    Backoff::new(
                        Duration::from_millis(100),
                        Duration::from_millis(100),
                        1.0,
                        0.0,
                    )
                    .unwrap(),
                ))
                .spawn()
                .await
                .unwrap();
            let _ = child.ask(Do::Panic).await;
            // Now in its backoff delay: stop the tree.
            root.stop();
            until_stopped(&root).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(starts.load(Ordering::SeqCst), 1);
            assert_eq!(child.state(), ActorState::Stopped);
            assert_eq!(child.ask(Do::Count).await, Err(AskError::Stopped));
        }
    });
    shut_down(executor);
}

#[test]
fn a_child_that_ignores_its_stop_is_aborted_at_its_timeout() {
    struct Stubborn;
    impl Actor for Stubborn {}
    impl Handler<Do> for Stubborn {
        type Reply = ();
        async fn handle(&mut self, _: Do, _ctx: &mut Context<Self>) {
            // Busy in a handler: the stop request waits behind it.
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
    let (executor, root, _) = tree(Strategy::OneForOne);
    let elapsed = run(&executor, {
        let root = root.clone();
        async move {
            let child = root
                .child("stubborn", || Stubborn)
                .shutdown_timeout(Duration::from_millis(200))
                .spawn()
                .await
                .unwrap();
            child.tell(Do::Count).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let started = Instant::now();
            root.stop();
            until_stopped(&root).await;
            until_stopped(&child).await;
            started.elapsed()
        }
    });
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    shut_down(executor);
}

#[test]
fn spawning_and_stopping_100k_actors_under_one_supervisor() {
    struct Tiny;
    impl Actor for Tiny {}
    let executor = executor();
    let root = Supervisor::builder().spawn(&executor);
    let count = run(&executor, {
        let root = root.clone();
        async move {
            let mut children = Vec::with_capacity(100_000);
            for n in 0..100_000 {
                children.push(
                    root.child(format!("tiny-{n}"), || Tiny)
                        .spawn()
                        .await
                        .unwrap(),
                );
            }
            let alive = children.iter().filter(|child| child.is_alive()).count();
            root.stop();
            tokio::time::timeout(Duration::from_secs(60), root.wait_for_stop())
                .await
                .expect("100k children stopped within 60 s");
            assert!(
                children
                    .iter()
                    .all(|child| child.state() == ActorState::Stopped)
            );
            alive
        }
    });
    assert_eq!(count, 100_000);
    assert!(
        executor.metrics().iter().all(|worker| worker.alive == 0),
        "{:?}",
        executor.metrics()
    );
    shut_down(executor);
}

#[test]
fn every_state_change_is_published_for_polling_and_subscribers() {
    use proc_daemon_actors::events::{ChildEvent, ChildState};
    use proc_daemon_actors::support::EventBus;

    let executor = executor();
    let log = Arc::new(Mutex::new(Vec::new()));
    let bus = Arc::new(EventBus::new(64));
    bus.enable();
    let mut subscription = bus.subscribe();
    let root = supervisor(Strategy::OneForOne)
        .events(bus.clone())
        .spawn(&executor);
    let (starts, factory) = Worker::factory("w", &log);
    let child_id = run(&executor, {
        let root = root.clone();
        async move {
            let child = root.child("w", factory).spawn().await.unwrap();
            child.ask(Do::Count).await.unwrap();
            let _ = child.ask(Do::Panic).await;
            until_started(&starts, 2).await;
            child.ask(Do::Count).await.unwrap();
            root.stop();
            until_stopped(&root).await;
            child.id()
        }
    });
    let states_of = |events: Vec<ChildEvent>| -> Vec<ChildState> {
        events
            .into_iter()
            .map(|event| match event {
                ChildEvent::StateChanged {
                    id, name, state, ..
                } => {
                    assert_eq!(id, child_id);
                    assert_eq!(&*name, "w");
                    state
                }
            })
            .collect()
    };
    use ChildState::*;
    let failed = Failed {
        reason: ExitReason::Panicked {
            message: "w was told to panic".to_owned(),
        },
    };
    let expected = [
        Starting, Running, Stopping, failed, Restarting, Starting, Running, Stopping, Stopped,
    ];
    let polled = states_of(std::iter::from_fn(|| bus.try_next_event()).collect());
    assert_eq!(polled, expected);
    let subscribed = states_of(std::iter::from_fn(|| subscription.try_recv().ok()).collect());
    assert_eq!(subscribed, expected);
    assert_eq!(bus.dropped(), 0);

    // A full ring drops the oldest and counts it: four state changes
    // through a ring of two keep the last two.
    let small = Arc::new(EventBus::new(2));
    small.enable();
    let root = supervisor(Strategy::OneForOne)
        .events(small.clone())
        .spawn(&executor);
    let (_, factory) = Worker::factory("x", &log);
    run(&executor, {
        let root = root.clone();
        async move {
            let child = root.child("x", factory).spawn().await.unwrap();
            child.ask(Do::Count).await.unwrap();
            root.stop();
            until_stopped(&root).await;
        }
    });
    let kept: Vec<ChildState> = std::iter::from_fn(|| small.try_next_event())
        .map(|event| match event {
            ChildEvent::StateChanged { state, .. } => state,
        })
        .collect();
    assert_eq!(kept, [Stopping, Stopped]);
    assert_eq!(small.dropped(), 2);
    shut_down(executor);
}

#[test]
fn consecutive_failed_health_checks_restart_the_child() {
    use std::sync::atomic::AtomicBool;

    let (executor, root, log) = tree(Strategy::OneForOne);
    let (starts, factory) = Worker::factory("w", &log);
    let healthy = Arc::new(AtomicBool::new(true));
    let checks = Arc::new(AtomicU32::new(0));
    run(&executor, {
        let root = root.clone();
        let healthy = healthy.clone();
        let checks = checks.clone();
        async move {
            let probe = healthy.clone();
            let counter = checks.clone();
            let child = root
                .child("w", factory)
                .health_check(Duration::from_millis(20), 3, move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    probe.load(Ordering::SeqCst)
                })
                .spawn()
                .await
                .unwrap();
            // Healthy: checks run, nothing restarts.
            tokio::time::sleep(Duration::from_millis(120)).await;
            assert!(checks.load(Ordering::SeqCst) >= 3);
            assert_eq!(starts.load(Ordering::SeqCst), 1);
            // Unhealthy: three failures in a row restart it.
            let failing_since = Instant::now();
            healthy.store(false, Ordering::SeqCst);
            until_started(&starts, 2).await;
            assert!(failing_since.elapsed() >= Duration::from_millis(40));
            healthy.store(true, Ordering::SeqCst);
            // The same reference reaches the new incarnation.
            assert_eq!(child.ask(Do::Count).await, Ok(1));
            root.stop();
            until_stopped(&root).await;
        }
    });
    let entries = log.lock().unwrap().clone();
    assert!(
        entries.contains(&"w stop: stopped by its supervisor".to_owned()),
        "{entries:?}"
    );
    // Health checks stop with the child.
    let after_stop = checks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(80));
    assert_eq!(checks.load(Ordering::SeqCst), after_stop);
    shut_down(executor);
}

/// Ignores its stop request: its `stopped` hook never returns.
struct Stubborn;
impl Actor for Stubborn {
    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        std::future::pending::<()>().await;
    }
}

/// Starts `root`'s children with `add`, then drains `root` with its force
/// deadline `force_after` away and waits for it to stop. Returns the
/// drain's report and how long the drain took.
fn drain_after<F, Fut>(
    executor: &Executor,
    root: &ActorRef<Supervisor>,
    force_after: Duration,
    add: F,
) -> (proc_daemon_actors::supervision::DrainReport, Duration)
where
    F: FnOnce(ActorRef<Supervisor>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    use proc_daemon_actors::support::Drain;
    let root = root.clone();
    run_within(executor, Duration::from_secs(10), async move {
        add(root.clone()).await;
        let start = Instant::now();
        let report = root
            .ask(Drain {
                force_at: start + force_after,
                report_to: None,
            })
            .await
            .unwrap();
        until_stopped(&root).await;
        (report, start.elapsed())
    })
}

#[test]
fn drain_stops_in_reverse_and_aborts_an_overrunning_child_at_the_force_deadline() {
    use proc_daemon_actors::supervision::DrainReport;
    let executor = executor();
    let root = Supervisor::builder().spawn(&executor);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (_, first) = Worker::factory("first", &log);
    let (_, last) = Worker::factory("last", &log);
    let (report, took) = drain_after(
        &executor,
        &root,
        Duration::from_millis(300),
        |root| async move {
            root.child("first", first).spawn().await.unwrap();
            root.child("stubborn", || Stubborn)
                .shutdown_timeout(Duration::from_millis(50))
                .spawn()
                .await
                .unwrap();
            root.child("last", last).spawn().await.unwrap();
        },
    );
    assert_eq!(
        report,
        DrainReport {
            stopped: vec!["last".into(), "first".into()],
            late: vec![],
            aborted: vec!["stubborn".into()],
        }
    );
    // The overrunning child did not hold up `first`: it was stopped right
    // after the 50 ms timeout, and the abort came at the force deadline.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    let log = log.lock().unwrap().clone();
    let stops: Vec<&String> = log.iter().filter(|l| l.contains("stop:")).collect();
    assert_eq!(stops.len(), 2, "{log:?}");
    assert!(
        stops[0].starts_with("last") && stops[1].starts_with("first"),
        "{log:?}"
    );
    shut_down(executor);
}

/// Says when its `stopped` hook starts, then never returns from it.
struct SaysItIsStopping(Arc<std::sync::atomic::AtomicBool>);
impl Actor for SaysItIsStopping {
    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        self.0.store(true, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
}

#[test]
fn a_child_its_supervisor_stops_sends_it_no_exit_report() {
    // The supervisor waits on the incarnation's handle itself; a report
    // would only queue behind the drain and be discarded as stale.
    use proc_daemon_actors::support::Drain;
    use std::sync::atomic::AtomicBool;
    let executor = executor();
    let root = Supervisor::builder().spawn(&executor);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (_, last) = Worker::factory("last", &log);
    let stopping = Arc::new(AtomicBool::new(false));
    let spawner = executor.clone();
    let queued = run_within(&executor, Duration::from_secs(10), {
        let root = root.clone();
        let stopping = stopping.clone();
        async move {
            let flag = stopping.clone();
            root.child("stubborn", move || SaysItIsStopping(flag.clone()))
                .shutdown_timeout(Duration::from_millis(100))
                .spawn()
                .await
                .unwrap();
            root.child("last", last).spawn().await.unwrap();
            let draining = root.clone();
            let drain = spawner.spawn(async move {
                draining
                    .ask(Drain {
                        force_at: Instant::now() + Duration::from_millis(500),
                        report_to: None,
                    })
                    .await
            });
            // "last" is stopped first; the drain moves on to "stubborn"
            // only once last's incarnation, report included, has ended.
            while !stopping.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let queued = root.mailbox_len();
            drain.await.unwrap().unwrap();
            until_stopped(&root).await;
            queued
        }
    });
    assert_eq!(queued, 0, "an exit report reached the draining supervisor");
    shut_down(executor);
}

/// Takes 150 ms to stop.
struct SlowToStop;
impl Actor for SlowToStop {
    async fn stopped(&mut self, _ctx: &mut Context<Self>, _reason: &ExitReason) {
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[test]
fn drain_applies_a_shorter_timeout_after_a_longer_one() {
    // The drain moves one timer from child to child; a deadline earlier
    // than the previous child's must still be kept.
    use proc_daemon_actors::supervision::DrainReport;
    let executor = executor();
    let root = Supervisor::builder().spawn(&executor);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (_, patient) = Worker::factory("patient", &log);
    let (report, took) = drain_after(
        &executor,
        &root,
        Duration::from_secs(3),
        |root| async move {
            root.child("slow", || SlowToStop)
                .shutdown_timeout(Duration::from_millis(50))
                .spawn()
                .await
                .unwrap();
            // Stopped first (reverse order), with a long timeout.
            root.child("patient", patient)
                .shutdown_timeout(Duration::from_secs(5))
                .spawn()
                .await
                .unwrap();
        },
    );
    assert_eq!(
        report,
        DrainReport {
            stopped: vec!["patient".into()],
            late: vec!["slow".into()],
            aborted: vec![],
        }
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    shut_down(executor);
}

/// Receives a root supervisor's escalation.
struct Parent(Arc<Mutex<Vec<String>>>);
impl Actor for Parent {}
impl Handler<proc_daemon_actors::supervision::Escalation> for Parent {
    type Reply = ();
    async fn handle(
        &mut self,
        escalation: proc_daemon_actors::supervision::Escalation,
        _ctx: &mut Context<Self>,
    ) {
        self.0.lock().unwrap().push(escalation.error);
    }
}

#[test]
fn a_root_supervisor_that_gives_up_tells_its_escalation_recipient() {
    let executor = executor();
    let escalations = Arc::new(Mutex::new(Vec::new()));
    let parent = proc_daemon_actors::spawn::spawn(&executor, Parent(escalations.clone()));
    let root = Supervisor::builder()
        .intensity(1, Duration::from_secs(10))
        .escalate_to(parent.clone().recipient())
        .spawn(&executor);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (_, factory) = Worker::factory("crashy", &log);
    run_within(&executor, Duration::from_secs(10), {
        let root = root.clone();
        async move {
            let child = root.child("crashy", factory).spawn().await.unwrap();
            let _ = child.ask(Do::Panic).await;
            let _ = child.ask(Do::Panic).await;
            until_stopped(&root).await;
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while escalations.lock().unwrap().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let escalations = escalations.lock().unwrap().clone();
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert!(escalations[0].contains("crashy"), "{escalations:?}");
    parent.stop();
    shut_down(executor);
}

/// Refuses to start, recording when it tried on tokio's clock.
struct RefusesToStart(Arc<Mutex<Vec<tokio::time::Instant>>>);
impl Actor for RefusesToStart {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(tokio::time::Instant::now());
        Err("refuses to start".into())
    }
}

#[test]
fn backoff_delays_follow_their_sequence_in_paused_time() {
    // One worker whose clock is paused: each backoff sleep completes as
    // soon as nothing else can run, so 23 s of delays take milliseconds,
    // and the gaps are exact.
    let executor = Executor::builder()
        .worker_threads(1)
        .start_paused(true)
        .build()
        .unwrap();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let root = Supervisor::builder()
        .intensity(100, Duration::from_secs(3600))
        .spawn(&executor);
    let recorded = starts.clone();
    let real_start = Instant::now();
    run_within(&executor, Duration::from_secs(600), async move {
        let child = root
            .child("refuser", move || RefusesToStart(recorded.clone()))
            .restart(RestartPolicy::ExponentialBackoff(
                Backoff::new(Duration::from_secs(1), Duration::from_secs(8), 2.0, 0.0)
                    .unwrap()
                    .max_attempts(5),
            ))
            .spawn()
            .await
            .unwrap();
        // After the fifth restart fails, the supervisor gives up on it.
        tokio::time::timeout(Duration::from_secs(300), child.wait_for_stop())
            .await
            .expect("stopped for good after max_attempts");
        root.stop();
        root.wait_for_stop().await;
    });
    let starts = starts.lock().unwrap().clone();
    let gaps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    let expected = [1, 2, 4, 8, 8].map(Duration::from_secs);
    assert_eq!(gaps.len(), expected.len(), "1 start + 5 restarts: {gaps:?}");
    for (gap, want) in gaps.iter().zip(expected) {
        // tokio's timer wheel has millisecond granularity.
        assert!(
            *gap >= want && *gap < want + Duration::from_millis(5),
            "gaps {gaps:?}, expected {expected:?}"
        );
    }
    assert!(
        real_start.elapsed() < Duration::from_secs(10),
        "paused time should not wait for real: {:?}",
        real_start.elapsed()
    );
    shut_down(executor);
}

#[test]
fn a_childs_stop_timeout_runs_on_tokios_clock() {
    // With the clock paused and moved an hour ahead of the real one, the
    // timeout must still be counted from tokio's now: a deadline taken
    // from the system clock would have passed already, and the stubborn
    // child would be aborted at once.
    let executor = Executor::builder()
        .worker_threads(1)
        .start_paused(true)
        .build()
        .unwrap();
    let root = Supervisor::builder().spawn(&executor);
    // The limit is on the paused clock too; the real wait is milliseconds.
    let waited = run_within(&executor, Duration::from_secs(3 * 3600), async move {
        root.child("stubborn", || Stubborn)
            .shutdown_timeout(Duration::from_secs(60))
            .spawn()
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let asked = tokio::time::Instant::now();
        root.stop();
        root.wait_for_stop().await;
        asked.elapsed()
    });
    assert!(waited >= Duration::from_secs(60), "{waited:?}");
    assert!(waited < Duration::from_secs(61), "{waited:?}");
    shut_down(executor);
}

/// Spawns a linked `Worker` in `started` and hands out its ref.
struct Parent2 {
    starts: Arc<AtomicU32>,
    children: Arc<Mutex<Vec<ActorRef<Worker>>>>,
    log: Arc<Mutex<Vec<String>>>,
}
impl Actor for Parent2 {
    async fn started(&mut self, ctx: &mut Context<Self>) -> Result<(), BoxError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        let (_, mut factory) = Worker::factory("linked", &self.log);
        let child = ctx.spawn_linked(factory());
        self.children.lock().unwrap().push(child);
        Ok(())
    }
}

#[test]
fn a_linked_child_fails_its_parent_and_stops_with_it() {
    let (executor, root, _) = tree(Strategy::OneForOne);
    let starts = Arc::new(AtomicU32::new(0));
    let children = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::new(Mutex::new(Vec::new()));
    let parent = run(&executor, {
        let (root, starts, children, log) =
            (root.clone(), starts.clone(), children.clone(), log.clone());
        async move {
            root.child("parent", move || Parent2 {
                starts: starts.clone(),
                children: children.clone(),
                log: log.clone(),
            })
            .restart(RestartPolicy::OnFailure)
            .spawn()
            .await
            .unwrap()
        }
    });
    let spawned = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while children.lock().unwrap().len() < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        children.lock().unwrap()[count - 1].clone()
    };
    // The parent's `started` runs after `spawn` returns.
    let first_child = spawned(1);
    // The child's panic fails the parent, which its supervisor restarts;
    // the new incarnation spawns a new child.
    run(&executor, {
        let first_child = first_child.clone();
        async move {
            let _ = first_child.ask(Do::Panic).await;
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while starts.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        starts.load(Ordering::SeqCst),
        2,
        "the parent was restarted: {:?}",
        log.lock().unwrap()
    );
    // `starts` counts the incarnation as its `started` begins; the child it
    // spawns is pushed at the end, so wait for that, not for the count.
    let second_child = spawned(2);
    assert!(!first_child.is_alive());
    assert!(second_child.is_alive());
    // Stopping the parent stops its linked child.
    run(&executor, {
        let (parent, second_child) = (parent.clone(), second_child.clone());
        async move {
            parent.stop();
            until_stopped(&parent).await;
            until_stopped(&second_child).await;
        }
    });
    root.stop();
    shut_down(executor);
}

#[test]
fn a_bad_backoff_is_an_error_where_it_is_built() {
    let ms = Duration::from_millis;
    let refused = |initial, max, multiplier, jitter| {
        RestartPolicy::exponential_backoff(initial, max, multiplier, jitter)
            .unwrap_err()
            .to_string()
    };
    assert!(refused(ms(1), ms(10), 0.5, 0.0).contains("multiplier"));
    assert!(refused(ms(1), ms(10), f64::NAN, 0.0).contains("multiplier"));
    assert!(refused(ms(1), ms(10), f64::INFINITY, 0.0).contains("multiplier"));
    assert!(refused(ms(1), ms(10), 2.0, 1.5).contains("jitter"));
    assert!(refused(ms(1), ms(10), 2.0, -0.1).contains("jitter"));
    assert!(refused(ms(20), ms(10), 2.0, 0.0).contains("initial delay"));
    let backoff = Backoff::new(ms(1), ms(10), 2.0, 0.5)
        .unwrap()
        .max_attempts(3);
    assert_eq!(backoff.attempts_limit(), Some(3));
    assert_eq!(backoff.multiplier(), 2.0);
}

#[test]
fn recorded_children_count_messages_latency_restarts_dead_letters_and_escalations() {
    use proc_daemon_actors::metrics::{self, LATENCY_SAMPLE_EVERY};
    metrics::set_enabled(true);
    let executor = executor();
    let root = Supervisor::builder()
        .name("metrics-test")
        .intensity(1, Duration::from_secs(10))
        .spawn(&executor);
    let log = Log::default();
    let (starts, factory) = Worker::factory("w", &log);
    run(&executor, {
        let root = root.clone();
        async move {
            let child = root
                .child("w", factory)
                .restart(RestartPolicy::Always)
                .spawn()
                .await
                .unwrap();
            for _ in 0..LATENCY_SAMPLE_EVERY * 2 {
                child.ask(Do::Count).await.unwrap();
            }
            let sample = |path: &str| {
                metrics::sample_actors()
                    .into_iter()
                    .find(|actor| &*actor.path == path)
                    .unwrap()
            };
            let before = sample("metrics-test/w");
            assert_eq!(&*before.supervisor, "metrics-test");
            assert_eq!(before.handled, LATENCY_SAMPLE_EVERY * 2);
            assert_eq!(
                before.latency.count, 2,
                "one message in every sample period is timed"
            );
            assert_eq!(before.restarts, 0);
            assert_eq!(before.state, ActorState::Running);
            // A panic: the message is a dead letter, and the child restarts.
            let _ = child.ask(Do::Panic).await;
            until_started(&starts, 2).await;
            let after = sample("metrics-test/w");
            assert_eq!(after.restarts, 1);
            assert_eq!(after.dead_letters, 1);
            // A second failure within the window exceeds an intensity of
            // one: the supervisor gives up, which counts as an escalation.
            let _ = child.ask(Do::Panic).await;
            until_stopped(&root).await;
            let supervisor = metrics::sample_supervisors()
                .into_iter()
                .find(|s| &*s.path == "metrics-test")
                .unwrap();
            assert_eq!(supervisor.escalations, 1);
        }
    });
    shut_down(executor);
}

#[test]
fn a_restart_on_request_restarts_only_that_child_even_under_one_for_all() {
    let (executor, root, log) = tree(Strategy::OneForAll);
    let (a_starts, a) = Worker::factory("a", &log);
    let (b_starts, b) = Worker::factory("b", &log);
    run(&executor, {
        let root = root.clone();
        async move {
            let a = root.child("a", a).spawn().await.unwrap();
            let b = root.child("b", b).spawn().await.unwrap();
            b.ask(Do::Count).await.unwrap();
            root.restart_child("b").await.unwrap().unwrap();
            until_started(&b_starts, 2).await;
            // The same reference reaches the new incarnation, whose state
            // is fresh.
            assert_eq!(b.ask(Do::Count).await.unwrap(), 1);
            assert_eq!(a.ask(Do::Count).await.unwrap(), 1);
            assert_eq!(a_starts.load(Ordering::SeqCst), 1, "a was left alone");
            let children = root.children().await.unwrap();
            let names: Vec<&str> = children.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, ["a", "b"]);
            assert_eq!(children[0].restarts, 0);
            assert_eq!(children[1].restarts, 1);
            assert_eq!(children[1].id, b.id());
            assert_eq!(children[1].state, ActorState::Running);
            assert!(children[1].uptime.unwrap() <= children[0].uptime.unwrap());
            assert!(children.iter().all(|c| c.supervisor.is_none()));
            root.stop();
            until_stopped(&root).await;
        }
    });
    shut_down(executor);
}

#[test]
fn a_restart_on_request_is_refused_past_the_intensity_or_for_a_stopped_child() {
    use proc_daemon_actors::supervision::RestartRefused;
    let executor = executor();
    let root = Supervisor::builder()
        .intensity(2, Duration::from_secs(60))
        .spawn(&executor);
    let log = Log::default();
    let (_, w) = Worker::factory("w", &log);
    let (_, done) = Worker::factory("done", &log);
    run(&executor, {
        let root = root.clone();
        async move {
            root.child("w", w).spawn().await.unwrap();
            let done = root
                .child("done", done)
                .restart(RestartPolicy::Never)
                .spawn()
                .await
                .unwrap();
            let _ = done.ask(Do::Complete).await;
            until_stopped(&done).await;
            let refused = root.restart_child("done").await.unwrap().unwrap_err();
            assert!(
                matches!(refused, RestartRefused::StoppedForGood { .. }),
                "{refused}"
            );
            let unknown = root.restart_child("nobody").await.unwrap().unwrap_err();
            assert_eq!(
                unknown.to_string(),
                "no child is named `nobody`; the children are: w, done"
            );
            root.restart_child("w").await.unwrap().unwrap();
            root.restart_child("w").await.unwrap().unwrap();
            // A third within the window would exceed 2: refused, and the
            // supervisor does not give up.
            let refused = root.restart_child("w").await.unwrap().unwrap_err();
            assert!(
                matches!(
                    refused,
                    RestartRefused::IntensityExceeded {
                        max_restarts: 2,
                        ..
                    }
                ),
                "{refused}"
            );
            assert_eq!(root.state(), ActorState::Running);
            let children = root.children().await.unwrap();
            assert_eq!(children[0].restarts, 2);
            assert_eq!(children[1].state, ActorState::Stopped);
            assert_eq!(children[1].uptime, None);
            root.stop();
            until_stopped(&root).await;
        }
    });
    shut_down(executor);
}

#[test]
fn children_shows_a_nested_supervisor_to_walk_into() {
    let (executor, root, log) = tree(Strategy::OneForOne);
    let (_, leaf) = Worker::factory("leaf", &log);
    run(&executor, {
        let root = root.clone();
        async move {
            let pool = root
                .child("pool", || Supervisor::builder().build())
                .spawn()
                .await
                .unwrap();
            pool.child("leaf", leaf).spawn().await.unwrap();
            let children = root.children().await.unwrap();
            let nested = children[0]
                .supervisor
                .clone()
                .expect("pool is a supervisor");
            assert_eq!(nested.id(), pool.id());
            let grandchildren = nested.children().await.unwrap();
            assert_eq!(grandchildren[0].name, "leaf");
            nested.restart_child("leaf").await.unwrap().unwrap();
            root.stop();
            until_stopped(&root).await;
        }
    });
    shut_down(executor);
}
