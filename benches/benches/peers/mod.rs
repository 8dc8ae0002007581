//! Idle actors of each framework, shared by the actor benches.

use proc_daemon::actors::prelude::*;

/// A proc-daemon actor that does nothing.
pub(crate) struct Idle;
impl Actor for Idle {}

/// A kameo actor that does nothing.
#[derive(kameo::Actor)]
pub(crate) struct KIdle;
