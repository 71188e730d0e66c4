//! Our own batched event repository beside the es crates': load many streams in one query and
//! append many events in one statement, writing rows the es crates read back unchanged.

use super::{Db, LoggedRow, Store, StoreError, StoredRow};
use std::collections::HashMap;

const LOAD_PG: &str = include_str!("sql/load_streams_pg.sql");
const LOAD_SQLITE: &str = include_str!("sql/load_streams_sqlite.sql");
const APPEND_PG: &str = include_str!("sql/append_pg.sql");
const APPEND_SQLITE: &str = include_str!("sql/append_sqlite.sql");

/// One event to append, in the es crates' row shape.
#[derive(Debug, Clone)]
pub struct NewRow {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The sealed event's JSON text.
    pub payload: String,
}

/// Why an append stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer took one of the (aggregate, sequence) positions first.
    #[error("a concurrent commit took one of the positions")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// The stored events of many streams of one aggregate type, by stream id.
    pub async fn load_streams(
        &self,
        aggregate_type: &str,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<StoredRow>>, StoreError> {
        let rows: Vec<(String, i64, String)> = match &self.db {
            Db::Postgres(p) => {
                sqlx::query_as(LOAD_PG)
                    .bind(aggregate_type)
                    .bind(ids)
                    .fetch_all(p)
                    .await?
            }
            Db::Sqlite(p) => {
                let ids = serde_json::to_string(ids)?;
                sqlx::query_as(LOAD_SQLITE)
                    .bind(aggregate_type)
                    .bind(ids)
                    .fetch_all(p)
                    .await?
            }
        };
        let mut streams: HashMap<String, Vec<StoredRow>> = HashMap::new();
        for (aggregate_id, sequence, text) in rows {
            let payload = serde_json::from_str(&text)?;
            streams
                .entry(aggregate_id.clone())
                .or_default()
                .push(StoredRow {
                    aggregate_id,
                    sequence,
                    payload,
                });
        }
        Ok(streams)
    }

    /// Appends all rows atomically, or none. On PostgreSQL the rows get their log positions
    /// in the same transaction when nothing committed earlier still waits for one (else, and
    /// on SQLite, the sequencer gives them).
    ///
    /// The log's followers (events out, the tree, the views) are not woken here: they find
    /// these positions at their next poll, as they find another process's. Waking them after
    /// every append put their rounds beside every reply: 2 ms more per command at 2,000
    /// commands/s (p50 2.1 -> 4.1 ms), for nothing at saturation.
    pub async fn append(&self, rows: Vec<NewRow>) -> Result<(), AppendError> {
        if rows.is_empty() {
            return Ok(());
        }
        let result = match &self.db {
            Db::Postgres(p) => {
                let column = |f: fn(&NewRow) -> &str| rows.iter().map(f).collect::<Vec<_>>();
                let top: Result<i64, _> = sqlx::query_scalar(APPEND_PG)
                    .bind(super::SEQUENCER_LOCK)
                    .bind(column(|r| r.aggregate_type))
                    .bind(column(|r| &r.aggregate_id))
                    .bind(rows.iter().map(|r| r.sequence).collect::<Vec<i64>>())
                    .bind(column(|r| &r.event_type))
                    .bind(column(|r| &r.event_version))
                    .bind(column(|r| &r.payload))
                    .fetch_one(p)
                    .await;
                if let Ok(top) = top {
                    self.remember_positioned(rows, top);
                }
                top.map(|_| ())
            }
            Db::Sqlite(p) => {
                let table: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!([
                            r.aggregate_type,
                            r.aggregate_id,
                            r.sequence,
                            r.event_type,
                            r.event_version,
                            r.payload
                        ])
                    })
                    .collect();
                sqlx::query(APPEND_SQLITE)
                    .bind(serde_json::to_string(&table).map_err(StoreError::from)?)
                    .execute(p)
                    .await
                    .map(|_| ())
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                Err(AppendError::Conflict)
            }
            Err(e) => Err(AppendError::Store(e.into())),
        }
    }

    /// Keeps committed rows that the append gave positions (the highest is `top`; 0 when they
    /// joined the backlog for the sequencer) in the log's in-memory tail, for the followers.
    fn remember_positioned(&self, rows: Vec<NewRow>, top: i64) {
        let Some(first) = u64::try_from(top)
            .ok()
            .filter(|t| *t > 0)
            .and_then(|top| top.checked_sub(rows.len() as u64 - 1))
        else {
            return;
        };
        self.recent.record(
            rows.into_iter()
                .zip(first..)
                .map(|(r, position)| LoggedRow {
                    position,
                    aggregate_type: r.aggregate_type.to_string(),
                    aggregate_id: r.aggregate_id,
                    sequence: r.sequence as u64,
                    event_type: r.event_type,
                    payload_text: r.payload,
                })
                .collect(),
        );
    }
}
