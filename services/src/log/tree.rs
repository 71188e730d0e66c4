//! The global log as a Merkle tree (RFC 9162) with signed checkpoints: follows the positions,
//! adds every positioned event as the next leaf, and signs a checkpoint of the tree in the C2SP
//! `tlog-checkpoint` format at most every `checkpoint_interval` while it grows (and whenever
//! asked, see [`LogTree::checkpoint_now`]). Leaf data and note format: `schemas/VERIFY.md`.
//!
//! Growing is optimistic: a round reads the tree's size, computes the nodes the next leaves
//! complete, and stores them only if the size is still what it read (`Store::grow_tree`). With
//! several processes on one database each round is done by exactly one of them; the others see
//! the new size and carry on from it, so none needs to be elected and any can die.

use crate::store::{NodeId, Store, StoreError, StoredCheckpoint};
use chrono::{SecondsFormat, Utc};
use saoma_domain::canonical::Digest;
use saoma_domain::checkpoint::{self, Checkpoint};
use saoma_domain::keys::{Notary, PublicKey};
use saoma_domain::merkle::{self, Frontier, MerkleError};
use saoma_domain::seal::LogLeaf;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Most leaves added in one round (one transaction).
pub const ROUND_LIMIT: u64 = 10_000;

/// Longest wait between rounds after the database failed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the event at position {position} cannot be a leaf: {reason}")]
    Leaf { position: u64, reason: String },
    #[error("the stored tree is inconsistent: {0}")]
    Tree(#[from] MerkleError),
    #[error("the stored tree lacks node {0:?}")]
    MissingNode(NodeId),
}

/// The log's tree over a store, and the key that signs its checkpoints.
#[derive(Clone)]
pub struct LogTree {
    store: Store,
    notary: Arc<dyn Notary>,
    public: PublicKey,
    origin: String,
}

impl LogTree {
    pub fn new(store: Store, notary: Arc<dyn Notary>, public: PublicKey, origin: String) -> Self {
        LogTree {
            store,
            notary,
            public,
            origin,
        }
    }

    /// The checkpoints' origin line, which is also their signature's key name.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// Adds every positioned event not in the tree yet. Returns the tree's size after.
    pub async fn grow(&self) -> Result<u64, TreeError> {
        loop {
            let size = self.store.tree_size().await?;
            let rows = self.store.events_after(size, ROUND_LIMIT).await?;
            let Some(last) = rows.last() else {
                return Ok(size);
            };
            let mut frontier = self.frontier(size).await?;
            let mut created = Vec::with_capacity(2 * rows.len());
            for row in &rows {
                if row.position != frontier.size() + 1 {
                    return Err(TreeError::Leaf {
                        position: frontier.size() + 1,
                        reason: format!("the log skips to position {}", row.position),
                    });
                }
                let leaf =
                    LogLeaf::from_stored(&row.payload_text).map_err(|e| TreeError::Leaf {
                        position: row.position,
                        reason: e.to_string(),
                    })?;
                frontier.push(leaf.tree_hash(), &mut created);
            }
            let (grown, full) = (last.position, rows.len() as u64 == ROUND_LIMIT);
            if self.store.grow_tree(size, grown, &created).await? {
                metrics::counter!("saoma_log_tree_leaves_total").increment(grown - size);
                metrics::gauge!("saoma_log_tree_size").set(grown as f64);
                if !full {
                    return Ok(grown);
                }
            }
            // Full round, or another process grew the tree first: go on from where it is now.
        }
    }

    /// The right edge of the stored tree's first `size` leaves.
    async fn frontier(&self, size: u64) -> Result<Frontier, TreeError> {
        let wanted = merkle::peak_positions(size);
        let nodes = self.store.tree_nodes(&wanted).await?;
        let peaks = wanted
            .iter()
            .map(|id| nodes.get(id).copied().ok_or(TreeError::MissingNode(*id)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Frontier::from_parts(size, peaks)?)
    }

    /// The root of the stored tree's first `size` leaves (the perfect subtrees of a smaller
    /// tree are nodes of the larger one).
    pub async fn root(&self, size: u64) -> Result<Digest, TreeError> {
        Ok(self.frontier(size).await?.root())
    }

    /// Signs a checkpoint of the stored tree unless the latest one already covers it. Returns
    /// the latest checkpoint after, `None` while the tree is empty.
    pub async fn checkpoint(&self) -> Result<Option<StoredCheckpoint>, TreeError> {
        let size = self.store.tree_size().await?;
        let latest = self.store.latest_checkpoint().await?;
        if size == 0 || latest.as_ref().is_some_and(|c| c.tree_size >= size) {
            return Ok(latest);
        }
        let root = self.root(size).await?;
        let note = checkpoint::sign(
            &Checkpoint {
                origin: self.origin.clone(),
                size,
                root,
            },
            self.notary.as_ref(),
            &self.public,
        );
        let signed = StoredCheckpoint {
            tree_size: size,
            root,
            note,
            signed_at: Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        };
        self.store.insert_checkpoint(&signed).await?;
        metrics::gauge!("saoma_log_checkpoint_size").set(size as f64);
        // Another process may have signed this size at the same moment: the stored one stands.
        Ok(self.store.checkpoint_of_size(size).await?.or(Some(signed)))
    }

    /// On demand: positions what is committed, grows the tree and signs a checkpoint of it.
    pub async fn checkpoint_now(&self) -> Result<Option<StoredCheckpoint>, TreeError> {
        while self
            .store
            .assign_positions(super::sequencer::ROUND_LIMIT)
            .await?
            == super::sequencer::ROUND_LIMIT
        {}
        self.grow().await?;
        self.checkpoint().await
    }

    /// The hashes of the nodes a proof over a tree of `size` needs, read from the store.
    /// `generate` is run twice: once to learn which nodes it asks for (the proofs' shapes
    /// depend only on the sizes), then on the stored hashes.
    pub async fn proof<T>(
        &self,
        generate: impl Fn(&mut dyn FnMut(u32, u64) -> Digest) -> Result<T, MerkleError>,
    ) -> Result<T, TreeError> {
        let mut wanted = Vec::new();
        generate(&mut |level, index| {
            wanted.push((level, index));
            Digest::ZERO
        })?;
        let nodes: HashMap<NodeId, Digest> = self.store.tree_nodes(&wanted).await?;
        if let Some(missing) = wanted.iter().find(|id| !nodes.contains_key(id)) {
            return Err(TreeError::MissingNode(*missing));
        }
        Ok(generate(&mut |level, index| nodes[&(level, index)])?)
    }
}

/// Grows the tree as positions are given and signs a checkpoint at most every
/// `checkpoint_interval` while it grows, until `stop`; then one last round.
pub async fn run(
    tree: LogTree,
    poll: Duration,
    checkpoint_interval: Duration,
    mut wake: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(
        origin = %tree.origin,
        checkpoint_interval_ms = checkpoint_interval.as_millis() as u64,
        "log tree started"
    );
    let mut backoff = poll;
    let mut last_checkpoint: Option<Instant> = None;
    let mut wake_open = true;
    loop {
        let due = last_checkpoint.is_none_or(|at| at.elapsed() >= checkpoint_interval);
        let round = async {
            tree.grow().await?;
            if due {
                tree.checkpoint().await?;
            }
            Ok::<_, TreeError>(())
        };
        let wait = match round.await {
            Ok(()) => {
                if due {
                    last_checkpoint = Some(Instant::now());
                }
                backoff = poll;
                match last_checkpoint {
                    // Wake for the next checkpoint when it is due, sooner for new positions.
                    Some(at) => poll.min(checkpoint_interval.saturating_sub(at.elapsed())),
                    None => poll,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "log tree round failed");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            changed = wake.changed(), if wake_open && wait == poll => {
                wake_open = changed.is_ok();
            }
            _ = super::stopped(&mut stop) => break,
        }
    }
    // What the sequencer's last round positioned enters the tree and a checkpoint now.
    if let Err(e) = async {
        tree.grow().await?;
        tree.checkpoint().await
    }
    .await
    {
        tracing::warn!(error = %e, "last log tree round failed");
    }
    tracing::info!("log tree stopped");
}
