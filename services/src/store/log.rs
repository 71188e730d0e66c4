//! The global log in the store: positions assigned after commit by one sequencer, reading events
//! in position order, and named cursors for the log's followers.
//!
//! Rows are written by the es crates with `position` NULL, and [`Store::assign_positions`]
//! fills it in. See `services/src/log/sequencer.rs` for why that keeps per-stream order, and
//! `schemas/migrations/*/0002_log_positions.sql` for the schema. On PostgreSQL our batched
//! writer's append gives positions itself, under the same lock and rules
//! (`0008_append_positioned.sql`).

use super::{Db, Store, StoreError};
use serde_json::Value;

const ASSIGN_POSTGRES: &str = include_str!("sql/log_assign_postgres.sql");
const ASSIGN_SQLITE: &str = include_str!("sql/log_assign_sqlite.sql");
const TRY_LOCK_POSTGRES: &str = include_str!("sql/log_try_lock_postgres.sql");
const UNPOSITIONED: &str = include_str!("sql/log_unpositioned.sql");
const MAX_POSITION: &str = include_str!("sql/log_max_position.sql");
const EVENTS_AFTER: &str = include_str!("sql/log_events_after.sql");
const REGISTRY_AFTER: &str = include_str!("sql/log_registry_after.sql");
const STREAM_BEFORE: &str = include_str!("sql/log_stream_before.sql");
const CURSOR: &str = include_str!("sql/log_cursor.sql");
pub(super) const SET_CURSOR: &str = include_str!("sql/log_set_cursor.sql");

/// The advisory lock key that elects the one sequencer of a PostgreSQL database ("SAOMASEQ").
pub const SEQUENCER_LOCK: i64 = 0x5341_4f4d_4153_4551;

/// One event read from the log, in position order.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedRow {
    pub position: u64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: u64,
    pub event_type: String,
    /// The payload exactly as stored, for whoever passes the signed bytes on. Not parsed
    /// here: the publisher only peeks into it, most readers never need it as a value.
    pub payload_text: String,
}

impl LoggedRow {
    /// The payload as a JSON value.
    pub fn payload(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.payload_text)
    }
}

type RawLogged = (i64, String, String, i64, String, String);

fn logged(
    (position, aggregate_type, aggregate_id, sequence, event_type, text): RawLogged,
) -> LoggedRow {
    LoggedRow {
        position: from_sql(position),
        aggregate_type,
        aggregate_id,
        sequence: from_sql(sequence),
        event_type,
        payload_text: text,
    }
}

impl Store {
    /// One sequencer round: gives up to `limit` events that have no position yet the next
    /// positions, consecutively after the current maximum, and returns how many it gave. On
    /// PostgreSQL it returns 0 at once when another process's sequencer holds the lock.
    pub async fn assign_positions(&self, limit: u64) -> Result<u64, StoreError> {
        let limit = to_sql(limit);
        Ok(match &self.db {
            Db::Sqlite(p) => sqlx::query(ASSIGN_SQLITE)
                .bind(limit)
                .execute(p)
                .await?
                .rows_affected(),
            Db::Postgres(p) => {
                let mut tx = p.begin().await?;
                // Transaction-scoped: released by the commit below, or by the server when this
                // process dies, so another process's sequencer takes over by itself.
                let leader: bool = sqlx::query_scalar(TRY_LOCK_POSTGRES)
                    .bind(SEQUENCER_LOCK)
                    .fetch_one(&mut *tx)
                    .await?;
                if !leader {
                    tx.rollback().await?;
                    return Ok(0);
                }
                // A new statement, so a new snapshot taken after the lock: it sees every
                // position the previous holder committed.
                let assigned = sqlx::query(ASSIGN_POSTGRES)
                    .bind(limit)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                assigned
            }
        })
    }

    /// Positions every event committed before the call, in rounds of `limit`. Unlike
    /// [`Store::assign_positions`], on PostgreSQL it waits for another sequencer's round to
    /// end instead of giving up (for a checkpoint asked for now, which must cover them).
    pub async fn assign_all_positions(&self, limit: u64) -> Result<(), StoreError> {
        match &self.db {
            Db::Sqlite(_) => while self.assign_positions(limit).await? == limit {},
            Db::Postgres(p) => loop {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SEQUENCER_LOCK)
                    .execute(&mut *tx)
                    .await?;
                // A new statement, so a snapshot taken after the lock (as in `assign_positions`).
                let assigned = sqlx::query(ASSIGN_POSTGRES)
                    .bind(to_sql(limit))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                if assigned < limit {
                    break;
                }
            },
        }
        Ok(())
    }

    /// Number of stored events without a position yet.
    pub async fn unpositioned(&self) -> Result<u64, StoreError> {
        let n: i64 = match &self.db {
            Db::Sqlite(p) => sqlx::query_scalar(UNPOSITIONED).fetch_one(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(UNPOSITIONED).fetch_one(p).await?,
        };
        Ok(from_sql(n))
    }

    /// The highest position given so far; 0 while the log is empty.
    pub async fn max_position(&self) -> Result<u64, StoreError> {
        let n: i64 = match &self.db {
            Db::Sqlite(p) => sqlx::query_scalar(MAX_POSITION).fetch_one(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(MAX_POSITION).fetch_one(p).await?,
        };
        Ok(from_sql(n))
    }

    /// Up to `limit` events with positions after `position`, in position order.
    pub async fn events_after(
        &self,
        position: u64,
        limit: u64,
    ) -> Result<Vec<LoggedRow>, StoreError> {
        let (after, limit) = (to_sql(position), to_sql(limit));
        let rows: Vec<RawLogged> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_as(EVENTS_AFTER)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_as(EVENTS_AFTER)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
        };
        Ok(rows.into_iter().map(logged).collect())
    }

    /// The same rows as [`Store::events_after`], for the log's followers: from this process's
    /// in-memory tail of what it appended when that holds the next position (`store/recent.rs`),
    /// else from the store. Readers that check what is stored (audit, export, proofs) read the
    /// store itself.
    pub async fn follow_after(
        &self,
        position: u64,
        limit: u64,
    ) -> Result<Vec<LoggedRow>, StoreError> {
        let (rows, from) = match self.recent.after(position, limit) {
            Some(rows) => (rows, "memory"),
            None => (self.events_after(position, limit).await?, "store"),
        };
        metrics::counter!("saoma_log_rows_read_total", "from" => from).increment(rows.len() as u64);
        Ok(rows)
    }

    /// Up to `limit` registry changes positioned after `position`, in position order: each
    /// change's position and entity (`officer:…`, `agency:…`, …).
    pub async fn registry_changes_after(
        &self,
        position: u64,
        limit: u64,
    ) -> Result<Vec<(u64, String)>, StoreError> {
        let (after, limit) = (to_sql(position), to_sql(limit));
        let rows: Vec<(i64, String)> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_as(REGISTRY_AFTER)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_as(REGISTRY_AFTER)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(position, entity)| (from_sql(position), entity))
            .collect())
    }

    /// The events of one stream positioned before `position`, in stream order.
    pub async fn stream_before(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        position: u64,
    ) -> Result<Vec<LoggedRow>, StoreError> {
        let before = to_sql(position);
        let rows: Vec<RawLogged> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_as(STREAM_BEFORE)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(before)
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_as(STREAM_BEFORE)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(before)
                    .fetch_all(p)
                    .await?
            }
        };
        Ok(rows.into_iter().map(logged).collect())
    }

    /// The last position the follower `name` has fully handled; 0 when it has none yet.
    pub async fn cursor(&self, name: &str) -> Result<u64, StoreError> {
        let n: Option<i64> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_scalar(CURSOR)
                    .bind(name)
                    .fetch_optional(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_scalar(CURSOR)
                    .bind(name)
                    .fetch_optional(p)
                    .await?
            }
        };
        Ok(n.map_or(0, from_sql))
    }

    /// Records that the follower `name` has handled everything up to `position`.
    pub async fn set_cursor(&self, name: &str, position: u64) -> Result<(), StoreError> {
        let position = to_sql(position);
        match &self.db {
            Db::Sqlite(p) => {
                sqlx::query(SET_CURSOR)
                    .bind(name)
                    .bind(position)
                    .execute(p)
                    .await?;
            }
            Db::Postgres(p) => {
                sqlx::query(SET_CURSOR)
                    .bind(name)
                    .bind(position)
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    /// Stores one raw event row the way the es crates do (naming their own columns, leaving
    /// `position` NULL), so tests can commit in any interleaving they like.
    #[cfg(test)]
    pub(crate) async fn insert_raw_event(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: u64,
        event_type: &str,
        payload: &Value,
    ) -> Result<(), StoreError> {
        const INSERT: &str = "INSERT INTO events (aggregate_type, aggregate_id, sequence, \
             event_type, event_version, payload, metadata) VALUES ($1, $2, $3, $4, '1', $5, '{}')";
        let text = payload.to_string();
        match &self.db {
            Db::Sqlite(p) => {
                sqlx::query(INSERT)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(to_sql(sequence))
                    .bind(event_type)
                    .bind(text)
                    .execute(p)
                    .await?;
            }
            Db::Postgres(p) => {
                sqlx::query(INSERT)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(to_sql(sequence))
                    .bind(event_type)
                    .bind(payload)
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }

    /// Tries to change a given position, as only a bug or an intruder would.
    #[cfg(test)]
    pub(crate) async fn overwrite_position(&self, from: u64, to: u64) -> Result<(), StoreError> {
        const UPDATE: &str = "UPDATE events SET position = $2 WHERE position = $1";
        match &self.db {
            Db::Sqlite(p) => {
                sqlx::query(UPDATE)
                    .bind(to_sql(from))
                    .bind(to_sql(to))
                    .execute(p)
                    .await?;
            }
            Db::Postgres(p) => {
                sqlx::query(UPDATE)
                    .bind(to_sql(from))
                    .bind(to_sql(to))
                    .execute(p)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Positions, sequences and limits are non-negative and far below 2^63 (the columns are
/// `bigint`); anything larger saturates rather than wrapping.
pub(super) fn to_sql(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn from_sql(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("saoma.db"))
            .await
            .unwrap();
        (dir, store)
    }

    async fn commit(store: &Store, id: &str, sequence: u64) {
        store
            .insert_raw_event(
                "Inspection",
                id,
                sequence,
                "CodeShown",
                &json!({"stream": format!("Inspection/{id}"), "sequence": sequence}),
            )
            .await
            .unwrap();
    }

    async fn positions(store: &Store) -> Vec<(u64, String, u64)> {
        store
            .events_after(0, 1_000_000)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.position, r.aggregate_id, r.sequence))
            .collect()
    }

    #[tokio::test]
    async fn positions_are_consecutive_from_one_and_follow_each_streams_order() {
        let (_dir, store) = store().await;
        assert_eq!(store.max_position().await.unwrap(), 0);
        for (id, seq) in [("b", 1), ("a", 1), ("b", 2), ("a", 2), ("c", 1)] {
            commit(&store, id, seq).await;
        }
        assert_eq!(store.unpositioned().await.unwrap(), 5);
        assert_eq!(store.assign_positions(3).await.unwrap(), 3);
        assert_eq!(store.assign_positions(100).await.unwrap(), 2);
        assert_eq!(store.assign_positions(100).await.unwrap(), 0);
        assert_eq!(store.unpositioned().await.unwrap(), 0);
        commit(&store, "a", 3).await;
        commit(&store, "d", 1).await;
        assert_eq!(store.assign_positions(100).await.unwrap(), 2);
        let log = positions(&store).await;
        let numbers: Vec<u64> = log.iter().map(|r| r.0).collect();
        assert_eq!(numbers, (1..=7).collect::<Vec<_>>());
        for id in ["a", "b", "c", "d"] {
            let seqs: Vec<u64> = log.iter().filter(|r| r.1 == id).map(|r| r.2).collect();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{id}: {seqs:?}");
        }
        assert_eq!(store.max_position().await.unwrap(), 7);
    }

    #[tokio::test]
    async fn registry_events_waiting_in_a_round_come_before_inspection_events() {
        let (_dir, store) = store().await;
        commit(&store, "a", 1).await;
        store
            .insert_raw_event(
                "Registry",
                "officer:ZF0001",
                1,
                "DeviceKeyRegistered",
                &json!({"stream": "Registry/officer:ZF0001", "sequence": 1}),
            )
            .await
            .unwrap();
        commit(&store, "a", 2).await;
        store.assign_positions(100).await.unwrap();
        let log: Vec<(u64, String)> = store
            .events_after(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.position, r.aggregate_type))
            .collect();
        assert_eq!(
            log,
            [
                (1, "Registry".to_string()),
                (2, "Inspection".to_string()),
                (3, "Inspection".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn a_given_position_never_changes() {
        let (_dir, store) = store().await;
        commit(&store, "a", 1).await;
        commit(&store, "a", 2).await;
        store.assign_positions(1).await.unwrap();
        let first = positions(&store).await;
        commit(&store, "0-sorts-first", 1).await;
        store.assign_positions(100).await.unwrap();
        let later = positions(&store).await;
        assert_eq!(later[0], first[0], "position 1 kept its event");
        assert_eq!(later[1], (2, "0-sorts-first".into(), 1));
        assert_eq!(later[2], (3, "a".into(), 2));
        let refused = store.overwrite_position(1, 99).await;
        assert!(
            refused.is_err(),
            "the database refuses to move a position: {refused:?}"
        );
        assert_eq!(positions(&store).await, later);
    }

    #[tokio::test]
    async fn events_after_reads_in_position_order_with_the_stored_text() {
        let (_dir, store) = store().await;
        for seq in 1..=5 {
            commit(&store, "a", seq).await;
        }
        store.assign_positions(100).await.unwrap();
        let page = store.events_after(2, 2).await.unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!((page[0].position, page[1].position), (3, 4));
        assert_eq!(page[0].aggregate_type, "Inspection");
        assert_eq!(page[0].event_type, "CodeShown");
        assert_eq!(page[0].payload().unwrap()["sequence"], 3);
        assert!(store.events_after(5, 10).await.unwrap().is_empty());
        commit(&store, "b", 1).await;
        store.assign_positions(100).await.unwrap();
        let stream: Vec<u64> = store
            .stream_before("Inspection", "a", 5)
            .await
            .unwrap()
            .iter()
            .map(|r| r.sequence)
            .collect();
        assert_eq!(stream, [1, 2, 3, 4], "one stream, before position 5");
    }

    #[tokio::test]
    async fn cursors_start_at_zero_and_keep_what_was_set() {
        let (_dir, store) = store().await;
        assert_eq!(store.cursor("nats-events").await.unwrap(), 0);
        store.set_cursor("nats-events", 41).await.unwrap();
        store.set_cursor("nats-events", 42).await.unwrap();
        store.set_cursor("other", 7).await.unwrap();
        assert_eq!(store.cursor("nats-events").await.unwrap(), 42);
        assert_eq!(store.cursor("other").await.unwrap(), 7);
    }
}
