//! Registry changes made by other processes on the same database.
//!
//! Each `saoma serve` keeps the registries in memory ([`RegistryView`]) and applies its own
//! changes as it commits them; a change committed through another process (an officer
//! registered, a device key revoked, an agency added) is read here, by following the registry
//! events in log order and reloading each entity they name from the store. Without it a
//! process would refuse, until restarted, the commands of an officer registered through
//! another, or accept a key another had revoked.

use crate::registry_view::RegistryView;
use crate::store::{Store, StoreError};
use saoma_domain::registry::{Registry, RegistryEvent};
use saoma_domain::seal::{parse_stored, Sealed};
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Registry changes read per query.
const PAGE: u64 = 1_000;

/// Longest wait between rounds after the database failed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Follows the registry changes positioned after a cursor into one process's view.
#[derive(Clone)]
pub struct RegistryFollower {
    pub(crate) store: Store,
    pub(crate) view: Arc<RwLock<RegistryView>>,
}

impl RegistryFollower {
    /// Reloads every entity changed after position `after` and returns the position it has
    /// seen up to. A change not yet positioned is seen in a later round.
    pub async fn round(&self, mut after: u64) -> Result<u64, StoreError> {
        loop {
            let changes = self.store.registry_changes_after(after, PAGE).await?;
            let Some((last, _)) = changes.last() else {
                return Ok(after);
            };
            let last = *last;
            let entities: BTreeSet<String> = changes.into_iter().map(|(_, e)| e).collect();
            for entity in &entities {
                self.reload(entity).await?;
            }
            metrics::counter!("saoma_registry_entities_reloaded_total")
                .increment(entities.len() as u64);
            after = last;
        }
    }

    /// Replaces one entity's state (`officer:…`, `agency:…`, …) with the store's.
    pub async fn reload(&self, entity: &str) -> Result<(), StoreError> {
        let mut state = Registry::default();
        for row in self
            .store
            .stream(<Registry as cqrs_es::Aggregate>::TYPE, entity)
            .await?
        {
            let event: Sealed<RegistryEvent> =
                parse_stored(&row.payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            cqrs_es::Aggregate::apply(&mut state, event);
        }
        self.view
            .write()
            .expect("registry lock")
            .replace(entity, state);
        Ok(())
    }
}

/// Runs rounds from position `after` every `interval` until `stop`. (This process's own
/// changes are in its view as soon as they commit; the rounds are for the others'.)
pub async fn run(
    follower: RegistryFollower,
    mut after: u64,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = interval;
    loop {
        let wait = match follower.round(after).await {
            Ok(seen) => {
                after = seen;
                backoff = interval;
                interval
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "registry follow round failed");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = crate::log::stopped(&mut stop) => break,
        }
    }
}
