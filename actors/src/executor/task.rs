//! Join handles, and the wrapper that does each task's accounting.
//!
//! Every task the executor places on a worker is wrapped in [`Tracked`],
//! which counts its polls and, when the task ends (it completes, is
//! aborted, or is dropped with its runtime), tells the worker that one
//! task fewer is alive. Shutdown waits on that count, and the metrics read
//! it, without a lock.
//!
//! A [`JoinHandle`] reports how the task ended: its output, a panic with
//! its message, an abort, or a rejection because the executor was already
//! shutting down. Nothing is dropped silently.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::worker::WorkerShared;

pin_project_lite::pin_project! {
    /// A task's future plus the accounting of the worker it runs on.
    pub(crate) struct Tracked<F> {
        #[pin]
        future: F,
        worker: Arc<WorkerShared>,
    }

    impl<F> PinnedDrop for Tracked<F> {
        fn drop(this: Pin<&mut Self>) {
            this.project().worker.task_ended();
        }
    }
}

impl<F> Tracked<F> {
    /// Wraps `future`; the worker counts it as alive from here until the
    /// wrapper is dropped.
    pub(crate) fn new(future: F, worker: Arc<WorkerShared>) -> Self {
        worker.task_started();
        Tracked { future, worker }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        this.worker.count_poll();
        this.future.poll(cx)
    }
}

/// Why a task produced no output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The task was aborted: through [`JoinHandle::abort`], or by
    /// [`Executor::shutdown`](super::Executor::shutdown) at its timeout.
    #[error("the task was aborted")]
    Aborted,
    /// The task panicked. The panic was caught; the worker it ran on keeps
    /// running.
    #[error("the task panicked: {message}")]
    Panicked {
        /// The panic's message, or a note that its payload was not a string.
        message: String,
    },
    /// The executor was shutting down when the task was spawned, so it
    /// never started.
    #[error("the executor is shut down; the task was not started")]
    ShutDown,
}

impl JoinError {
    fn from_tokio(error: tokio::task::JoinError) -> Self {
        match error.try_into_panic() {
            Ok(payload) => JoinError::Panicked {
                message: panic_message(payload.as_ref()),
            },
            Err(_) => JoinError::Aborted,
        }
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(the panic payload is not a string)".to_owned()
    }
}

/// An owned permission to wait for a task's output, or to abort it.
///
/// Dropping the handle detaches the task; it keeps running. Awaiting it
/// gives the task's output or a [`JoinError`] saying why there is none.
#[must_use = "dropping a JoinHandle detaches the task; await it or call abort()"]
pub struct JoinHandle<T> {
    state: HandleState<T>,
}

enum HandleState<T> {
    /// A task on a worker.
    Task(tokio::task::JoinHandle<T>),
    /// A closure on the blocking pool, awaited by a task on the pool's
    /// driver (see `blocking.rs`), which reports the closure's own result.
    Blocking(tokio::task::JoinHandle<Result<T, tokio::task::JoinError>>),
    /// Refused: the executor was shutting down.
    Rejected,
}

impl<T> JoinHandle<T> {
    pub(crate) fn task(handle: tokio::task::JoinHandle<T>) -> Self {
        JoinHandle {
            state: HandleState::Task(handle),
        }
    }

    pub(crate) fn blocking(
        handle: tokio::task::JoinHandle<Result<T, tokio::task::JoinError>>,
    ) -> Self {
        JoinHandle {
            state: HandleState::Blocking(handle),
        }
    }

    pub(crate) fn rejected() -> Self {
        JoinHandle {
            state: HandleState::Rejected,
        }
    }

    /// Aborts the task. A task on a worker is dropped at its next `.await`
    /// point (or at once if it is not running); awaiting the handle then
    /// gives [`JoinError::Aborted`]. A blocking closure that has not
    /// started yet never starts; one that is running runs to its end,
    /// because a thread cannot be interrupted, but its output is discarded.
    pub fn abort(&self) {
        match &self.state {
            HandleState::Task(handle) => handle.abort(),
            HandleState::Blocking(handle) => handle.abort(),
            HandleState::Rejected => {}
        }
    }

    /// Blocks the calling thread until the task ends, then gives what
    /// awaiting the handle would. For `main`, tests and other plain
    /// threads: called from inside an async task it would block that
    /// task's worker, so await the handle there instead.
    pub fn join(self) -> Result<T, JoinError> {
        crate::mailbox::block_on(self)
    }

    /// Whether the task has ended (completed, panicked or been aborted).
    pub fn is_finished(&self) -> bool {
        match &self.state {
            HandleState::Task(handle) => handle.is_finished(),
            HandleState::Blocking(handle) => handle.is_finished(),
            HandleState::Rejected => true,
        }
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // `JoinHandle` is `Unpin`: every variant is.
        match &mut self.get_mut().state {
            HandleState::Task(handle) => Pin::new(handle)
                .poll(cx)
                .map(|result| result.map_err(JoinError::from_tokio)),
            HandleState::Blocking(handle) => Pin::new(handle).poll(cx).map(|result| {
                result
                    .map_err(JoinError::from_tokio)?
                    .map_err(JoinError::from_tokio)
            }),
            HandleState::Rejected => Poll::Ready(Err(JoinError::ShutDown)),
        }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.state {
            HandleState::Task(_) => "task",
            HandleState::Blocking(_) => "blocking",
            HandleState::Rejected => "rejected",
        };
        f.debug_struct("JoinHandle")
            .field("kind", &kind)
            .field("finished", &self.is_finished())
            .finish()
    }
}
