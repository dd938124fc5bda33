//! What every live ingester (Kraken, OANDA) shares, so that each venue crate holds only its
//! venue:
//!
//! - [`publisher`]: the bounded queue's consumer: producers per symbol and kind, every tick held
//!   until Pulsar's receipt and sent again on failure.
//! - [`DesiredSymbols`]: the symbol set the feed should serve, replaced by the control plane's
//!   assignments or changed by hand.
//! - [`control`]: following `AssignmentService.Watch` (with handovers), the status reports for
//!   the control plane, the Pulsar layout check at start.
//! - [`config`]: the `control` and `queue` sections both ingesters read.

pub mod config;
pub mod control;
pub mod publisher;

use std::collections::BTreeSet;
use std::sync::Arc;

use tickflow_schema::{Symbol, UnixNanos};
use tokio::sync::watch;

pub use config::{ControlConfig, QueueConfig, WhenFull};
pub use publisher::{Item, Publisher, PublisherMetrics};

/// A symbol taken over from another replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The symbol.
    pub symbol: Symbol,
    /// Data may be missing since.
    pub since: UnixNanos,
    /// Who had it.
    pub previous_owner: String,
}

/// The symbol set a feed should serve. Cheap to clone; every clone changes the same set, and
/// the feed [`subscribe`](Self::subscribe)s to changes.
#[derive(Debug, Clone)]
pub struct DesiredSymbols(Arc<watch::Sender<BTreeSet<Symbol>>>);

impl DesiredSymbols {
    /// A set starting as `initial`.
    pub fn new(initial: BTreeSet<Symbol>) -> Self {
        Self(Arc::new(watch::Sender::new(initial)))
    }

    /// Replaces the whole set; returns whether it changed (an identical set wakes nobody).
    pub fn set(&self, symbols: impl IntoIterator<Item = Symbol>) -> bool {
        let set: BTreeSet<Symbol> = symbols.into_iter().collect();
        self.0.send_if_modified(|current| {
            let changed = *current != set;
            if changed {
                *current = set;
            }
            changed
        })
    }

    /// Adds one symbol.
    pub fn add(&self, symbol: Symbol) {
        self.0.send_if_modified(|s| s.insert(symbol));
    }

    /// Removes one symbol.
    pub fn remove(&self, symbol: &Symbol) {
        self.0.send_if_modified(|s| s.remove(symbol));
    }

    /// The current set.
    pub fn get(&self) -> BTreeSet<Symbol> {
        self.0.borrow().clone()
    }

    /// A receiver that sees every change (the current set counts as seen).
    pub fn subscribe(&self) -> watch::Receiver<BTreeSet<Symbol>> {
        self.0.subscribe()
    }
}
