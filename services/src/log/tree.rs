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
    #[error(
        "this store's log is signed as \"{signed}\", but this process would sign it as \"{configured}\": \
         set log_origin (SAOMA_LOG_ORIGIN) to \"{signed}\" (by default it is the host and port of \
         public_base_url, which every process on one store must share)"
    )]
    OtherOrigin { signed: String, configured: String },
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

    /// Refuses to go on signing a log whose checkpoints are signed under another origin: a
    /// log's checkpoints under two origins do not verify as one log (a process started with
    /// another `public_base_url`, or a changed one, would fork its identity unnoticed).
    /// `saoma serve` asks at start, to fail there rather than at its first checkpoint; every
    /// signing asks again ([`LogTree::checkpoint`]).
    pub async fn check_origin(&self) -> Result<(), TreeError> {
        match self.store.latest_checkpoint().await? {
            Some(latest) => self.same_origin(&latest),
            None => Ok(()),
        }
    }

    fn same_origin(&self, latest: &StoredCheckpoint) -> Result<(), TreeError> {
        let signed = latest.note.lines().next().unwrap_or_default();
        if signed == self.origin {
            return Ok(());
        }
        Err(TreeError::OtherOrigin {
            signed: signed.to_string(),
            configured: self.origin.clone(),
        })
    }

    /// Adds every positioned event not in the tree yet. Returns the tree's size after. An
    /// event that cannot be a leaf stops the tree right before it, and is named.
    pub async fn grow(&self) -> Result<u64, TreeError> {
        loop {
            let size = self.store.tree_size().await?;
            let rows = self.store.follow_after(size, ROUND_LIMIT).await?;
            if rows.is_empty() {
                return Ok(size);
            }
            let mut frontier = self.frontier(size).await?;
            let mut created = Vec::with_capacity(2 * rows.len());
            let mut broken = None;
            for row in &rows {
                let position = frontier.size() + 1;
                let leaf = if row.position == position {
                    LogLeaf::from_stored(&row.payload_text).map_err(|e| e.to_string())
                } else {
                    Err(format!("the log skips to position {}", row.position))
                };
                match leaf {
                    Ok(leaf) => frontier.push(leaf.tree_hash(), &mut created),
                    Err(reason) => {
                        broken = Some(TreeError::Leaf { position, reason });
                        break;
                    }
                }
            }
            let grown = frontier.size();
            if grown > size {
                if !self.store.grow_tree(size, grown, &created).await? {
                    // Another process grew the tree first: go on from where it is now.
                    continue;
                }
                metrics::counter!("saoma_log_tree_leaves_total").increment(grown - size);
                metrics::gauge!("saoma_log_tree_size").set(grown as f64);
            }
            if let Some(broken) = broken {
                return Err(broken);
            }
            if (rows.len() as u64) < ROUND_LIMIT {
                return Ok(grown);
            }
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
        if let Some(latest) = &latest {
            self.same_origin(latest)?;
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

    /// On demand: positions what is committed (waiting for a sequencer's round in progress),
    /// grows the tree and signs a checkpoint of it.
    pub async fn checkpoint_now(&self) -> Result<Option<StoredCheckpoint>, TreeError> {
        self.store
            .assign_all_positions(super::sequencer::ROUND_LIMIT)
            .await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    fn notary() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn tree(store: &Store) -> LogTree {
        let key = notary();
        let public = PublicKey(key.verifying_key());
        LogTree::new(
            store.clone(),
            Arc::new(key),
            public,
            "test.example/log".into(),
        )
    }

    /// Commits and positions `n` events with well-formed `hash` and `notary` members; returns
    /// their leaf hashes in position order.
    async fn commit(store: &Store, from: usize, n: usize) -> Vec<Digest> {
        let key = notary();
        for i in from..from + n {
            let hash = Digest::of(format!("event {i}").as_bytes());
            let payload = json!({
                "stream": format!("T/{}", i % 7),
                "hash": hash,
                "notary": {"key_id": key.key_id(), "signature": key.sign(&hash.0)},
            });
            let (id, seq) = ((i % 7).to_string(), (i / 7 + 1) as u64);
            store
                .insert_raw_event("T", &id, seq, "Ping", &payload)
                .await
                .unwrap();
        }
        while store.assign_positions(10_000).await.unwrap() > 0 {}
        let rows = store.events_after(from as u64, n as u64).await.unwrap();
        rows.iter()
            .map(|r| LogLeaf::from_stored(&r.payload_text).unwrap().tree_hash())
            .collect()
    }

    #[tokio::test]
    async fn two_trees_racing_on_one_store_grow_it_once_to_the_log_root_and_sign_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("saoma.db"))
            .await
            .unwrap();
        let (a, b) = (tree(&store), tree(&store));
        assert_eq!(a.checkpoint().await.unwrap(), None, "nothing to sign yet");
        let mut leaves = commit(&store, 0, 300).await;
        let (grown_a, grown_b) = tokio::join!(a.grow(), b.grow());
        assert_eq!((grown_a.unwrap(), grown_b.unwrap()), (300, 300));
        leaves.extend(commit(&store, 300, 45).await);
        assert_eq!(b.grow().await.unwrap(), 345);
        assert_eq!(a.grow().await.unwrap(), 345, "nothing new: unchanged");

        for size in [1, 2, 3, 255, 256, 257, 300, 345] {
            assert_eq!(
                a.root(size).await.unwrap(),
                merkle::root(&leaves[..size as usize])
            );
        }
        let signed = a.checkpoint().await.unwrap().unwrap();
        assert_eq!(signed.tree_size, 345);
        let opened = checkpoint::open(&signed.note, &a.public_key()).unwrap();
        assert_eq!((opened.size, opened.root), (345, merkle::root(&leaves)));
        // Nothing new: no second checkpoint of the same tree.
        assert_eq!(b.checkpoint().await.unwrap().unwrap(), signed);
        assert_eq!(store.checkpoints(0, 10).await.unwrap(), vec![signed]);

        // Proofs from the stored nodes verify.
        let root = merkle::root(&leaves);
        for index in [0, 1, 100, 344] {
            let proof = a
                .proof(|node| merkle::inclusion_proof(index, 345, node))
                .await
                .unwrap();
            assert!(merkle::verify_inclusion(
                index,
                345,
                &leaves[index as usize],
                &proof,
                &root
            ));
        }
        let proof = a
            .proof(|node| merkle::consistency_proof(300, 345, node))
            .await
            .unwrap();
        let old = merkle::root(&leaves[..300]);
        assert!(merkle::verify_consistency(300, 345, &old, &root, &proof));
    }

    #[tokio::test]
    async fn a_log_signed_under_one_origin_is_not_signed_under_another() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("saoma.db"))
            .await
            .unwrap();
        let signer = tree(&store);
        // Nothing signed yet: any origin may start the log.
        signer.check_origin().await.unwrap();
        commit(&store, 0, 5).await;
        signer
            .checkpoint_now()
            .await
            .unwrap()
            .expect("a checkpoint");
        signer.check_origin().await.unwrap();

        let key = notary();
        let public = PublicKey(key.verifying_key());
        let other = LogTree::new(
            store.clone(),
            Arc::new(key),
            public,
            "other:8080/log".into(),
        );
        match other.check_origin().await {
            Err(TreeError::OtherOrigin { signed, configured }) => {
                assert_eq!(
                    (signed.as_str(), configured.as_str()),
                    ("test.example/log", "other:8080/log")
                );
            }
            other => panic!("expected OtherOrigin, got {other:?}"),
        }
        // Nor does it sign a checkpoint of a grown tree under its own.
        commit(&store, 5, 3).await;
        other.grow().await.unwrap();
        assert!(matches!(
            other.checkpoint().await,
            Err(TreeError::OtherOrigin { .. })
        ));
        assert_eq!(
            store.latest_checkpoint().await.unwrap().unwrap().tree_size,
            5
        );
    }

    #[tokio::test]
    async fn an_event_that_cannot_be_a_leaf_stops_the_tree_before_it_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("saoma.db"))
            .await
            .unwrap();
        commit(&store, 0, 5).await;
        store
            .insert_raw_event("T", "broken", 1, "Ping", &json!({"hash": "not a hash"}))
            .await
            .unwrap();
        store.assign_positions(10).await.unwrap();
        let t = tree(&store);
        let error = t.grow().await.unwrap_err();
        assert!(
            matches!(error, TreeError::Leaf { position: 6, .. }),
            "{error}"
        );
        assert_eq!(
            store.tree_size().await.unwrap(),
            5,
            "the events before it are in"
        );
        assert!(matches!(
            t.grow().await,
            Err(TreeError::Leaf { position: 6, .. })
        ));
    }
}
