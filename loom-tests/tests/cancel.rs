//! loom models of the shutdown signal: `CancelToken`
//! (`actors/src/cancel.rs`), which the daemon's shutdown and each
//! subsystem incarnation's stop are made of (`src/shutdown.rs`).
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p proc-daemon-loom-tests --release --test cancel
//! ```
//!
//! A waiter is a thread that `block_on`s `cancelled()`; loom fails a model
//! in which a waiter is never woken (every thread blocked), so each model
//! checks that no wake-up is lost, whatever the interleaving of the
//! cancel and the waiters' registration.
#![cfg(loom)]

use std::future::Future;
use std::pin::pin;
use std::task::Context;

use loom::cell::UnsafeCell;
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use proc_daemon_actors::cancel::CancelToken;

/// A cancel racing one waiter; what was written before the cancel is
/// visible to the waiter after it (release, then acquire).
#[test]
fn a_cancel_races_a_wait() {
    loom::model(|| {
        let token = Arc::new(CancelToken::new());
        let reason = Arc::new(UnsafeCell::new(0u32));
        let waiter = {
            let (token, reason) = (token.clone(), reason.clone());
            thread::spawn(move || {
                block_on(token.cancelled());
                assert!(token.is_cancelled());
                // SAFETY: read after the cancel was seen; loom checks that
                // the write before the cancel is ordered before it.
                reason.with(|reason| assert_eq!(unsafe { *reason }, 7));
            })
        };
        // SAFETY: written before the cancel; loom checks no read races it.
        reason.with_mut(|reason| unsafe { *reason = 7 });
        assert!(token.cancel());
        waiter.join().unwrap();
    });
}

/// Many waiters (two threads) and a cancel from the main thread: every
/// waiter returns. (A third waiter, on the main thread with the cancel on
/// a thread of its own, took 384 s at three preemptions; this shape checks
/// the same race, two registrations against one cancel, in a fraction.)
#[test]
fn a_cancel_wakes_every_waiter() {
    loom::model(|| {
        let token = Arc::new(CancelToken::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let token = token.clone();
                thread::spawn(move || block_on(token.cancelled()))
            })
            .collect();
        assert!(token.cancel());
        for waiter in waiters {
            waiter.join().unwrap();
        }
    });
}

/// Two cancels race: exactly one reports that it cancelled, and the waiter
/// returns.
#[test]
fn two_cancels_race() {
    loom::model(|| {
        let token = Arc::new(CancelToken::new());
        let other = {
            let token = token.clone();
            thread::spawn(move || token.cancel())
        };
        let waiter = {
            let token = token.clone();
            thread::spawn(move || block_on(token.cancelled()))
        };
        let mine = token.cancel();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one cancel counts");
        waiter.join().unwrap();
    });
}

/// A waiter that registers, is dropped (a `select!` branch that lost),
/// and a second waiter that registers in its place: the cancel racing
/// both still wakes the second, and the first's slot is given back.
#[test]
fn a_dropped_waiter_does_not_hide_a_live_one() {
    loom::model(|| {
        let token = Arc::new(CancelToken::new());
        let waiter = {
            let token = token.clone();
            thread::spawn(move || {
                {
                    // Polled once, registered (or found it cancelled),
                    // then dropped.
                    let mut first = pin!(token.cancelled());
                    let waker = noop_waker();
                    let _ = first.as_mut().poll(&mut Context::from_waker(&waker));
                }
                block_on(token.cancelled());
            })
        };
        token.cancel();
        waiter.join().unwrap();
    });
}

/// A waker that does nothing, for a poll whose wake-up nobody waits for.
fn noop_waker() -> std::task::Waker {
    std::task::Waker::noop().clone()
}

/// Polling the same waiter again (as a `select!` loop does) re-registers
/// in place; the cancel wakes it.
#[test]
fn a_waiter_polled_again_is_still_woken() {
    loom::model(|| {
        let token = Arc::new(CancelToken::new());
        let waiter = {
            let token = token.clone();
            thread::spawn(move || {
                let mut wait = pin!(token.cancelled());
                let waker = noop_waker();
                let first = wait.as_mut().poll(&mut Context::from_waker(&waker));
                if first.is_pending() {
                    block_on(wait);
                }
            })
        };
        token.cancel();
        waiter.join().unwrap();
    });
}
