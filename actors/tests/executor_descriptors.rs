//! A worker's tokio runtime closes its descriptors (epoll, eventfd) on the
//! worker's own thread as it exits, not when the last handle to the
//! executor is dropped. Alone in its file so that no other test's
//! executors open or close descriptors while it counts them.

use std::time::Duration;

use proc_daemon_actors::executor::Executor;

/// The process's open epoll instances, from `/proc/self/fd`.
fn epoll_instances() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy() == "anon_inode:[eventpoll]")
        })
        .count()
}

#[test]
fn a_shut_down_worker_has_closed_its_runtime_while_the_executor_lives() {
    let before = epoll_instances();
    let executor = Executor::builder().worker_threads(2).build().unwrap();
    // Each worker has parked at least once, so its waker is in its queue.
    executor.spawn_on(0, async {}).unwrap().join().unwrap();
    executor.spawn_on(1, async {}).unwrap().join().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        epoll_instances() >= before + 2,
        "each worker's runtime has an epoll instance"
    );
    let report = executor.shutdown(Duration::from_secs(5)).unwrap();
    assert!(report.stuck_workers.is_empty());
    // `executor` is still alive here.
    assert_eq!(
        epoll_instances(),
        before,
        "the workers' runtimes are still open after shutdown"
    );
    drop(executor);
}
