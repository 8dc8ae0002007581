//! Blocking the calling thread on a mailbox operation: what
//! `Sender::blocking_send` and `Receiver::blocking_recv` use.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Wake, Waker};

use crate::loom::thread;

/// Wakes a thread blocked in [`block_on`].
struct ThreadWaker(thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the current thread, parking the thread
/// while it waits. This is what the `blocking_*` methods use; it is
/// `pub` for tests and benches, through [`support`](crate::support), not
/// as an executor.
#[cfg_attr(loom, allow(unreachable_pub))]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(std::sync::Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}
