//! Event storage: sqlite-es (embedded default) or postgres-es (production) behind one type,
//! with the cqrs-es event store doing loads and optimistic-concurrency commits, and a few
//! read queries of our own for traces and start-up indexes.

pub mod accounts;
mod append;
mod log;
mod queries;
mod recent;
mod tree;
mod views;

pub use log::{LoggedRow, SEQUENCER_LOCK};
pub use tree::{event_id_parts, NodeId, StoredCheckpoint, LOG_TREE_CURSOR};

pub use append::{AppendError, NewRow};
pub(crate) use views::page;
pub use views::{
    region_prefix, HistoryFilter, Page, StoredInspection, StoredOfficer, StoredSatisfaction,
    StoredWarning, ViewBatch, ViewsLock, WarningFilter, VIEWS_CLOCK, VIEWS_CURSOR, VIEWS_LOCK,
};

use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext as _, AggregateError, EventEnvelope, EventStore};
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

/// One stored event as read back: its stream id, sequence and payload JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRow {
    pub aggregate_id: String,
    pub sequence: i64,
    pub payload: Value,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("stored payload is not JSON: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("stored data is not what this service wrote: {0}")]
    Corrupt(String),
    #[error("cursor {name} is at {found}, not at {expected} where this writer left it")]
    CursorMoved {
        name: &'static str,
        expected: u64,
        found: u64,
    },
}

#[derive(Clone)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The configured database and the cqrs-es stores for both aggregates.
#[derive(Clone)]
pub struct Store {
    db: Db,
    /// What this process appended last, for the log's followers (`store/recent.rs`).
    recent: std::sync::Arc<recent::RecentLog>,
}

/// How many times a command is retried when a concurrent commit took its sequence number.
const CONFLICT_RETRIES: usize = 5;

impl Store {
    /// Opens (creating if needed) the embedded SQLite store at `path` and migrates it.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a committed event survives power loss, not only a crash of the process.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("../schemas/migrations/sqlite")
            .run(&pool)
            .await?;
        Ok(Store {
            db: Db::Sqlite(pool),
            recent: Default::default(),
        })
    }

    /// Connects to PostgreSQL and migrates it.
    pub async fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("../schemas/migrations/postgres")
            .run(&pool)
            .await?;
        Ok(Store {
            db: Db::Postgres(pool),
            recent: Default::default(),
        })
    }

    pub fn backend_name(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Loads aggregate `id`, lets it handle `command`, and commits what it emitted. Returns the
    /// committed events (empty when the command changed nothing).
    pub async fn execute<A>(
        &self,
        id: &str,
        command: A::Command,
        services: &A::Services,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>>
    where
        A: Aggregate + Send + Sync,
        A::Command: Clone,
    {
        let mut attempt = 0;
        loop {
            let result = match &self.db {
                Db::Sqlite(pool) => {
                    let es = PersistedEventStore::<_, A>::new_event_store(
                        SqliteEventRepository::new(pool.clone()),
                    );
                    execute_on(&es, id, command.clone(), services).await
                }
                Db::Postgres(pool) => {
                    let es = PersistedEventStore::<_, A>::new_event_store(
                        PostgresEventRepository::new(pool.clone()),
                    );
                    execute_on(&es, id, command.clone(), services).await
                }
            };
            match result {
                Err(AggregateError::AggregateConflict) if attempt < CONFLICT_RETRIES => {
                    attempt += 1
                }
                other => return other,
            }
        }
    }

    /// Every stored event of one stream, in order.
    pub async fn stream(
        &self,
        aggregate_type: &str,
        id: &str,
    ) -> Result<Vec<StoredRow>, StoreError> {
        let rows: Vec<(i64, String)> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_as(queries::STREAM)
                    .bind(aggregate_type)
                    .bind(id)
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_as(queries::STREAM)
                    .bind(aggregate_type)
                    .bind(id)
                    .fetch_all(p)
                    .await?
            }
        };
        rows.into_iter()
            .map(|(sequence, text)| {
                Ok(StoredRow {
                    aggregate_id: id.to_string(),
                    sequence,
                    payload: serde_json::from_str(&text)?,
                })
            })
            .collect()
    }

    /// Every stored event of an aggregate type, stream by stream.
    pub async fn all_of_type(&self, aggregate_type: &str) -> Result<Vec<StoredRow>, StoreError> {
        let rows: Vec<(String, i64, String)> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_as(queries::ALL_OF_TYPE)
                    .bind(aggregate_type)
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_as(queries::ALL_OF_TYPE)
                    .bind(aggregate_type)
                    .fetch_all(p)
                    .await?
            }
        };
        rows_to_stored(rows)
    }

    /// Stored events of an aggregate type with one of two event types, stream by stream.
    pub async fn of_event_types(
        &self,
        aggregate_type: &str,
        types: [&str; 2],
    ) -> Result<Vec<StoredRow>, StoreError> {
        let rows: Vec<(String, i64, String)> = match &self.db {
            Db::Sqlite(p) => {
                sqlx::query_as(queries::OF_EVENT_TYPES)
                    .bind(aggregate_type)
                    .bind(types[0])
                    .bind(types[1])
                    .fetch_all(p)
                    .await?
            }
            Db::Postgres(p) => {
                sqlx::query_as(queries::OF_EVENT_TYPES)
                    .bind(aggregate_type)
                    .bind(types[0])
                    .bind(types[1])
                    .fetch_all(p)
                    .await?
            }
        };
        rows_to_stored(rows)
    }

    /// Number of stored events of every type.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(match &self.db {
            Db::Sqlite(p) => sqlx::query_scalar(queries::COUNT).fetch_one(p).await?,
            Db::Postgres(p) => sqlx::query_scalar(queries::COUNT).fetch_one(p).await?,
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> bool {
        match &self.db {
            Db::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
            Db::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.is_ok(),
        }
    }

    pub async fn close(&self) {
        match &self.db {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

fn rows_to_stored(rows: Vec<(String, i64, String)>) -> Result<Vec<StoredRow>, StoreError> {
    rows.into_iter()
        .map(|(aggregate_id, sequence, text)| {
            Ok(StoredRow {
                aggregate_id,
                sequence,
                payload: serde_json::from_str(&text)?,
            })
        })
        .collect()
}

async fn execute_on<A, ES>(
    es: &ES,
    id: &str,
    command: A::Command,
    services: &A::Services,
) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>>
where
    A: Aggregate,
    ES: EventStore<A>,
{
    let mut context = es.load_aggregate(id).await?;
    let sink = EventSink::default();
    context
        .aggregate()
        .handle(command, services, &sink)
        .await
        .map_err(AggregateError::UserError)?;
    let events = sink.collect().await;
    if events.is_empty() {
        return Ok(vec![]);
    }
    es.commit(events, context, HashMap::new()).await
}
