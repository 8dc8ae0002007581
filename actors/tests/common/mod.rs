//! Helpers shared by the actor and supervision tests.

use std::time::Duration;

use proc_daemon_actors::prelude::*;

/// A two-worker executor.
pub(crate) fn executor() -> Executor {
    Executor::builder().worker_threads(2).build().unwrap()
}

/// Shuts the executor down, expecting every worker to exit.
pub(crate) fn shut_down(executor: Executor) {
    let report = executor.shutdown(Duration::from_secs(5)).unwrap();
    assert!(report.stuck_workers.is_empty(), "{report:?}");
}

/// Runs `future` on the executor and waits for it, bounded by `limit`.
pub(crate) fn run_within<T: Send + 'static>(
    executor: &Executor,
    limit: Duration,
    future: impl Future<Output = T> + Send + 'static,
) -> T {
    executor
        .spawn(async move {
            tokio::time::timeout(limit, future)
                .await
                .unwrap_or_else(|_| panic!("the test's exchange did not finish within {limit:?}"))
        })
        .join()
        .unwrap()
}

/// Waits until `actor` has stopped for good, bounded.
pub(crate) async fn until_stopped<A: Actor>(actor: &ActorRef<A>) {
    tokio::time::timeout(Duration::from_secs(5), actor.wait_for_stop())
        .await
        .expect("stopped within 5 s");
}
