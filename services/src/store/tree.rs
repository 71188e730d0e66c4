//! The global log's Merkle tree in the store: the hashes of its perfect subtrees, how many
//! leaves it has (the `log_tree` cursor), and the signed checkpoints. Schema and layout in
//! `schemas/migrations/*/0006_log_tree.sql`; the tree is grown by `services/src/log/tree.rs`.

use super::log::{from_sql, to_sql};
use super::{Db, Store, StoreError};
use saoma_domain::canonical::Digest;
use sqlx::{QueryBuilder, Sqlite};
use std::collections::HashMap;

/// The cursor that holds the stored tree's size.
pub const LOG_TREE_CURSOR: &str = "log_tree";

/// A node of the tree: the perfect subtree `(level, index)` over leaves
/// `[index << level, (index + 1) << level)`.
pub type NodeId = (u32, u64);

/// One signed checkpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub tree_size: u64,
    pub root: Digest,
    /// The whole signed note, as served.
    pub note: String,
    /// RFC 3339 UTC.
    pub signed_at: String,
}

const GROW_CURSOR: &str = "UPDATE cursors SET position = $1 WHERE name = $3 AND position = $2";
const INSERT_CHECKPOINT: &str = "INSERT INTO log_checkpoints (tree_size, root, note, signed_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (tree_size) DO NOTHING";
const CHECKPOINT_COLUMNS: &str = "SELECT tree_size, root, note, signed_at FROM log_checkpoints";
/// A round's nodes on PostgreSQL: one array per column.
const INSERT_NODES_PG: &str = "INSERT INTO log_tree_nodes (level, idx, hash) \
     SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[])";
/// Rows per multi-row INSERT of nodes on SQLite (three parameters each, below its limit).
const NODES_PER_INSERT: usize = 2_000;

type RawCheckpoint = (i64, Vec<u8>, String, String);

fn checkpoint(
    (size, root, note, signed_at): RawCheckpoint,
) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        tree_size: from_sql(size),
        root: digest(root)?,
        note,
        signed_at,
    })
}

fn digest(bytes: Vec<u8>) -> Result<Digest, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("a log tree hash is not 32 bytes".into()))?;
    Ok(Digest(bytes))
}

/// The most nodes one query of [`Store::tree_nodes`] asks for.
const NODES_PER_QUERY: usize = 2_000;

/// The parts of an event id `{aggregate type}/{aggregate id}/{sequence}`, as
/// [`Store::position_of`] takes them.
pub fn event_id_parts(id: &str) -> Option<(&str, &str, u64)> {
    let (stream, sequence) = id.rsplit_once('/')?;
    let (aggregate_type, aggregate_id) = stream.split_once('/')?;
    Some((aggregate_type, aggregate_id, sequence.parse().ok()?))
}

impl Store {
    /// How many leaves the stored tree has.
    pub async fn tree_size(&self) -> Result<u64, StoreError> {
        self.cursor(LOG_TREE_CURSOR).await
    }

    /// The stored hashes of the nodes asked for; a node not stored is absent from the answer.
    /// Asked in queries of at most [`NODES_PER_QUERY`] distinct nodes.
    pub async fn tree_nodes(
        &self,
        wanted: &[NodeId],
    ) -> Result<HashMap<NodeId, Digest>, StoreError> {
        let mut distinct = wanted.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        let mut found = HashMap::with_capacity(distinct.len());
        for chunk in distinct.chunks(NODES_PER_QUERY) {
            // Levels and indexes are the tree's own integers, never input text: written inline.
            let list = chunk
                .iter()
                .map(|(level, index)| format!("({level},{index})"))
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!(
                "SELECT level, idx, hash FROM log_tree_nodes WHERE (level, idx) IN ({list})"
            );
            let rows: Vec<(i64, i64, Vec<u8>)> = match &self.db {
                Db::Sqlite(p) => sqlx::query_as(&sql).fetch_all(p).await?,
                Db::Postgres(p) => {
                    let rows: Vec<(i16, i64, Vec<u8>)> = sqlx::query_as(&sql).fetch_all(p).await?;
                    rows.into_iter()
                        .map(|(l, i, h)| (i64::from(l), i, h))
                        .collect()
                }
            };
            for (level, index, hash) in rows {
                found.insert((from_sql(level) as u32, from_sql(index)), digest(hash)?);
            }
        }
        Ok(found)
    }

    /// The stored leaf hashes of leaf indexes `from..to`, by index.
    pub async fn tree_leaves(
        &self,
        from: u64,
        to: u64,
    ) -> Result<HashMap<u64, Digest>, StoreError> {
        const SQL: &str =
            "SELECT idx, hash FROM log_tree_nodes WHERE level = 0 AND idx >= $1 AND idx < $2";
        let rows: Vec<(i64, Vec<u8>)> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_as(SQL)
                    .bind(to_sql(from))
                    .bind(to_sql(to))
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_as(SQL)
                    .bind(to_sql(from))
                    .bind(to_sql(to))
                    .fetch_all(p)
                    .await?
            }
        };
        rows.into_iter()
            .map(|(index, hash)| Ok((from_sql(index), digest(hash)?)))
            .collect()
    }

    /// Stores the nodes that growing the tree from `from` to `to` leaves completed, and moves
    /// the size, in one transaction. Returns `false`, storing nothing, when the stored tree is
    /// no longer `from` leaves (another process grew it first).
    pub async fn grow_tree(
        &self,
        from: u64,
        to: u64,
        nodes: &[(u32, u64, Digest)],
    ) -> Result<bool, StoreError> {
        match &self.db {
            Db::Sqlite(p) => {
                let mut tx = p.begin().await?;
                let moved = sqlx::query(GROW_CURSOR)
                    .bind(to_sql(to))
                    .bind(to_sql(from))
                    .bind(LOG_TREE_CURSOR)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if moved != 1 {
                    return Ok(false);
                }
                for chunk in nodes.chunks(NODES_PER_INSERT) {
                    let mut insert = QueryBuilder::<Sqlite>::new(
                        "INSERT INTO log_tree_nodes (level, idx, hash) ",
                    );
                    insert.push_values(chunk, |mut row, (level, index, hash)| {
                        row.push_bind(i64::from(*level))
                            .push_bind(to_sql(*index))
                            .push_bind(hash.0.to_vec());
                    });
                    insert.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                let moved = sqlx::query(GROW_CURSOR)
                    .bind(to_sql(to))
                    .bind(to_sql(from))
                    .bind(LOG_TREE_CURSOR)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if moved != 1 {
                    return Ok(false);
                }
                // One statement, the same text every round (prepared once), one array per
                // column: no multi-row VALUES for PostgreSQL to parse and plan each time.
                let levels: Vec<i16> = nodes.iter().map(|(level, _, _)| *level as i16).collect();
                let indexes: Vec<i64> = nodes.iter().map(|(_, index, _)| to_sql(*index)).collect();
                let hashes: Vec<&[u8]> = nodes.iter().map(|(_, _, hash)| &hash.0[..]).collect();
                sqlx::query(INSERT_NODES_PG)
                    .bind(levels)
                    .bind(indexes)
                    .bind(hashes)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(true)
    }

    /// Keeps a signed checkpoint; one of the same size already kept stays as it is.
    pub async fn insert_checkpoint(&self, c: &StoredCheckpoint) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(p) => {
                sqlx::query(INSERT_CHECKPOINT)
                    .bind(to_sql(c.tree_size))
                    .bind(c.root.0.to_vec())
                    .bind(&c.note)
                    .bind(&c.signed_at)
                    .execute(p)
                    .await?;
            }
            Db::Postgres(p) => {
                sqlx::query(INSERT_CHECKPOINT)
                    .bind(to_sql(c.tree_size))
                    .bind(c.root.0.to_vec())
                    .bind(&c.note)
                    .bind(&c.signed_at)
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    /// The checkpoint of the largest tree; `None` before the first.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql = format!("{CHECKPOINT_COLUMNS} ORDER BY tree_size DESC LIMIT 1");
        let row: Option<RawCheckpoint> = match &self.db {
            Db::Sqlite(p) => sqlx::query_as(&sql).fetch_optional(p).await?,
            Db::Postgres(p) => sqlx::query_as(&sql).fetch_optional(p).await?,
        };
        row.map(checkpoint).transpose()
    }

    /// The checkpoint signed for a tree of `size` leaves, if one was.
    pub async fn checkpoint_of_size(
        &self,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        let sql = format!("{CHECKPOINT_COLUMNS} WHERE tree_size = $1");
        let row: Option<RawCheckpoint> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_as(&sql)
                    .bind(to_sql(size))
                    .fetch_optional(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_as(&sql)
                    .bind(to_sql(size))
                    .fetch_optional(p)
                    .await?
            }
        };
        row.map(checkpoint).transpose()
    }

    /// Every checkpoint in tree-size order, from `after` (exclusive), at most `limit`.
    pub async fn checkpoints(
        &self,
        after: u64,
        limit: u64,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let sql = format!("{CHECKPOINT_COLUMNS} WHERE tree_size > $1 ORDER BY tree_size LIMIT $2");
        let rows: Vec<RawCheckpoint> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_as(&sql)
                    .bind(to_sql(after))
                    .bind(to_sql(limit))
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_as(&sql)
                    .bind(to_sql(after))
                    .bind(to_sql(limit))
                    .fetch_all(p)
                    .await?
            }
        };
        rows.into_iter().map(checkpoint).collect()
    }

    /// The log position of event `sequence` of the stream `aggregate_type/aggregate_id`, once
    /// it has one.
    pub async fn position_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: u64,
    ) -> Result<Option<u64>, StoreError> {
        const SQL: &str = "SELECT position FROM events \
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3";
        let position: Option<Option<i64>> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_scalar(SQL)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(to_sql(sequence))
                    .fetch_optional(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_scalar(SQL)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(to_sql(sequence))
                    .fetch_optional(p)
                    .await?
            }
        };
        Ok(position.flatten().map(from_sql))
    }
}
