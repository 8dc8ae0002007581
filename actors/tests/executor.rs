//! The executor on real threads: pinning as the kernel reports it, placement,
//! tokio timers and sockets inside workers, cross-worker wake-ups, panics,
//! aborts and shutdown.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proc_daemon_actors::executor::topology::{Cpu, Topology, allowed_cpus, parse_cpu_list};
use proc_daemon_actors::executor::{Executor, JoinError, JoinHandle, ShutdownError, SpawnError};
use proc_daemon_actors::mailbox;
use proc_daemon_actors::support::ABORT_GRACE;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The CPUs the calling thread may run on, as the kernel reports them in
/// `/proc/thread-self/status`.
fn cpus_allowed_for_this_thread() -> BTreeSet<Cpu> {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .expect("Cpus_allowed_list in /proc/thread-self/status");
    parse_cpu_list(line.trim()).unwrap()
}

fn this_thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

fn shut_down(executor: &Executor) {
    let report = executor.shutdown(Duration::from_secs(5)).unwrap();
    assert!(report.stuck_workers.is_empty(), "{report:?}");
}

#[test]
fn each_pinned_worker_runs_on_exactly_its_cpu() {
    let executor = Executor::builder().thread_pinning(true).build().unwrap();
    let allowed = allowed_cpus();
    assert_eq!(
        executor.worker_count(),
        allowed.len(),
        "0 workers means one per allowed CPU"
    );
    let mut pinned_to = BTreeSet::new();
    for info in executor.workers() {
        let cpu = info.pinned_cpu.expect("this machine allows pinning");
        pinned_to.insert(cpu);
        let (name, comm, cpus) = executor
            .spawn_on(info.index, async {
                let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
                (
                    this_thread_name(),
                    comm.trim().to_owned(),
                    cpus_allowed_for_this_thread(),
                )
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(cpus, BTreeSet::from([cpu]), "worker {}", info.index);
        assert_eq!(name, format!("pd-worker-{}", info.index));
        assert_eq!(info.thread_name, name);
        assert_eq!(comm, name, "the kernel sees the whole name");
    }
    assert_eq!(
        pinned_to, allowed,
        "one worker per allowed CPU, each on its own"
    );
    shut_down(&executor);
}

/// Run by `under_taskset_workers_stay_inside_the_affinity_mask` in a child
/// process started under `taskset`; it prints where each worker is pinned.
#[test]
#[ignore = "run in a child process by under_taskset_workers_stay_inside_the_affinity_mask"]
fn child_prints_worker_cpus() {
    let allowed = allowed_cpus();
    for workers in [0, 3] {
        let executor = Executor::builder()
            .worker_threads(workers)
            .thread_pinning(true)
            .build()
            .unwrap();
        for info in executor.workers() {
            let cpus = executor
                .spawn_on(info.index, async { cpus_allowed_for_this_thread() })
                .unwrap()
                .join()
                .unwrap();
            assert!(cpus.is_subset(&allowed), "{cpus:?} outside {allowed:?}");
            let list: Vec<String> = cpus.iter().map(ToString::to_string).collect();
            println!("WORKER {} CPUS {}", info.index, list.join(","));
        }
        shut_down(&executor);
    }
}

#[test]
fn under_taskset_workers_stay_inside_the_affinity_mask() {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("taskset")
        .args(["-c", "1"])
        .arg(exe)
        .args([
            "--exact",
            "child_prints_worker_cpus",
            "--ignored",
            "--nocapture",
        ])
        .output()
        .expect("taskset (util-linux) must be installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // libtest prints the first line right after `test ... `, so look for
    // the marker anywhere.
    let cpus: Vec<&str> = stdout
        .split("WORKER ")
        .skip(1)
        .map(|rest| rest.lines().next().unwrap().split(" CPUS ").nth(1).unwrap())
        .collect();
    // One worker for `worker_threads = 0` (one allowed CPU), then three.
    assert_eq!(cpus, vec!["1"; 4], "{stdout}");
}

#[test]
fn spawn_on_runs_on_that_worker_and_spawn_cycles_over_all() {
    let executor = Executor::builder().worker_threads(3).build().unwrap();
    for index in 0..3 {
        let exec = executor.clone();
        let ran_on = executor
            .spawn_on(index, async move { exec.current_worker() })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(ran_on, Some(index));
    }
    let mut per_worker = [0; 3];
    for _ in 0..9 {
        let exec = executor.clone();
        let ran_on = executor
            .spawn(async move { exec.current_worker() })
            .join()
            .unwrap();
        per_worker[ran_on.unwrap()] += 1;
    }
    assert_eq!(per_worker, [3, 3, 3]);
    assert_eq!(
        executor.current_worker(),
        None,
        "the test thread is no worker"
    );
    assert_eq!(
        executor.spawn_on(3, async {}).unwrap_err(),
        SpawnError::NoSuchWorker {
            worker: 3,
            workers: 3
        }
    );
    shut_down(&executor);
}

/// Two NUMA nodes of one CPU each, from a fixture sysfs tree.
fn two_node_topology() -> (tempfile::TempDir, Topology) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("cpu")).unwrap();
    std::fs::write(root.join("cpu/online"), "0-1\n").unwrap();
    for (node, cpu) in [(0, 0), (1, 1)] {
        let path = root.join(format!("node/node{node}"));
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("cpulist"), format!("{cpu}\n")).unwrap();
    }
    let topology = Topology::from_sysfs(root, &BTreeSet::from([0, 1])).unwrap();
    (dir, topology)
}

/// From a task on worker `from`, spawns `count` children with
/// [`Executor::spawn`] and returns the worker each one ran on.
fn placement_of_spawns_from_worker(executor: &Executor, from: usize, count: usize) -> Vec<usize> {
    let exec = executor.clone();
    executor
        .spawn_on(from, async move {
            let mut placed = Vec::new();
            for _ in 0..count {
                let exec2 = exec.clone();
                let child = exec.spawn(async move { exec2.current_worker().unwrap() });
                placed.push(child.await.unwrap());
            }
            placed
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn numa_aware_spawns_stay_on_the_spawners_node() {
    let (_tree, topology) = two_node_topology();
    let executor = Executor::builder()
        .worker_threads(4)
        .numa_aware(true)
        .topology(topology)
        .build()
        .unwrap();
    let nodes: Vec<usize> = executor.workers().iter().map(|w| w.node).collect();
    assert_eq!(
        nodes,
        vec![0, 1, 0, 1],
        "workers alternate over the CPUs in NUMA order"
    );

    // From a worker on node 1, children land on node 1's workers only.
    let children = placement_of_spawns_from_worker(&executor, 1, 6);
    assert_eq!(children, vec![1, 3, 1, 3, 1, 3]);

    // Explicitly by node, round-robin inside it.
    let mut on_node_zero = Vec::new();
    for _ in 0..4 {
        let exec = executor.clone();
        let handle = executor
            .spawn_on_node(0, async move { exec.current_worker().unwrap() })
            .unwrap();
        on_node_zero.push(handle.join().unwrap());
    }
    assert_eq!(on_node_zero, vec![0, 2, 0, 2]);
    assert_eq!(
        executor.spawn_on_node(7, async {}).unwrap_err(),
        SpawnError::NoWorkerOnNode {
            node: 7,
            nodes: vec![0, 1]
        }
    );

    // From outside the workers, spawn cycles over every worker.
    let mut outside = BTreeSet::new();
    for _ in 0..4 {
        let exec = executor.clone();
        outside.insert(
            executor
                .spawn(async move { exec.current_worker().unwrap() })
                .join()
                .unwrap(),
        );
    }
    assert_eq!(outside, BTreeSet::from([0, 1, 2, 3]));
    shut_down(&executor);
}

#[test]
fn without_numa_awareness_spawns_from_a_worker_cycle_over_all() {
    let (_tree, topology) = two_node_topology();
    let executor = Executor::builder()
        .worker_threads(4)
        .topology(topology)
        .build()
        .unwrap();
    let placed: BTreeSet<usize> = placement_of_spawns_from_worker(&executor, 1, 4)
        .into_iter()
        .collect();
    assert_eq!(placed, BTreeSet::from([0, 1, 2, 3]));
    shut_down(&executor);
}

#[test]
fn timers_select_and_a_tcp_echo_work_inside_workers() {
    let executor = Executor::builder().worker_threads(2).build().unwrap();
    let listener = executor
        .spawn_on(1, async {
            tokio::net::TcpListener::bind("127.0.0.1:0").await
        })
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    let address = listener.local_addr().unwrap();
    // The echo server runs on worker 1; the listener moves there with it.
    let server = executor
        .spawn_on(1, async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let n = socket.read(&mut buf).await.unwrap();
            socket.write_all(&buf[..n]).await.unwrap();
        })
        .unwrap();
    let client = executor
        .spawn_on(0, async move {
            let started = tokio::time::Instant::now();
            tokio::time::sleep(Duration::from_millis(20)).await;
            let slept = started.elapsed();
            let timed_out = tokio::select! {
                () = std::future::pending::<()>() => false,
                () = tokio::time::sleep(Duration::from_millis(5)) => true,
            };
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream.write_all(b"ping over loopback").await.unwrap();
            let mut echoed = vec![0u8; 18];
            stream.read_exact(&mut echoed).await.unwrap();
            (slept, timed_out, echoed)
        })
        .unwrap();
    let (slept, timed_out, echoed) = client.join().unwrap();
    server.join().unwrap();
    assert!(slept >= Duration::from_millis(20), "{slept:?}");
    assert!(timed_out);
    assert_eq!(echoed, b"ping over loopback");
    shut_down(&executor);
}

#[test]
fn tasks_on_different_workers_wake_each_other() {
    let executor = Executor::builder().worker_threads(2).build().unwrap();
    let (to_pong, mut pong_inbox) = mailbox::bounded::<u32>(1);
    let (to_ping, mut ping_inbox) = mailbox::bounded::<u32>(1);
    let pong = executor
        .spawn_on(1, async move {
            while let Some(n) = pong_inbox.recv().await {
                to_ping.send(n + 1).await.unwrap();
            }
        })
        .unwrap();
    let ping = executor
        .spawn_on(0, async move {
            let mut n = 0;
            for _ in 0..1000 {
                to_pong.send(n).await.unwrap();
                n = ping_inbox.recv().await.unwrap();
            }
            n
        })
        .unwrap();
    assert_eq!(ping.join().unwrap(), 1000);
    pong.join().unwrap();
    shut_down(&executor);
}

#[test]
fn a_panic_is_reported_through_the_handle_and_the_worker_survives() {
    let executor = Executor::builder().worker_threads(1).build().unwrap();
    let error = executor
        .spawn(async { panic!("boom in a task") })
        .join()
        .unwrap_err();
    assert_eq!(
        error,
        JoinError::Panicked {
            message: "boom in a task".to_owned()
        }
    );
    let formatted = executor
        .spawn(async {
            let n = 7;
            panic!("formatted {n}")
        })
        .join()
        .unwrap_err();
    assert_eq!(formatted.to_string(), "the task panicked: formatted 7");
    assert_eq!(executor.spawn(async { 5 }).join(), Ok(5));
    assert_eq!(executor.metrics()[0].alive, 0);
    shut_down(&executor);
}

#[test]
fn abort_ends_a_task_and_the_counters_follow() {
    let executor = Executor::builder().worker_threads(1).build().unwrap();
    let forever = executor.spawn(std::future::pending::<()>());
    for _ in 0..10 {
        executor
            .spawn(async {
                tokio::task::yield_now().await;
            })
            .join()
            .unwrap();
    }
    let metrics = executor.metrics()[0];
    assert_eq!(metrics.spawned, 11);
    assert_eq!(metrics.alive, 1);
    assert!(
        metrics.polls >= 21,
        "each yielding task is polled twice: {metrics:?}"
    );
    forever.abort();
    assert_eq!(forever.join(), Err(JoinError::Aborted));
    assert_eq!(executor.metrics()[0].alive, 0);
    shut_down(&executor);
}

#[test]
fn shutdown_waits_for_tasks_that_finish_in_time() {
    let executor = Executor::builder().worker_threads(2).build().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let task = executor.spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        flag.store(true, Ordering::SeqCst);
        "finished"
    });
    let report = executor.shutdown(Duration::from_secs(10)).unwrap();
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(report.aborted_tasks, 0);
    assert!(report.stuck_workers.is_empty());
    assert!(
        report.elapsed < Duration::from_secs(5),
        "returned when idle, not at the timeout: {report:?}"
    );
    assert_eq!(task.join(), Ok("finished"));
    // Closed for business.
    assert_eq!(executor.spawn(async {}).join(), Err(JoinError::ShutDown));
    assert_eq!(
        executor.spawn_blocking(|| {}).join(),
        Err(JoinError::ShutDown)
    );
    assert_eq!(
        executor.shutdown(Duration::from_secs(1)).unwrap_err(),
        ShutdownError::AlreadyShutDown
    );
}

#[test]
fn shutdown_aborts_a_task_that_ignores_it_at_the_timeout() {
    let executor = Executor::builder().worker_threads(2).build().unwrap();
    let stubborn = executor.spawn(async {
        loop {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let timeout = Duration::from_millis(300);
    let report = executor.shutdown(timeout).unwrap();
    assert!(report.elapsed >= timeout, "{report:?}");
    assert!(
        report.elapsed < timeout + ABORT_GRACE + Duration::from_secs(2),
        "{report:?}"
    );
    assert_eq!(report.aborted_tasks, 1);
    assert!(report.stuck_workers.is_empty());
    assert_eq!(stubborn.join(), Err(JoinError::Aborted));
}

/// A two-worker executor whose worker `blocked` is blocked in sync code
/// for `for_how_long` (already blocking when this returns), and the
/// blocking task's handle.
fn two_workers_one_blocked(blocked: usize, for_how_long: Duration) -> (Executor, JoinHandle<()>) {
    let executor = Executor::builder().worker_threads(2).build().unwrap();
    let blocker = executor
        .spawn_on(blocked, async move {
            std::thread::sleep(for_how_long);
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    (executor, blocker)
}

#[test]
fn a_worker_blocked_in_sync_code_is_reported_stuck_not_waited_for() {
    let (executor, blocker) = two_workers_one_blocked(0, Duration::from_millis(1500));
    let started = Instant::now();
    let report = executor.shutdown(Duration::from_millis(200)).unwrap();
    assert_eq!(report.stuck_workers, vec![0]);
    assert!(
        started.elapsed() < Duration::from_millis(1200),
        "{report:?}"
    );
    // The blocking task ends on its own; its worker then exits, dropping
    // nothing: the task completed.
    assert_eq!(blocker.join(), Ok(()));
}

#[test]
fn blocking_work_runs_unpinned_off_the_workers() {
    let executor = Executor::builder().thread_pinning(true).build().unwrap();
    let exec = executor.clone();
    let (name, cpus) = executor
        .spawn_on(0, async move {
            // Asked for from a pinned worker...
            exec.spawn_blocking(|| (this_thread_name(), cpus_allowed_for_this_thread()))
                .await
                .unwrap()
        })
        .unwrap()
        .join()
        .unwrap();
    // ...it runs on a blocking thread that may use every allowed CPU.
    assert_eq!(name, "pd-worker-blk");
    assert_eq!(cpus, allowed_cpus());
    shut_down(&executor);
}

#[test]
fn shutdown_from_inside_a_worker_is_refused_with_a_reason() {
    let executor = Executor::builder().worker_threads(1).build().unwrap();
    let exec = executor.clone();
    let result = executor
        .spawn(async move { exec.shutdown(Duration::from_millis(100)) })
        .join();
    // The worker stops at the deadline, after this task has returned, so
    // the handle still has the result.
    assert_eq!(
        result.unwrap().unwrap_err(),
        ShutdownError::CalledFromOwnWorker { worker: 0 }
    );
}

/// Collects everything the global `tracing` subscriber writes.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn refused_pinning_is_logged_once_and_the_worker_runs_unpinned() {
    let log = CapturedLog::default();
    let writer = log.clone();
    // Global, because the warning comes from a worker thread. No other
    // test in this file installs a subscriber.
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    // A topology naming CPU 1000, which no affinity mask here allows (the
    // kernel refuses to pin there), and CPU 4095, past what a `cpu_set_t`
    // holds (refused before asking the kernel).
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cpu")).unwrap();
    std::fs::write(dir.path().join("cpu/online"), "0-4095\n").unwrap();
    std::fs::create_dir_all(dir.path().join("node/node0")).unwrap();
    let first = *allowed_cpus().first().unwrap();
    std::fs::write(
        dir.path().join("node/node0/cpulist"),
        format!("{first},1000,4095\n"),
    )
    .unwrap();
    let topology = Topology::from_sysfs(dir.path(), &BTreeSet::from([first, 1000, 4095])).unwrap();
    let executor = Executor::builder()
        .worker_threads(6)
        .thread_pinning(true)
        .topology(topology)
        .build()
        .unwrap();
    let pinned: Vec<Option<Cpu>> = executor.workers().iter().map(|w| w.pinned_cpu).collect();
    assert_eq!(
        pinned,
        vec![Some(first), None, None, Some(first), None, None]
    );
    // The unpinned workers still run tasks.
    for worker in [1, 2, 4, 5] {
        assert_eq!(
            executor
                .spawn_on(worker, async move { worker })
                .unwrap()
                .join(),
            Ok(worker)
        );
    }
    shut_down(&executor);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|line| line.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{text}");
    assert!(warnings[0].contains("refused to pin"), "{text}");
    // Whichever refused worker gets there first logs; the others do not.
    assert!(
        warnings[0].contains("cpu=1000") || warnings[0].contains("cpu=4095"),
        "{text}"
    );
}

/// Awaits `ExecutorDrain::finished` from a runtime of the test's own, for at
/// most `within`.
fn await_workers_exited(
    executor: &Executor,
    within: Duration,
) -> Result<(), tokio::time::error::Elapsed> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async { tokio::time::timeout(within, executor.drain().finished()).await })
}

#[test]
fn shutdown_in_two_halves_begun_from_a_worker_and_awaited_elsewhere() {
    let executor = Executor::builder().worker_threads(2).build().unwrap();
    assert!(matches!(
        executor.drain().wait(),
        Err(ShutdownError::NotStarted)
    ));
    // A task that outlives the call to ExecutorDrain::begin: it gets until the
    // deadline, and the workers exit once it is done.
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let on_worker = executor.clone();
    executor
        .spawn(async move {
            drop(on_worker.spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                flag.store(true, Ordering::SeqCst);
            }));
            on_worker.drain().begin(Duration::from_secs(5)).unwrap();
            assert!(matches!(
                on_worker.drain().begin(Duration::from_secs(5)),
                Err(ShutdownError::AlreadyShutDown)
            ));
        })
        .join()
        .unwrap();
    await_workers_exited(&executor, Duration::from_secs(5))
        .expect("the workers exit once their last task is done");
    assert!(finished.load(Ordering::SeqCst), "the task ran to its end");
    assert!(executor.drain().is_finished());
    let report = executor.drain().wait().unwrap();
    assert_eq!(report.aborted_tasks, 0);
    assert!(report.stuck_workers.is_empty());
}

#[test]
fn the_worker_that_began_the_shutdown_gives_up_on_a_stuck_one() {
    let (executor, blocker) = two_workers_one_blocked(1, Duration::from_millis(2000));
    // A task on worker 0 that the deadline aborts: worker 0's own tasks end
    // only at the deadline, as a daemon's do when a subsystem is stuck.
    let slow = executor
        .spawn_on(0, async {
            tokio::time::sleep(Duration::from_secs(10)).await;
        })
        .unwrap();
    let on_worker = executor.clone();
    let started = Instant::now();
    executor
        .spawn_on(0, async move {
            on_worker.drain().begin(Duration::from_millis(100)).unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
    await_workers_exited(&executor, Duration::from_millis(1500))
        .expect("worker 0 gives up on worker 1 at the deadline plus the abort grace");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(100) + ABORT_GRACE,
        "gave up early: {waited:?}"
    );
    assert!(!executor.drain().is_finished(), "worker 1 is still blocked");
    let report = executor.drain().wait().unwrap();
    assert_eq!(report.stuck_workers, vec![1], "{report:?}");
    assert_eq!(slow.join(), Err(JoinError::Aborted));
    // The blocking task ends on its own, and its worker exits after it.
    assert_eq!(blocker.join(), Ok(()));
}

#[test]
fn a_worker_done_before_the_deadline_does_not_wait_for_the_others() {
    // Worker 1 is busy (blocked) for 600 ms; worker 0 begins a shutdown
    // with a 5 s deadline and has nothing to do. It must not hold its own
    // exit for worker 1: the async wait ends when worker 1 does.
    let (executor, blocker) = two_workers_one_blocked(1, Duration::from_millis(600));
    let on_worker = executor.clone();
    let started = Instant::now();
    executor
        .spawn_on(0, async move {
            on_worker.drain().begin(Duration::from_secs(5)).unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
    await_workers_exited(&executor, Duration::from_secs(3))
        .expect("the workers exit once worker 1's task is done");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "resolved before worker 1 was done: {:?}",
        started.elapsed()
    );
    let report = executor.drain().wait().unwrap();
    assert!(report.stuck_workers.is_empty(), "{report:?}");
    assert_eq!(blocker.join(), Ok(()));
}

thread_local! {
    /// A user's thread-local with a destructor, set by a task on a worker.
    static LEFT_BEHIND: std::cell::RefCell<Option<SetOnDrop>> = const { std::cell::RefCell::new(None) };
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        // Slow enough that a report sent before it would be seen first.
        std::thread::sleep(Duration::from_millis(50));
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn shutdown_returns_after_the_workers_thread_locals_are_dropped() {
    // The workers are not joined; their exit report comes from their
    // thread's last thread-local destructor, so a user's thread-local left
    // on a worker has been dropped when shutdown returns.
    let executor = Executor::builder().worker_threads(1).build().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    executor
        .spawn(async move {
            LEFT_BEHIND.with(|slot| *slot.borrow_mut() = Some(SetOnDrop(flag)));
        })
        .join()
        .unwrap();
    shut_down(&executor);
    assert!(
        dropped.load(Ordering::SeqCst),
        "shutdown returned before the worker thread's thread-locals were dropped"
    );
}

/// CPU time of this process's thread named `name`, from
/// `/proc/self/task/*/schedstat`.
fn cpu_time_of_thread(name: &str) -> Duration {
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap();
            let nanos: u64 = schedstat
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap();
            return Duration::from_nanos(nanos);
        }
    }
    panic!("no thread named {name}");
}

#[test]
fn a_shutdown_under_way_keeps_workers_spinning_within_a_budget() {
    let executor = Executor::builder()
        .worker_threads(1)
        .thread_name("spin-budget")
        .build()
        .unwrap();
    executor.spawn(async {}).join().unwrap();
    // Let it settle asleep.
    std::thread::sleep(Duration::from_millis(50));
    let before = cpu_time_of_thread("spin-budget-0");
    executor.drain().prepare();
    // 200 wake-ups, 2 ms apart: without a budget each would be followed by
    // 250 us of spinning, 50 ms in all.
    for _ in 0..200 {
        executor.spawn(async {}).join().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(50));
    let spent = cpu_time_of_thread("spin-budget-0") - before;
    // The default idle spin alone (20 us per wake-up) would be about 4 ms.
    assert!(
        spent >= Duration::from_millis(10),
        "the worker did not spin while a shutdown was under way: {spent:?}"
    );
    assert!(
        spent <= Duration::from_millis(35),
        "the worker spun past its 20 ms budget: {spent:?}"
    );
    shut_down(&executor);
}
