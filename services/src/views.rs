//! The live projection: follows the global log in position order and keeps the view tables
//! (history, officers' inspections, warnings) up to date, with its own cursor written in the
//! same transaction as the rows, so a restart neither misses nor double-counts an event.
//!
//! The pure `Projector` holds what the rules need across inspections. On start it is rebuilt
//! by folding the log up to the cursor without writing (the rows are already there); then each
//! page of new events is applied and written. Between events the clock advances to the wall
//! clock minus a grace period, so time-based warnings (code never scanned, result overdue…)
//! fire when their deadline passes even if no event arrives. The grace period covers events
//! recorded before a deadline but positioned after it, so the live views equal a replay.
//!
//! Memory: a visit is held while its deadlines are ahead (plus [`RETENTION_DAYS`]); after that
//! its row is final in the view table, and a late event of it refolds the visit from its
//! stream in the store before it is applied.
//!
//! One projection per database: on PostgreSQL the projecting process holds a session advisory
//! lock; other `saoma serve` processes on the same database stand by and take over when it
//! stops or dies.

use crate::store::{
    LoggedRow, Store, StoreError, StoredInspection, StoredOfficer, StoredWarning, ViewBatch,
    ViewsLock, VIEWS_CURSOR,
};
use chrono::{DateTime, Utc};
use saoma_domain::seal::{parse_stored_without_command, SealError};
use saoma_projections::history::time;
use saoma_projections::projector::{LogEvent, ProjectError, Projector, Settled};
use saoma_projections::rules::RuleBook;
use saoma_projections::visit::Visit;
use saoma_projections::warnings::Warning;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Events read per query.
const PAGE: u64 = 1_024;
/// Most events one write accounts for: a step reads pages until it has caught up or holds
/// this many, then writes each touched inspection's row once.
const STEP: u64 = 8 * PAGE;
/// Shortest time between two rounds while events keep coming: an inspection whose events
/// follow each other quickly (shown, scanned, rated) is written once per round, not once
/// per event, and the views are at most about this far behind the log.
const MIN_ROUND: Duration = Duration::from_millis(500);
/// How long a visit is held after its last deadline.
pub const RETENTION_DAYS: i64 = 7;
/// Longest wait between attempts while the store fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("position {position}: the stored event cannot be read: {source}")]
    Unreadable { position: u64, source: SealError },
    #[error("position {position}: unknown aggregate type {aggregate_type}")]
    UnknownType {
        position: u64,
        aggregate_type: String,
    },
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error("another process keeps the views")]
    Standby,
}

/// Parses one log entry from its stored text, without the officer's command (the views do
/// not use it).
pub fn log_event(row: &LoggedRow) -> Result<LogEvent, ViewError> {
    let position = row.position;
    let unreadable = |source| ViewError::Unreadable { position, source };
    let text = &row.payload_text;
    match row.aggregate_type.as_str() {
        "Inspection" => Ok(LogEvent::Inspection(
            parse_stored_without_command(text).map_err(unreadable)?,
        )),
        "Registry" => Ok(LogEvent::Registry(
            parse_stored_without_command(text).map_err(unreadable)?,
        )),
        other => Err(ViewError::UnknownType {
            position,
            aggregate_type: other.to_string(),
        }),
    }
}

/// A warning as the view table stores it.
pub fn stored_warning(w: &Warning, position: u64) -> StoredWarning {
    StoredWarning {
        id: w.id.clone(),
        rule: w.rule.code().to_string(),
        severity: w.severity.as_str().to_string(),
        region: w.region.to_string(),
        agencies: format!(";{};", w.agencies.join(";")),
        enterprise: w.enterprise.clone().unwrap_or_default(),
        officers: w.officers.join(";"),
        at: time(w.at),
        evidence: serde_json::to_string(&w.evidence).unwrap_or_else(|_| "[]".into()),
        detail: w.detail.clone(),
        position,
    }
}

/// The live projection's state and the store it writes to.
pub struct LiveViews {
    store: Store,
    projector: Projector,
    grace: chrono::Duration,
    /// The clock as last written to the store.
    written_clock: Option<DateTime<Utc>>,
    /// The cursor as last written to (or read from) the store.
    written_position: u64,
    /// When an idle tick last made sure the stored cursor is still this projection's.
    checked: std::time::Instant,
    lock: ViewsLock,
}

impl LiveViews {
    /// Takes the views lock and rebuilds the projector from the log up to the stored cursor.
    /// [`ViewError::Standby`] when another process (on the same PostgreSQL) keeps the views.
    pub async fn open(store: Store, book: RuleBook, grace: Duration) -> Result<Self, ViewError> {
        let lock = store.try_lock_views().await?.ok_or(ViewError::Standby)?;
        let cursor = store.cursor(VIEWS_CURSOR).await?;
        let mut projector =
            Projector::new(book).with_retention(chrono::Duration::days(RETENTION_DAYS));
        while projector.position() < cursor {
            let limit = (cursor - projector.position()).min(PAGE * 4);
            let rows = store.events_after(projector.position(), limit).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let entry = log_event(row)?;
                bring_back(&store, &mut projector, &mut BTreeMap::new(), row, &entry).await?;
                projector.apply(row.position, &entry)?;
                // Their rows are in the table already.
                projector.settle();
            }
        }
        Ok(LiveViews {
            store,
            projector,
            grace: chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero()),
            written_clock: None,
            written_position: cursor,
            checked: std::time::Instant::now(),
            lock,
        })
    }

    pub fn position(&self) -> u64 {
        self.projector.position()
    }

    /// How many visits the projection holds in memory.
    pub fn held(&self) -> usize {
        self.projector.held()
    }

    /// Stops projecting and lets another process (or the next `open`) take over at once.
    pub async fn close(self) {
        self.lock.release().await;
    }

    /// Applies the next pages of the log (up to [`STEP`] events) and writes them in one
    /// transaction; returns how many events it applied. The write fails with
    /// `StoreError::CursorMoved` when the stored views are no longer where this projection
    /// left them (emptied by `saoma rebuild-views`, or written by another process); the
    /// caller then rebuilds from the store.
    pub async fn step(&mut self) -> Result<u64, ViewError> {
        let mut touched = BTreeSet::new();
        // Visits let go during this step: their last rows are written with it.
        let mut settled = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut applied = 0;
        while applied < STEP {
            let rows = self
                .store
                .follow_after(self.projector.position(), PAGE.min(STEP - applied))
                .await?;
            for row in &rows {
                let entry = log_event(row)?;
                bring_back(&self.store, &mut self.projector, &mut settled, row, &entry).await?;
                let changes = self.projector.apply(row.position, &entry)?;
                touched.extend(changes.visits);
                settled.extend(
                    self.projector
                        .settle()
                        .into_iter()
                        .map(|s| (s.visit.inspection_id, s)),
                );
                warnings.extend(
                    changes
                        .warnings
                        .iter()
                        .map(|w| stored_warning(w, row.position)),
                );
            }
            applied += rows.len() as u64;
            if (rows.len() as u64) < PAGE {
                break;
            }
        }
        if applied > 0 {
            self.write(&touched, &settled, warnings).await?;
        }
        Ok(applied)
    }

    /// Lets time pass to `now` minus the grace period and writes the warnings that fired, and
    /// the clock at least once a second.
    pub async fn tick(&mut self, now: DateTime<Utc>) -> Result<usize, ViewError> {
        let position = self.projector.position();
        let fired: Vec<StoredWarning> = self
            .projector
            .advance(now - self.grace)
            .iter()
            .map(|w| stored_warning(w, position))
            .collect();
        let n = fired.len();
        // Let go between events too; a visit's row was written when it last changed.
        self.projector.settle();
        let stale = match (self.written_clock, self.projector.clock()) {
            (Some(written), Some(clock)) => clock - written >= chrono::Duration::seconds(1),
            (None, Some(_)) => true,
            (_, None) => false,
        };
        if n > 0 || stale {
            self.write(&BTreeSet::new(), &BTreeMap::new(), fired)
                .await?;
            self.checked = std::time::Instant::now();
        } else if self.checked.elapsed() >= std::time::Duration::from_secs(1) {
            // Idle: notice within a second when the views were emptied underneath.
            let found = self.store.cursor(VIEWS_CURSOR).await?;
            if found != self.written_position {
                return Err(StoreError::CursorMoved {
                    name: VIEWS_CURSOR,
                    expected: self.written_position,
                    found,
                }
                .into());
            }
            self.checked = std::time::Instant::now();
        }
        Ok(n)
    }

    async fn write(
        &mut self,
        touched: &BTreeSet<Uuid>,
        settled: &BTreeMap<Uuid, Settled>,
        warnings: Vec<StoredWarning>,
    ) -> Result<(), ViewError> {
        let mut batch = ViewBatch {
            previous: self.written_position,
            cursor: self.projector.position(),
            clock: self.projector.clock(),
            warnings,
            ..ViewBatch::default()
        };
        for id in touched {
            let held = self
                .projector
                .visit(id)
                .zip(self.projector.issued_position(id));
            let Some((visit, issued_position)) =
                held.or_else(|| settled.get(id).map(|s| (&s.visit, s.issued_position)))
            else {
                continue;
            };
            let row = visit.history_row();
            // An inspection's officers are those of its code: written once, when it is issued.
            let issued_now = issued_position > self.written_position;
            for o in visit.officers.iter().filter(|_| issued_now) {
                batch.officers.push(StoredOfficer {
                    officer: o.id.key(),
                    name: o.name.clone(),
                    inspection_id: row.inspection_id.clone(),
                    date: row.date.clone(),
                    issued_position,
                });
            }
            batch.inspections.push(StoredInspection {
                issued_position,
                row,
            });
        }
        self.store.write_views(&batch).await?;
        self.written_clock = batch.clock;
        self.written_position = batch.cursor;
        Ok(())
    }
}

/// When `entry` (read as `row`) is a late event of a visit let go, takes the visit back: from
/// `settled` (let go earlier in this step, not yet written) or refolded from the store.
async fn bring_back(
    store: &Store,
    projector: &mut Projector,
    settled: &mut BTreeMap<Uuid, Settled>,
    row: &LoggedRow,
    entry: &LogEvent,
) -> Result<(), ViewError> {
    let Some(id) = projector.missing(entry) else {
        return Ok(());
    };
    let back = match settled.remove(&id) {
        Some(s) => Some(s),
        None => refold(store, row).await?,
    };
    if let Some(s) = back {
        projector.restore(s);
    }
    Ok(())
}

/// A visit let go earlier, refolded from its stream's events before `row` (which belongs to
/// it); `None` when the stream has no `CodeIssued` before it.
async fn refold(store: &Store, row: &LoggedRow) -> Result<Option<Settled>, ViewError> {
    let rows = store
        .stream_before(&row.aggregate_type, &row.aggregate_id, row.position)
        .await?;
    let mut visit: Option<(u64, Visit)> = None;
    for r in &rows {
        let LogEvent::Inspection(e) = log_event(r)? else {
            continue;
        };
        match visit.as_mut() {
            None => visit = Visit::issued(&e).map(|v| (r.position, v)),
            Some((_, v)) => {
                v.apply(&e);
            }
        }
    }
    Ok(visit.map(|(issued_position, visit)| Settled {
        issued_position,
        visit,
    }))
}

/// The background task: follows the log until `stop`, waking when this process's sequencer
/// gives new positions (`wake`) and at least every `interval`. After a failed step the projection is
/// rebuilt from the store's cursor, so the rows of a batch that failed to write are applied
/// again rather than skipped.
pub async fn run(
    store: Store,
    book: RuleBook,
    interval: Duration,
    grace: Duration,
    mut wake: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = interval;
    let mut views: Option<LiveViews> = None;
    let mut wake_alive = true;
    loop {
        let round = tokio::time::Instant::now();
        let result = async {
            let v = match views.as_mut() {
                Some(v) => v,
                None => {
                    let v = LiveViews::open(store.clone(), book.clone(), grace).await?;
                    tracing::info!(position = v.position(), "views: projection rebuilt");
                    views.insert(v)
                }
            };
            while v.step().await? == STEP {}
            v.tick(Utc::now()).await?;
            Ok::<u64, ViewError>(v.position())
        }
        .await;
        match result {
            Ok(position) => {
                // Positions stay far below 2^53, so the gauge is exact.
                #[allow(clippy::cast_precision_loss)]
                metrics::gauge!("saoma_views_position").set(position as f64);
                backoff = interval;
            }
            Err(ViewError::Standby) => {
                tracing::debug!("views: kept by another process; standing by");
                backoff = MAX_BACKOFF;
            }
            Err(e) => {
                tracing::error!(error = %e, "views: step failed; rebuilding from the stored cursor");
                if let Some(v) = views.take() {
                    v.close().await;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        let stopping = *stop.borrow()
            || tokio::select! {
                _ = tokio::time::sleep_until(round + MIN_ROUND) => false,
                _ = stop.wait_for(|s| *s) => true,
            }
            || tokio::select! {
                _ = tokio::time::sleep(backoff) => false,
                changed = wake.changed(), if wake_alive => {
                    wake_alive = changed.is_ok();
                    false
                }
                _ = stop.wait_for(|s| *s) => true,
            };
        if stopping {
            if let Some(v) = views.take() {
                v.close().await;
            }
            return;
        }
    }
}
