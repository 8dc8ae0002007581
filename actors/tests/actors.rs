//! Actors on a real executor: tell, ask, stop, panics and dead letters.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proc_daemon_actors::dead_letter::{self, DeadLetter, DeadLetterReason};
use proc_daemon_actors::mailbox::{Backend, Capacity};
use proc_daemon_actors::prelude::*;
use proc_daemon_actors::spawn::{SpawnOptions, spawn, spawn_with};
use proc_daemon_actors::{ActorId, ActorState};

mod common;
use common::{executor, run_within, shut_down, until_stopped};

/// Records what happens to it, in order.
#[derive(Default)]
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
    fail_start: bool,
}

impl Recorder {
    fn new(log: &Arc<Mutex<Vec<String>>>) -> Self {
        Recorder {
            log: log.clone(),
            fail_start: false,
        }
    }

    fn push(&self, entry: impl Into<String>) {
        self.log.lock().unwrap().push(entry.into());
    }
}

impl Actor for Recorder {
    async fn started(&mut self, _ctx: &mut Context<Self>) -> Result<(), BoxError> {
        if self.fail_start {
            return Err("no database".into());
        }
        self.push("started");
        Ok(())
    }

    async fn stopped(&mut self, _ctx: &mut Context<Self>, reason: &ExitReason) {
        self.push(format!("stopped: {reason}"));
    }
}

struct Note(&'static str);

impl Handler<Note> for Recorder {
    type Reply = usize;

    async fn handle(&mut self, Note(text): Note, _ctx: &mut Context<Self>) -> usize {
        self.push(text);
        self.log.lock().unwrap().len()
    }
}

struct Slow(Duration);

impl Handler<Slow> for Recorder {
    type Reply = ();

    async fn handle(&mut self, Slow(time): Slow, _ctx: &mut Context<Self>) {
        tokio::time::sleep(time).await;
        self.push("slow done");
    }
}

struct Boom;

impl Handler<Boom> for Recorder {
    type Reply = ();

    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) {
        panic!("boom while handling");
    }
}

struct StopMe;

impl Handler<StopMe> for Recorder {
    type Reply = ();

    async fn handle(&mut self, _: StopMe, ctx: &mut Context<Self>) {
        self.push("stop requested from inside");
        ctx.stop();
    }
}

/// Runs `future` on the executor and waits for it, bounded.
fn run<T: Send + 'static>(
    executor: &Executor,
    future: impl Future<Output = T> + Send + 'static,
) -> T {
    run_within(executor, Duration::from_secs(10), future)
}

fn stop_and_wait<A: Actor>(executor: &Executor, actor: ActorRef<A>) {
    actor.stop();
    run(executor, async move { until_stopped(&actor).await });
}

/// A two-worker executor running a `Recorder` with a mailbox from
/// `options`, and the recorder's log.
fn recorder(options: SpawnOptions) -> (Executor, Arc<Mutex<Vec<String>>>, ActorRef<Recorder>) {
    let executor = executor();
    let log = Arc::new(Mutex::new(Vec::new()));
    let actor = spawn_with(&executor, Recorder::new(&log), options);
    (executor, log, actor)
}

fn entries(log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[test]
fn tell_and_ask_are_handled_in_order() {
    let (executor, log, actor) = recorder(SpawnOptions::default());
    let answer = run(&executor, {
        let actor = actor.clone();
        async move {
            actor.tell(Note("one")).await.unwrap();
            actor.tell(Note("two")).await.unwrap();
            actor
                .ask(Note("three"))
                .timeout(Duration::from_secs(5))
                .await
        }
    });
    assert_eq!(answer, Ok(4), "started, one, two, three");
    assert_eq!(entries(&log), ["started", "one", "two", "three"]);
    assert!(actor.is_alive());
    assert_eq!(actor.state(), ActorState::Running);
    stop_and_wait(&executor, actor);
    shut_down(executor);
}

#[test]
fn stop_handles_what_is_queued_then_refuses_at_once() {
    let (executor, log, actor) = recorder(SpawnOptions::default());
    let (late_tell, late_ask) = run(&executor, {
        let actor = actor.clone();
        async move {
            // Keep the actor busy so the next messages queue up behind it.
            actor.tell(Slow(Duration::from_millis(50))).await.unwrap();
            actor.tell(Note("queued before stop")).await.unwrap();
            actor.stop();
            actor.wait_for_stop().await;
            let late_tell = actor.tell(Note("too late")).await;
            let late_ask = actor.ask(Note("too late")).await;
            (
                late_tell.map_err(|stopped| stopped.into_inner().0),
                late_ask,
            )
        }
    });
    assert_eq!(
        entries(&log),
        [
            "started",
            "slow done",
            "queued before stop",
            "stopped: stop was requested"
        ]
    );
    assert_eq!(late_tell, Err("too late"), "the message is handed back");
    assert_eq!(late_ask, Err(AskError::Stopped));
    assert!(!actor.is_alive());
    assert_eq!(actor.state(), ActorState::Stopped);
    // Stopping again does nothing.
    actor.stop();
    shut_down(executor);
}

#[test]
fn an_actor_can_stop_itself() {
    let (executor, log, actor) = recorder(SpawnOptions::default());
    run(&executor, {
        let actor = actor.clone();
        async move {
            actor.tell(StopMe).await.unwrap();
            actor.wait_for_stop().await;
        }
    });
    assert_eq!(
        entries(&log),
        [
            "started",
            "stop requested from inside",
            "stopped: stop was requested"
        ]
    );
    shut_down(executor);
}

/// Collects the dead letters addressed to one actor. The hook is global,
/// so each test filters by its own actor.
fn collect_dead_letters(actor: ActorId) -> Arc<Mutex<Vec<DeadLetter>>> {
    let letters = Arc::new(Mutex::new(Vec::new()));
    let sink = letters.clone();
    dead_letter::set_hook(move |letter| {
        if letter.actor == actor {
            sink.lock().unwrap().push(letter.clone());
        }
    });
    letters
}

#[test]
fn a_panicking_handler_is_reported_and_queued_messages_become_dead_letters() {
    let (executor, log, actor) = recorder(SpawnOptions::default().capacity(Capacity::Bounded(8)));
    let letters = collect_dead_letters(actor.id());
    let before = dead_letter::count();
    let (boom, queued) = run(&executor, {
        let actor = actor.clone();
        async move {
            // Queue a message behind the panic before it can happen.
            actor.tell(Slow(Duration::from_millis(30))).await.unwrap();
            let boom = actor.ask(Boom);
            let queued = async { actor.ask(Note("behind the panic")).await };
            let (boom, queued) = tokio::join!(boom.into_future(), queued);
            actor.wait_for_stop().await;
            (boom, queued)
        }
    });
    assert_eq!(
        boom,
        Err(AskError::HandlerPanicked {
            message: "boom while handling".to_owned()
        })
    );
    assert_eq!(
        queued,
        Err(AskError::Dropped),
        "an unsupervised actor is not restarted"
    );
    assert_eq!(
        entries(&log),
        [
            "started",
            "slow done",
            "stopped: panicked: boom while handling"
        ]
    );
    let letters = letters.lock().unwrap().clone();
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(letters[0].message_type.ends_with("Boom"));
    assert_eq!(
        letters[0].reason,
        DeadLetterReason::HandlerPanicked {
            message: "boom while handling".to_owned()
        }
    );
    assert!(letters[1].message_type.ends_with("Note"));
    assert_eq!(letters[1].reason, DeadLetterReason::ActorStopped);
    assert!(dead_letter::count() >= before + 2);
    assert_eq!(actor.state(), ActorState::Stopped);
    // The worker that ran the panicking handler is fine.
    assert_eq!(executor.spawn(async { 7 }).join(), Ok(7));
    shut_down(executor);
}

#[test]
fn a_failed_start_stops_the_actor_without_running_stopped() {
    let executor = executor();
    let log = Arc::new(Mutex::new(Vec::new()));
    let actor = spawn(
        &executor,
        Recorder {
            log: log.clone(),
            fail_start: true,
        },
    );
    let answer = run(&executor, {
        let actor = actor.clone();
        async move {
            actor.wait_for_stop().await;
            actor.ask(Note("after")).await
        }
    });
    assert_eq!(answer, Err(AskError::Stopped));
    assert!(entries(&log).is_empty(), "{:?}", entries(&log));
    shut_down(executor);
}

#[test]
fn a_recipient_delivers_without_naming_the_actor_type() {
    let (executor, log, actor) = recorder(SpawnOptions::default());
    let recipient: Recipient<Note> = actor.clone().recipient();
    assert_eq!(recipient.id(), actor.id());
    run(&executor, {
        let actor = actor.clone();
        async move {
            recipient.tell(Note("via recipient")).await.unwrap();
            // An ask behind it proves the tell was handled.
            actor.ask(Note("sync")).await.unwrap();
        }
    });
    assert_eq!(entries(&log), ["started", "via recipient", "sync"]);
    stop_and_wait(&executor, actor);
    shut_down(executor);
}

#[test]
fn try_tell_hands_back_the_message_when_the_mailbox_is_full() {
    let (executor, _log, actor) = recorder(SpawnOptions::default().capacity(Capacity::Bounded(1)));
    let outcome = run(&executor, {
        let actor = actor.clone();
        async move {
            actor.ask(Note("warm up")).await.unwrap();
            actor.tell(Slow(Duration::from_millis(100))).await.unwrap();
            // The slow message is being handled; one more fills the box.
            tokio::time::sleep(Duration::from_millis(20)).await;
            actor.try_tell(Note("fills it")).unwrap();
            actor
                .try_tell(Note("overflows"))
                .map_err(|error| match error {
                    TryTellError::Full(Note(text)) => text,
                    TryTellError::Stopped(_) => "stopped",
                })
        }
    });
    assert_eq!(outcome, Err("overflows"));
    stop_and_wait(&executor, actor);
    shut_down(executor);
}

#[test]
fn the_mutex_mailbox_behaves_the_same() {
    let (executor, log, actor) = recorder(SpawnOptions::default().backend(Backend::Mutex));
    let answer = run(&executor, {
        let actor = actor.clone();
        async move {
            actor.tell(Note("a")).await.unwrap();
            let answer = actor.ask(Note("b")).await;
            actor.stop();
            actor.wait_for_stop().await;
            answer
        }
    });
    assert_eq!(answer, Ok(3));
    assert_eq!(entries(&log).last().unwrap(), "stopped: stop was requested");
    shut_down(executor);
}

#[test]
fn an_ask_that_is_not_answered_in_time_times_out() {
    let (executor, _log, actor) = recorder(SpawnOptions::default());
    let answer = run(&executor, {
        let actor = actor.clone();
        async move {
            actor.tell(Slow(Duration::from_millis(300))).await.unwrap();
            actor
                .ask(Note("late"))
                .timeout(Duration::from_millis(50))
                .await
        }
    });
    assert_eq!(answer, Err(AskError::Timeout(Duration::from_millis(50))));
    stop_and_wait(&executor, actor);
    shut_down(executor);
}

#[test]
fn the_registry_finds_live_actors_by_name_and_type() {
    use proc_daemon_actors::registry::Registry;

    struct Other;
    impl Actor for Other {}

    let (executor, _log, actor) = recorder(SpawnOptions::default());
    let registry = Registry::new();
    registry.register("recorder", actor.clone()).unwrap();
    assert_eq!(registry.lookup::<Recorder>("recorder"), Some(actor.clone()));
    assert_eq!(registry.lookup::<Other>("recorder"), None, "wrong type");
    assert_eq!(registry.lookup::<Recorder>("nobody"), None);
    let rival = spawn(&executor, Other);
    let taken = registry.register("recorder", rival.clone()).unwrap_err();
    stop_and_wait(&executor, rival);
    assert_eq!(taken.name, "recorder");
    assert!(taken.holder.ends_with("Recorder"), "{taken}");
    assert_eq!(registry.names(), ["recorder"]);

    // A stopped actor gives its name up.
    stop_and_wait(&executor, actor);
    assert_eq!(registry.lookup::<Recorder>("recorder"), None);
    assert!(registry.names().is_empty());
    let other = spawn(&executor, Other);
    registry.register("recorder", other.clone()).unwrap();
    assert_eq!(registry.lookup::<Other>("recorder"), Some(other.clone()));
    assert!(registry.unregister("recorder"));
    assert!(!registry.unregister("recorder"));
    stop_and_wait(&executor, other);
    shut_down(executor);
}

#[test]
fn spawn_on_places_the_actor_on_that_worker() {
    use proc_daemon_actors::executor::SpawnError;
    use proc_daemon_actors::spawn::spawn_on;

    struct Where;
    impl Actor for Where {}
    struct WhichWorker;
    impl Handler<WhichWorker> for Where {
        type Reply = Option<usize>;
        async fn handle(&mut self, _: WhichWorker, ctx: &mut Context<Self>) -> Option<usize> {
            ctx.executor().current_worker()
        }
    }

    let executor = executor();
    for worker in 0..2 {
        let actor = spawn_on(&executor, worker, Where, SpawnOptions::default()).unwrap();
        let ran_on = run(&executor, {
            let actor = actor.clone();
            async move { actor.ask(WhichWorker).await }
        });
        assert_eq!(ran_on, Ok(Some(worker)));
        stop_and_wait(&executor, actor);
    }
    assert_eq!(
        spawn_on(&executor, 2, Where, SpawnOptions::default()).unwrap_err(),
        SpawnError::NoSuchWorker {
            worker: 2,
            workers: 2
        }
    );
    shut_down(executor);
}

/// Issue 24's million-actor run, at CI size (`benches/scaling.rs` runs
/// it at full size): ten thousand actors spawned, each answering one ask
/// with its own value, then all stopped, and nothing left on the workers.
#[test]
fn ten_thousand_actors_each_answer_one_ask_then_stop() {
    const ACTORS: u64 = 10_000;
    struct Echo(u64);
    impl Actor for Echo {}
    struct Which;
    impl Handler<Which> for Echo {
        type Reply = u64;
        async fn handle(&mut self, _: Which, _ctx: &mut Context<Self>) -> u64 {
            self.0
        }
    }
    let executor = executor();
    let spawner = executor.clone();
    let answered = run_within(&executor, Duration::from_secs(60), async move {
        let actors: Vec<_> = (0..ACTORS).map(|n| spawn(&spawner, Echo(n))).collect();
        let mut answered = 0;
        for (n, actor) in actors.iter().enumerate() {
            assert_eq!(actor.ask(Which).await.unwrap(), n as u64);
            answered += 1;
        }
        for actor in &actors {
            actor.stop();
        }
        for actor in &actors {
            actor.wait_for_stop().await;
            assert_eq!(actor.state(), ActorState::Stopped);
        }
        answered
    });
    assert_eq!(answered, ACTORS);
    // An actor is marked stopped just before its task returns: give the
    // last tasks a moment to finish.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while executor.metrics().iter().any(|worker| worker.alive > 0) {
        assert!(
            std::time::Instant::now() < deadline,
            "tasks left: {:?}",
            executor.metrics()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    shut_down(executor);
}
