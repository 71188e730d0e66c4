//! A replay's scratch store: a throw-away SQLite file that holds the visits the projector has
//! let go (with their stream's chain, to check a late event's link) and the warnings, so a
//! replay's memory depends on the visits of the last weeks, not on the length of the log.
//! The reports are then read back from it in their order (visits by issued position,
//! warnings by time and id), whatever order things were let go in.

use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use saoma_domain::seal::Chain;
use saoma_projections::projector::Settled;
use saoma_projections::visit::Visit;
use saoma_projections::warnings::Warning;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::collections::HashMap;
use uuid::Uuid;

/// Visits or warnings buffered before one write.
const FLUSH: usize = 2_048;

/// A visit let go, with its stream's chain.
#[derive(Debug, Clone)]
pub struct Parked {
    pub settled: Settled,
    pub chain: Option<Chain>,
}

pub struct Scratch {
    pool: SqlitePool,
    /// Let go since the last write, by inspection.
    visits: HashMap<Uuid, Parked>,
    warnings: Vec<Warning>,
    /// Deleted with the store.
    _dir: tempfile::TempDir,
}

#[derive(Debug, thiserror::Error)]
pub enum ScratchError {
    #[error("scratch store: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("scratch store: {0}")]
    Json(#[from] serde_json::Error),
    #[error("scratch store: {0}")]
    Io(#[from] std::io::Error),
}

impl Scratch {
    /// A new, empty store in a temporary directory (`TMPDIR`), removed when dropped.
    pub async fn create() -> Result<Scratch, ScratchError> {
        let dir = tempfile::Builder::new().prefix("saoma-replay-").tempdir()?;
        // Nothing here outlives the run: no journal, no fsync.
        let options = SqliteConnectOptions::new()
            .filename(dir.path().join("scratch.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Off)
            .synchronous(SqliteSynchronous::Off);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        for ddl in [
            "CREATE TABLE visits (inspection_id TEXT PRIMARY KEY, issued_position INTEGER NOT NULL, \
             visit TEXT NOT NULL, chain TEXT)",
            "CREATE INDEX visits_in_order ON visits (issued_position)",
            "CREATE TABLE warnings (id TEXT PRIMARY KEY, at_ns INTEGER NOT NULL, warning TEXT NOT NULL)",
            "CREATE INDEX warnings_in_order ON warnings (at_ns, id)",
        ] {
            sqlx::query(ddl).execute(&pool).await?;
        }
        Ok(Scratch {
            pool,
            visits: HashMap::new(),
            warnings: Vec::new(),
            _dir: dir,
        })
    }

    /// Keeps a visit let go (replacing what an earlier letting-go of it left).
    pub async fn park(&mut self, parked: Parked) -> Result<(), ScratchError> {
        self.visits
            .insert(parked.settled.visit.inspection_id, parked);
        if self.visits.len() >= FLUSH {
            self.flush_visits().await?;
        }
        Ok(())
    }

    /// Takes back a visit let go earlier; `None` when it never was.
    pub async fn unpark(&mut self, id: Uuid) -> Result<Option<Parked>, ScratchError> {
        if let Some(p) = self.visits.remove(&id) {
            return Ok(Some(p));
        }
        let row: Option<(i64, String, Option<String>)> = sqlx::query_as(
            "SELECT issued_position, visit, chain FROM visits WHERE inspection_id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some((issued_position, visit, chain)) = row else {
            return Ok(None);
        };
        Ok(Some(Parked {
            settled: Settled {
                issued_position: u64::try_from(issued_position).unwrap_or_default(),
                visit: serde_json::from_str(&visit)?,
            },
            chain: chain.map(|c| serde_json::from_str(&c)).transpose()?,
        }))
    }

    /// Keeps warnings; of two with one id the first stays, as in the live views.
    pub async fn warn(&mut self, warnings: Vec<Warning>) -> Result<(), ScratchError> {
        self.warnings.extend(warnings);
        if self.warnings.len() >= FLUSH {
            self.flush_warnings().await?;
        }
        Ok(())
    }

    /// Writes everything buffered.
    pub async fn flush(&mut self) -> Result<(), ScratchError> {
        self.flush_visits().await?;
        self.flush_warnings().await
    }

    async fn flush_visits(&mut self) -> Result<(), ScratchError> {
        let mut rows = Vec::with_capacity(self.visits.len());
        for p in std::mem::take(&mut self.visits).into_values() {
            rows.push(serde_json::json!({
                "inspection_id": p.settled.visit.inspection_id.to_string(),
                "issued_position": p.settled.issued_position,
                "visit": serde_json::to_string(&p.settled.visit)?,
                "chain": p.chain.map(|c| serde_json::to_string(&c)).transpose()?,
            }));
        }
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT OR REPLACE INTO visits (inspection_id, issued_position, visit, chain) \
             SELECT json_extract(value, '$.inspection_id'), json_extract(value, '$.issued_position'), \
             json_extract(value, '$.visit'), json_extract(value, '$.chain') FROM json_each($1)",
        )
        .bind(serde_json::to_string(&rows)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn flush_warnings(&mut self) -> Result<(), ScratchError> {
        let mut rows = Vec::with_capacity(self.warnings.len());
        for w in std::mem::take(&mut self.warnings) {
            rows.push(serde_json::json!({
                "id": w.id,
                "at_ns": w.at.timestamp_nanos_opt().unwrap_or(i64::MAX),
                "warning": serde_json::to_string(&w)?,
            }));
        }
        if rows.is_empty() {
            return Ok(());
        }
        // json_each keeps the array's order, so the first of two with one id is kept.
        sqlx::query(
            "INSERT OR IGNORE INTO warnings (id, at_ns, warning) SELECT json_extract(value, '$.id'), \
             json_extract(value, '$.at_ns'), json_extract(value, '$.warning') FROM json_each($1)",
        )
        .bind(serde_json::to_string(&rows)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every visit kept, in the order it was issued, with its issued position. Call
    /// [`Scratch::flush`] first.
    pub fn visits(&self) -> impl Stream<Item = Result<(u64, Visit), ScratchError>> + '_ {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT issued_position, visit FROM visits ORDER BY issued_position",
        )
        .fetch(&self.pool)
        .map_err(ScratchError::from)
        .map(|row| {
            let (position, visit) = row?;
            Ok((
                u64::try_from(position).unwrap_or_default(),
                serde_json::from_str(&visit)?,
            ))
        })
    }

    /// Every warning kept, by time and id. Call [`Scratch::flush`] first.
    pub fn warnings(&self) -> impl Stream<Item = Result<Warning, ScratchError>> + '_ {
        sqlx::query_scalar::<_, String>("SELECT warning FROM warnings ORDER BY at_ns, id")
            .fetch(&self.pool)
            .map_err(ScratchError::from)
            .map(|row| Ok(serde_json::from_str(&row?)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn warnings_come_back_by_time_and_id_and_the_first_of_one_id_stays() {
        let mut s = Scratch::create().await.unwrap();
        let at = |h: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 3, 5)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
                .and_utc()
        };
        let w = |id: &str, h: u32, detail: &str| Warning {
            id: id.to_string(),
            rule: saoma_projections::warnings::Rule::CodeNotScanned,
            severity: saoma_projections::warnings::Severity::Warning,
            region: "430200".into(),
            agencies: vec!["ZZ-SCJ".into()],
            enterprise: None,
            officers: Vec::new(),
            at: at(h),
            evidence: vec!["Inspection/x/1".into()],
            detail: detail.into(),
        };
        s.warn(vec![w("b", 9, "first"), w("a", 10, "x"), w("c", 9, "y")])
            .await
            .unwrap();
        s.flush().await.unwrap();
        s.warn(vec![w("b", 11, "second")]).await.unwrap();
        s.flush().await.unwrap();
        let back: Vec<Warning> = s.warnings().try_collect().await.unwrap();
        let ids: Vec<(&str, &str)> = back
            .iter()
            .map(|w| (w.id.as_str(), w.detail.as_str()))
            .collect();
        assert_eq!(ids, [("b", "first"), ("c", "y"), ("a", "x")]);
    }
}
