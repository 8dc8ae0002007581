//! Catching panics: a panic in a handler, a hook or a daemon's subsystem
//! body is a failure that a supervisor handles, not the end of a worker
//! thread.
//!
//! The items are `pub` for the daemon crate, which reaches them through
//! [`support`](crate::support); they are not part of the actor API.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// Polls a future inside `catch_unwind`, turning a panic into
    /// `Err(message)`. The future is not polled again after a panic. The
    /// actor loop wraps every handler in it; the daemon wraps every
    /// subsystem body.
    ///
    /// ```
    /// use proc_daemon_actors::support::CatchUnwind;
    ///
    /// let caught = futures_lite_block_on(CatchUnwind::new(async { panic!("boom") }));
    /// assert_eq!(caught, Err::<(), _>("boom".to_owned()));
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct CatchUnwind<F> {
        #[pin]
        future: F,
    }
}

impl<F> CatchUnwind<F> {
    /// Wraps `future`.
    pub fn new(future: F) -> Self {
        CatchUnwind { future }
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let future = self.project().future;
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

/// The text of a panic payload (`panic!` gives a `&str` or a `String`;
/// anything else reads as "(the panic payload is not a string)").
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(the panic payload is not a string)".to_owned()
    }
}
