//! The plain way, for comparison: cqrs-es + postgres-es executing a five-step lifecycle one
//! command at a time, with no signing, hashing or log — a tiny aggregate of its own, stored
//! through `postgres_cqrs` (`PersistedEventStore::new_event_store`, never the snapshot stores,
//! which double-apply events in cqrs-es 0.5) in the postgres-es events table.

use anyhow::{Context as _, Result};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use postgres_es::{postgres_cqrs, PostgresCqrs};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The postgres-es events table, as its `db/init.sql` creates it.
const EVENTS_TABLE: &str = "CREATE TABLE events (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint CHECK (sequence >= 0) NOT NULL,
    event_type text NOT NULL,
    event_version text NOT NULL,
    payload json NOT NULL,
    metadata json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
)";

/// An inspection reduced to the order of its steps.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Visit {
    steps: u8,
}

#[derive(Debug)]
pub enum VisitCommand {
    Issue {
        enterprise: String,
        officers: Vec<String>,
    },
    Show,
    Scan,
    Rate {
        level: u8,
    },
    Report,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VisitEvent {
    Issued {
        enterprise: String,
        officers: Vec<String>,
    },
    Shown,
    Scanned,
    Rated {
        level: u8,
    },
    Reported,
}

impl DomainEvent for VisitEvent {
    fn event_type(&self) -> String {
        match self {
            VisitEvent::Issued { .. } => "Issued",
            VisitEvent::Shown => "Shown",
            VisitEvent::Scanned => "Scanned",
            VisitEvent::Rated { .. } => "Rated",
            VisitEvent::Reported => "Reported",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// A step out of order.
#[derive(Debug)]
pub struct OutOfOrder;

impl std::fmt::Display for OutOfOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("step out of order")
    }
}

impl std::error::Error for OutOfOrder {}

impl Aggregate for Visit {
    const TYPE: &'static str = "Visit";
    type Command = VisitCommand;
    type Event = VisitEvent;
    type Error = OutOfOrder;
    type Services = ();

    async fn handle(
        &mut self,
        command: VisitCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), OutOfOrder> {
        let (step, event) = match command {
            VisitCommand::Issue {
                enterprise,
                officers,
            } => (
                0,
                VisitEvent::Issued {
                    enterprise,
                    officers,
                },
            ),
            VisitCommand::Show => (1, VisitEvent::Shown),
            VisitCommand::Scan => (2, VisitEvent::Scanned),
            VisitCommand::Rate { level } => (3, VisitEvent::Rated { level }),
            VisitCommand::Report => (4, VisitEvent::Reported),
        };
        if step != self.steps {
            return Err(OutOfOrder);
        }
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, _: VisitEvent) {
        self.steps += 1;
    }
}

fn lifecycle(n: usize) -> [VisitCommand; 5] {
    [
        VisitCommand::Issue {
            enterprise: format!("91430202{:09}X", n % 2000),
            officers: vec![format!("ZF430202{:05}", n % 128), "ZF43020200001".into()],
        },
        VisitCommand::Show,
        VisitCommand::Scan,
        VisitCommand::Rate { level: 5 },
        VisitCommand::Report,
    ]
}

/// The payload the plain way stores for its first (and largest) event, as JSON text.
pub fn sample_payload() -> String {
    let event = match lifecycle(0) {
        [VisitCommand::Issue {
            enterprise,
            officers,
        }, ..] => VisitEvent::Issued {
            enterprise,
            officers,
        },
        _ => unreachable!("a lifecycle starts with Issue"),
    };
    serde_json::to_string(&event).expect("events serialise")
}

/// Creates the events table in the (fresh) database at `url` and returns a pool of
/// `connections`.
pub async fn prepare(url: &str, connections: u32) -> Result<sqlx::PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect(url)
        .await
        .context("connecting to the baseline database")?;
    sqlx::query(EVENTS_TABLE)
        .execute(&pool)
        .await
        .context("creating the postgres-es events table")?;
    Ok(pool)
}

/// Runs whole lifecycles on `tasks` concurrent tasks, one command at a time each, starting new
/// ones until `duration` has passed; returns (events committed, elapsed).
pub async fn run(pool: &sqlx::PgPool, tasks: usize, duration: Duration) -> Result<(u64, Duration)> {
    let cqrs: Arc<PostgresCqrs<Visit>> = Arc::new(postgres_cqrs(pool.clone(), vec![], ()));
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..tasks)
        .map(|t| {
            let cqrs = cqrs.clone();
            tokio::spawn(async move {
                let mut events = 0u64;
                let mut n = t;
                while Instant::now() < deadline {
                    let id = Uuid::new_v4().to_string();
                    for command in lifecycle(n) {
                        cqrs.execute(&id, command)
                            .await
                            .map_err(|e| anyhow::anyhow!("plain cqrs-es: {e}"))?;
                        events += 1;
                    }
                    n += tasks;
                }
                anyhow::Ok(events)
            })
        })
        .collect();
    let mut events = 0;
    for w in workers {
        events += w.await.context("a baseline task panicked")??;
    }
    Ok((events, start.elapsed()))
}

/// Events in the table: the run's count, checked against the store.
pub async fn stored(pool: &sqlx::PgPool) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events")
        .fetch_one(pool)
        .await?;
    Ok(n)
}
