//! The series the runtime records by itself, read at scrape time: each
//! supervised actor's mailbox, messages, latency, restarts and dead
//! letters; each supervisor's children by state and escalations; each
//! executor worker's polls, parks and hand-offs; the daemon's uptime,
//! reloads and resources.
//!
//! Nothing here runs on the message path. Depths, states and counts are
//! read when `/metrics` is asked for.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use proc_daemon_actors::ActorState;
use proc_daemon_actors::Executor;
use proc_daemon_actors::dead_letter;
use proc_daemon_actors::executor::WorkerMetrics;
use proc_daemon_actors::metrics::{ActorSample, sample_actors, sample_supervisors};

use super::exposition::{Exposition, Float, Kind, labels};
use super::registry::global;
use crate::Config;
use crate::reload::ReloadStats;
use crate::resources::ResourceTracker;

/// What a scrape reads besides the registries.
#[derive(Clone)]
pub(crate) struct RuntimeView {
    pub(crate) executor: Executor,
    pub(crate) started: Instant,
    pub(crate) reload_stats: Arc<ReloadStats>,
    /// The configuration in effect (`track_resources` is live).
    pub(crate) config: Arc<arc_swap::ArcSwap<Config>>,
    pub(crate) resources: Option<ResourceTracker>,
}

/// A family read from each item of a kind: its name, help, type, and how
/// to read the value.
type Family<T> = (&'static str, &'static str, Kind, fn(&T) -> u64);

fn state_name(state: ActorState) -> &'static str {
    match state {
        ActorState::Starting => "starting",
        ActorState::Running => "running",
        ActorState::Stopping => "stopping",
        ActorState::Restarting => "restarting",
        _ => "stopped",
    }
}

const STATES: [&str; 5] = ["starting", "running", "stopping", "restarting", "stopped"];

/// The whole exposition: the runtime's series, then the program's.
pub(crate) fn render(view: &RuntimeView) -> String {
    let actors = sample_actors();
    let mut out = Exposition::with_capacity(4096 + actors.len() * 3072);
    let none = labels([]);

    let name = out.family(
        "proc_daemon_uptime_seconds",
        Kind::Gauge,
        "Seconds since the daemon started.",
    );
    out.sample(&name, &none, Float(view.started.elapsed().as_secs_f64()));
    let name = out.family(
        "proc_daemon_config_reloads_total",
        Kind::Counter,
        "Reloads that put a new configuration in effect.",
    );
    out.sample(&name, &none, view.reload_stats.applied());
    let name = out.family(
        "proc_daemon_config_reload_failures_total",
        Kind::Counter,
        "Reloads whose configuration did not build; the old one stayed.",
    );
    out.sample(&name, &none, view.reload_stats.failed());
    let name = out.family(
        "proc_daemon_dead_letters_total",
        Kind::Counter,
        "Messages never handled, by any actor of the process.",
    );
    out.sample(&name, &none, dead_letter::count());

    let tracking = view.config.load().monitoring.track_resources;
    if let Some(resources) = view.resources.as_ref().filter(|_| tracking) {
        let usage = resources.current_usage();
        let name = out.family(
            "proc_daemon_process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory of the process, in bytes.",
        );
        out.sample(&name, &none, usage.memory_bytes);
        let name = out.family(
            "proc_daemon_process_cpu_usage_ratio",
            Kind::Gauge,
            "CPU used by the process over the last sampling interval, in cores (1 is one core busy).",
        );
        out.sample(&name, &none, Float(usage.cpu_percent / 100.0));
        let name = out.family(
            "proc_daemon_process_threads",
            Kind::Gauge,
            "Threads of the process.",
        );
        out.sample(&name, &none, usage.thread_count);
    }

    let workers = view.executor.metrics();
    let worker_families: [Family<WorkerMetrics>; 5] = [
        (
            "proc_daemon_worker_polls_total",
            "Task polls run by the worker.",
            Kind::Counter,
            |w| w.polls,
        ),
        (
            "proc_daemon_worker_tasks_spawned_total",
            "Tasks spawned on the worker.",
            Kind::Counter,
            |w| w.spawned,
        ),
        (
            "proc_daemon_worker_tasks",
            "Tasks alive on the worker.",
            Kind::Gauge,
            |w| w.alive as u64,
        ),
        (
            "proc_daemon_worker_parks_total",
            "Times the worker ran out of work and parked its thread.",
            Kind::Counter,
            |w| w.idle_watch_misses,
        ),
        (
            "proc_daemon_worker_handoffs_total",
            "Tasks handed to the worker by other threads (spawns and wake-ups); workers never steal.",
            Kind::Counter,
            |w| w.handoffs,
        ),
    ];
    let worker_labels: Vec<_> = workers
        .iter()
        .map(|w| labels([("worker", w.worker.to_string())]))
        .collect();
    for (family, help, kind, read) in worker_families {
        let name = out.family(family, kind, help);
        for (worker, labels) in workers.iter().zip(&worker_labels) {
            out.sample(&name, labels, read(worker));
        }
    }

    let supervisors = sample_supervisors();
    let mut by_state: BTreeMap<(&str, &'static str), u64> = BTreeMap::new();
    for actor in &actors {
        *by_state
            .entry((&actor.supervisor, state_name(actor.state)))
            .or_default() += 1;
    }
    let name = out.family(
        "proc_daemon_supervisor_children",
        Kind::Gauge,
        "Supervised children by state.",
    );
    for supervisor in &supervisors {
        for state in STATES {
            let count = by_state
                .get(&(&*supervisor.path, state))
                .copied()
                .unwrap_or(0);
            let labels = labels([
                ("supervisor", supervisor.path.to_string()),
                ("state", state.to_owned()),
            ]);
            out.sample(&name, &labels, count);
        }
    }
    let name = out.family(
        "proc_daemon_supervisor_escalations_total",
        Kind::Counter,
        "Times the supervisor exceeded its restart intensity and gave up.",
    );
    for supervisor in &supervisors {
        let labels = labels([("supervisor", supervisor.path.to_string())]);
        out.sample(&name, &labels, supervisor.escalations);
    }

    let actor_labels: Vec<_> = actors
        .iter()
        .map(|a| {
            labels([
                ("actor", a.path.to_string()),
                ("supervisor", a.supervisor.to_string()),
            ])
        })
        .collect();
    let per_actor: [Family<ActorSample>; 4] = [
        (
            "proc_daemon_actor_mailbox_depth",
            "Messages waiting in the actor's mailbox.",
            Kind::Gauge,
            |a| a.mailbox_depth as u64,
        ),
        (
            "proc_daemon_actor_messages_handled_total",
            "Messages the actor has handled.",
            Kind::Counter,
            |a| a.handled,
        ),
        (
            "proc_daemon_actor_restarts_total",
            "Times the actor's supervisor restarted it.",
            Kind::Counter,
            |a| a.restarts,
        ),
        (
            "proc_daemon_actor_dead_letters_total",
            "Messages to the actor that were never handled.",
            Kind::Counter,
            |a| a.dead_letters,
        ),
    ];
    for (family, help, kind, read) in per_actor {
        let name = out.family(family, kind, help);
        for (actor, labels) in actors.iter().zip(&actor_labels) {
            out.sample(&name, labels, read(actor));
        }
    }
    let name = out.family(
        "proc_daemon_actor_handler_duration_seconds",
        Kind::Histogram,
        "Time the actor's handler took, timed for one message in 32 (the first of every 32).",
    );
    for (actor, labels) in actors.iter().zip(&actor_labels) {
        out.histogram(&name, labels, &actor.latency);
    }

    global().render(&mut out);
    out.into_text()
}
