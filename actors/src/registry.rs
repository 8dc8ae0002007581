//! A registry of actors by name and type, so a subsystem can find another
//! without being handed its reference.
//!
//! ```
//! use proc_daemon_actors::prelude::*;
//! use proc_daemon_actors::spawn::spawn;
//! use proc_daemon_actors::registry::Registry;
//!
//! struct Cache;
//! impl Actor for Cache {}
//!
//! let executor = Executor::builder().worker_threads(1).build()?;
//! let registry = Registry::new();
//! let cache = spawn(&executor, Cache);
//! registry.register("cache", cache.clone())?;
//! assert_eq!(registry.lookup::<Cache>("cache"), Some(cache.clone()));
//! // A name is unique: a second live actor cannot take it.
//! assert!(registry.register("cache", spawn(&executor, Cache)).is_err());
//! # executor.shutdown(std::time::Duration::from_secs(1))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A name holds one actor at a time, whatever its type; a lookup must name
//! the type it expects and gets `None` for another. An actor that has
//! stopped for good no longer holds its name: a lookup does not return it,
//! and a new actor may register under the name. Lookups take a read lock on
//! a map, which is fine for finding a peer once, not for a per-message path:
//! keep the reference you got.

use std::any::{Any, type_name};
use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};

use crate::actor::Actor;
use crate::actor_ref::ActorRef;

/// A name is held by a live actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the name `{name}` is already registered to a running {holder}")]
pub struct NameTaken {
    /// The name asked for.
    pub name: String,
    /// The type of the actor holding it.
    pub holder: &'static str,
}

struct Entry {
    actor: Box<dyn Any + Send + Sync>,
    type_name: &'static str,
    is_alive: fn(&(dyn Any + Send + Sync)) -> bool,
}

/// Actors by name. See the module docs.
#[derive(Default)]
pub struct Registry {
    entries: RwLock<HashMap<String, Entry>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f.debug_map()
            .entries(entries.iter().map(|(name, entry)| (name, entry.type_name)))
            .finish()
    }
}

fn alive<A: Actor>(actor: &(dyn Any + Send + Sync)) -> bool {
    actor
        .downcast_ref::<ActorRef<A>>()
        .is_some_and(ActorRef::is_alive)
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// The process-wide registry.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        GLOBAL.get_or_init(Registry::new)
    }

    /// Registers `actor` under `name`. Fails if a live actor holds the
    /// name; a stopped one is replaced.
    pub fn register<A: Actor>(
        &self,
        name: impl Into<String>,
        actor: ActorRef<A>,
    ) -> Result<(), NameTaken> {
        let name = name.into();
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(entry) = entries.get(&name)
            && (entry.is_alive)(entry.actor.as_ref())
        {
            return Err(NameTaken {
                name,
                holder: entry.type_name,
            });
        }
        entries.insert(
            name,
            Entry {
                actor: Box::new(actor),
                type_name: type_name::<A>(),
                is_alive: alive::<A>,
            },
        );
        Ok(())
    }

    /// The live actor of type `A` registered under `name`, if any.
    pub fn lookup<A: Actor>(&self, name: &str) -> Option<ActorRef<A>> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(name)
            .and_then(|entry| entry.actor.downcast_ref::<ActorRef<A>>())
            .filter(|actor| actor.is_alive())
            .cloned()
    }

    /// Removes `name`; returns whether it was registered.
    pub fn unregister(&self, name: &str) -> bool {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(name)
            .is_some()
    }

    /// The names of live actors, sorted.
    pub fn names(&self) -> Vec<String> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut names: Vec<String> = entries
            .iter()
            .filter(|(_, entry)| (entry.is_alive)(entry.actor.as_ref()))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }
}
