//! The projection's tables (`schemas/migrations/*/0004_views.sql`): writing a batch of changed
//! rows together with the projection's cursor, and the queries of history, warnings and
//! satisfaction.
//!
//! A batch is one statement per table whatever its size: on PostgreSQL each column travels as
//! one text array, taken apart by `UNNEST` (as the event append does), on SQLite the rows as
//! one JSON document, taken apart by `json_each`.

use super::{Db, Store, StoreError};
use saoma_projections::history::HistoryRow;
use saoma_projections::satisfaction::{Dimension, Frequency, Tally};
use serde::{Deserialize, Serialize};
use sqlx::{Database, Decode, Row, Type};

/// The cursor of the live projection in `cursors`.
pub const VIEWS_CURSOR: &str = "views";
/// The time the live projection has advanced to, in milliseconds since 1970, kept in `cursors`
/// beside its position: deadlines up to it have fired.
pub const VIEWS_CLOCK: &str = "views-clock";

/// The advisory lock key held by the one live projection of a PostgreSQL database ("SAOMAVIE").
pub const VIEWS_LOCK: i64 = 0x5341_4f4d_4156_4945;

/// Proof that this process is the one that writes the views: on PostgreSQL a session advisory
/// lock on a connection of its own, released when this is dropped (the connection closes) or
/// when the process dies; on SQLite, whose file belongs to one process, nothing.
pub struct ViewsLock {
    connection: Option<sqlx::PgConnection>,
}

impl ViewsLock {
    /// Releases the lock now, rather than when the server notices the connection closed.
    pub async fn release(self) {
        if let Some(mut c) = self.connection {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(VIEWS_LOCK)
                .execute(&mut c)
                .await;
            let _ = sqlx::Connection::close(c).await;
        }
    }
}

/// A history row as stored, with the position of its `CodeIssued` (the order of history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredInspection {
    pub issued_position: u64,
    #[serde(flatten)]
    pub row: HistoryRow,
}

/// One officer of one inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredOfficer {
    pub officer: String,
    pub name: String,
    pub inspection_id: String,
    pub date: String,
    pub issued_position: u64,
}

/// A warning as stored: list fields joined so that one column answers each filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredWarning {
    pub id: String,
    pub rule: String,
    pub severity: String,
    pub region: String,
    /// `;A;B;`
    pub agencies: String,
    pub enterprise: String,
    /// `;`-separated officer keys.
    pub officers: String,
    pub at: String,
    /// JSON array of event ids.
    pub evidence: String,
    pub detail: String,
    pub position: u64,
}

/// Everything one projection step writes, atomically with the cursor.
#[derive(Debug, Default)]
pub struct ViewBatch {
    pub inspections: Vec<StoredInspection>,
    pub officers: Vec<StoredOfficer>,
    pub warnings: Vec<StoredWarning>,
    /// The cursor this batch continues from: the write fails with
    /// [`StoreError::CursorMoved`] unless the stored cursor is still there (views reset, or
    /// another process's projection wrote meanwhile).
    pub previous: u64,
    /// The last log position this batch accounts for.
    pub cursor: u64,
    /// The projection's clock after this batch.
    pub clock: Option<chrono::DateTime<chrono::Utc>>,
}

/// Filters of the history list; every one optional, all combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    pub enterprise: Option<String>,
    pub officer: Option<String>,
    pub agency: Option<String>,
    pub region: Option<String>,
    /// Only regions whose code starts with this (a supervisor's scope; see [`region_prefix`]).
    pub within: Option<String>,
    /// Inspection dates, inclusive, `YYYY-MM-DD`.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Fuzzy: a fragment of the enterprise's name or credit code, an officer's name or
    /// certificate number, or an item's name or code.
    pub q: Option<String>,
    /// Only codes that are not revoked and whose window ends after this instant (RFC 3339).
    pub valid_after: Option<String>,
}

/// Filters of the warning list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WarningFilter {
    pub rule: Option<String>,
    pub agency: Option<String>,
    pub region: Option<String>,
    /// Only regions whose code starts with this (see [`region_prefix`]).
    pub within: Option<String>,
    pub enterprise: Option<String>,
    /// `at` from / before, RFC 3339 or a date.
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A page: at most `limit` items and whether more follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub offset: u64,
    pub next_offset: Option<u64>,
}

/// A view table's column: its name (the row's field) and its SQL type.
type Column = (&'static str, &'static str);

const INSPECTION_COLUMNS: &[Column] = &[
    ("inspection_id", "text"),
    ("issued_position", "bigint"),
    ("kind", "text"),
    ("kind_detail", "text"),
    ("routine", "boolean"),
    ("agency_code", "text"),
    ("agency_name", "text"),
    ("agency_level", "text"),
    ("agency_region", "text"),
    ("enterprise_code", "text"),
    ("enterprise_name", "text"),
    ("region", "text"),
    ("officers", "text"),
    ("officer_names", "text"),
    ("item_codes", "text"),
    ("item_names", "text"),
    ("joint_partners", "text"),
    ("date", "text"),
    ("month", "text"),
    ("valid_from", "text"),
    ("valid_until", "text"),
    ("issued_at", "text"),
    ("status", "text"),
    ("shown_at", "text"),
    ("enterprise_scanned_at", "text"),
    ("officer_scanned_at", "text"),
    ("mutual_verified", "boolean"),
    ("refused_scans", "integer"),
    ("rating", "integer"),
    ("rating_comment", "text"),
    ("rated_at", "text"),
    ("result", "text"),
    ("result_feedback", "text"),
    ("reported_at", "text"),
    ("revoked_at", "text"),
    ("feedback_count", "integer"),
    ("events", "integer"),
];

const OFFICER_COLUMNS: &[Column] = &[
    ("officer", "text"),
    ("name", "text"),
    ("inspection_id", "text"),
    ("date", "text"),
    ("issued_position", "bigint"),
];

const WARNING_COLUMNS: &[Column] = &[
    ("id", "text"),
    ("rule", "text"),
    ("severity", "text"),
    ("region", "text"),
    ("agencies", "text"),
    ("enterprise", "text"),
    ("officers", "text"),
    ("at", "text"),
    ("evidence", "text"),
    ("detail", "text"),
    ("position", "bigint"),
];

/// `INSERT … SELECT` of a batch of rows into `table`: on PostgreSQL one text array per column
/// (see [`column_arrays`]), on SQLite a JSON array of objects; `update` = whether a row with the
/// same key is replaced (else kept).
fn batch_insert(db: &Db, table: &str, columns: &[Column], key: &str, update: bool) -> String {
    let list = columns
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    let source = match db {
        Db::Postgres(_) => {
            let values: Vec<String> = columns
                .iter()
                .map(|(name, sql_type)| format!("{name}::{sql_type}"))
                .collect();
            let arrays: Vec<String> = (1..=columns.len())
                .map(|n| format!("${n}::text[]"))
                .collect();
            format!(
                "SELECT {} FROM UNNEST({}) AS batch ({list})",
                values.join(", "),
                arrays.join(", ")
            )
        }
        Db::Sqlite(_) => {
            let values: Vec<String> = columns
                .iter()
                .map(|(name, _)| format!("json_extract(value, '$.{name}')"))
                .collect();
            // `WHERE true` keeps SQLite from reading ON CONFLICT as part of a join.
            format!("SELECT {} FROM json_each($1) WHERE true", values.join(", "))
        }
    };
    let action = if update {
        let sets: Vec<String> = columns
            .iter()
            .map(|(name, _)| *name)
            .filter(|c| !key.split(", ").any(|k| k == *c))
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        format!("DO UPDATE SET {}", sets.join(", "))
    } else {
        "DO NOTHING".to_string()
    };
    format!("INSERT INTO {table} ({list}) {source} ON CONFLICT ({key}) {action}")
}

/// `rows` as one array per column, each value as PostgreSQL reads it from text (numbers and
/// booleans written out, `null` as NULL). Binary arrays cost PostgreSQL far less than parsing
/// the same rows from a JSON document: that parse was about a sixth of its CPU under load.
fn column_arrays<T: Serialize>(
    rows: &[T],
    columns: &[Column],
) -> Result<Vec<Vec<Option<String>>>, StoreError> {
    // Not `vec![…; n]`: a cloned Vec does not keep the capacity.
    let mut arrays: Vec<Vec<Option<String>>> = (0..columns.len())
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    for row in rows {
        let serde_json::Value::Object(mut fields) = serde_json::to_value(row)? else {
            return Err(StoreError::Corrupt("a view row is not an object".into()));
        };
        for ((name, _), array) in columns.iter().zip(&mut arrays) {
            array.push(match fields.remove(*name) {
                None => {
                    return Err(StoreError::Corrupt(format!("a view row has no {name}")));
                }
                Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(text)) => Some(text),
                Some(other) => Some(other.to_string()),
            });
        }
    }
    Ok(arrays)
}

/// `text` with LIKE's own characters escaped by `\`.
fn escape_like(text: &str) -> String {
    let mut p = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p
}

/// The prefix of the region codes within `region` (GB/T 2260: two digits of province, two of
/// city, two of county): `630000` → `63`, `630100` → `6301`, `630102` → `630102`.
pub fn region_prefix(region: &str) -> &str {
    let mut prefix = region;
    while let Some(shorter) = prefix.strip_suffix("00") {
        prefix = shorter;
    }
    prefix
}

/// A LIKE pattern matching `fragment` anywhere, case-insensitively (against `lower(column)`).
fn contains_pattern(fragment: &str) -> String {
    format!("%{}%", escape_like(&fragment.to_lowercase()))
}

/// A WHERE clause with `$n` placeholders, all bound as text.
#[derive(Default)]
struct Where {
    clauses: Vec<String>,
    params: Vec<String>,
}

impl Where {
    /// Adds `sql`, in which every `?` becomes the next placeholder bound to `value`.
    fn add(&mut self, sql: &str, value: &str) {
        self.params.push(value.to_string());
        let n = self.params.len();
        self.clauses.push(sql.replace('?', &format!("${n}")));
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn history_where(f: &HistoryFilter) -> Where {
    let mut w = Where::default();
    if let Some(v) = &f.enterprise {
        w.add("enterprise_code = ?", v);
    }
    if let Some(v) = &f.agency {
        w.add("agency_code = ?", v);
    }
    if let Some(v) = &f.region {
        w.add("region = ?", v);
    }
    if let Some(v) = &f.within {
        w.add("region LIKE ? ESCAPE '\\'", &format!("{}%", escape_like(v)));
    }
    if let Some(v) = &f.from {
        w.add("date >= ?", v);
    }
    if let Some(v) = &f.to {
        w.add("date <= ?", v);
    }
    if let Some(v) = &f.officer {
        w.add(
            "inspection_id IN (SELECT inspection_id FROM view_inspection_officers WHERE officer = ?)",
            v,
        );
    }
    if let Some(v) = &f.valid_after {
        w.add("revoked_at = '' AND valid_until > ?", v);
    }
    if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let cols = [
            "enterprise_name",
            "enterprise_code",
            "officer_names",
            "officers",
            "item_names",
            "item_codes",
        ];
        let any: Vec<String> = cols
            .iter()
            .map(|c| format!("lower({c}) LIKE ? ESCAPE '\\'"))
            .collect();
        w.add(&format!("({})", any.join(" OR ")), &contains_pattern(q));
    }
    w
}

fn warning_where(f: &WarningFilter) -> Where {
    let mut w = Where::default();
    if let Some(v) = &f.rule {
        w.add("rule = ?", v);
    }
    if let Some(v) = &f.agency {
        w.add(
            "agencies LIKE ? ESCAPE '\\'",
            &format!("%;{};%", escape_like(v)),
        );
    }
    if let Some(v) = &f.region {
        w.add("region = ?", v);
    }
    if let Some(v) = &f.within {
        w.add("region LIKE ? ESCAPE '\\'", &format!("{}%", escape_like(v)));
    }
    if let Some(v) = &f.enterprise {
        w.add("enterprise = ?", v);
    }
    if let Some(v) = &f.from {
        w.add("at >= ?", v);
    }
    if let Some(v) = &f.to {
        w.add("at < ?", v);
    }
    w
}

/// Runs `$sql` with text `$params` on whichever pool, mapping rows with `$map`.
macro_rules! fetch_text {
    ($db:expr, $sql:expr, $params:expr, $map:expr) => {
        match $db {
            Db::Sqlite(p) => {
                let mut q = sqlx::query(&$sql);
                for v in $params {
                    q = q.bind(v.clone());
                }
                q.fetch_all(p)
                    .await?
                    .iter()
                    .map($map)
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            }
            Db::Postgres(p) => {
                let mut q = sqlx::query(&$sql);
                for v in $params {
                    q = q.bind(v.clone());
                }
                q.fetch_all(p)
                    .await?
                    .iter()
                    .map($map)
                    .collect::<Result<Vec<_>, sqlx::Error>>()?
            }
        }
    };
}

fn read_inspection<'r, R>(r: &'r R) -> Result<StoredInspection, sqlx::Error>
where
    R: Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    R::Database: Database,
{
    let s = |c: &'static str| r.try_get::<String, _>(c);
    let n = |c: &'static str| {
        r.try_get::<i32, _>(c)
            .map(|v| u32::try_from(v).unwrap_or(0))
    };
    Ok(StoredInspection {
        issued_position: u64::try_from(r.try_get::<i64, _>("issued_position")?).unwrap_or(0),
        row: HistoryRow {
            inspection_id: s("inspection_id")?,
            kind: s("kind")?,
            kind_detail: s("kind_detail")?,
            routine: r.try_get("routine")?,
            agency_code: s("agency_code")?,
            agency_name: s("agency_name")?,
            agency_level: s("agency_level")?,
            agency_region: s("agency_region")?,
            enterprise_code: s("enterprise_code")?,
            enterprise_name: s("enterprise_name")?,
            region: s("region")?,
            officers: s("officers")?,
            officer_names: s("officer_names")?,
            item_codes: s("item_codes")?,
            item_names: s("item_names")?,
            joint_partners: s("joint_partners")?,
            date: s("date")?,
            month: s("month")?,
            valid_from: s("valid_from")?,
            valid_until: s("valid_until")?,
            issued_at: s("issued_at")?,
            status: s("status")?,
            shown_at: s("shown_at")?,
            enterprise_scanned_at: s("enterprise_scanned_at")?,
            officer_scanned_at: s("officer_scanned_at")?,
            mutual_verified: r.try_get("mutual_verified")?,
            refused_scans: n("refused_scans")?,
            rating: r
                .try_get::<Option<i32>, _>("rating")?
                .and_then(|v| u8::try_from(v).ok()),
            rating_comment: s("rating_comment")?,
            rated_at: s("rated_at")?,
            result: s("result")?,
            result_feedback: s("result_feedback")?,
            reported_at: s("reported_at")?,
            revoked_at: s("revoked_at")?,
            feedback_count: n("feedback_count")?,
            events: n("events")?,
        },
    })
}

fn read_warning<'r, R>(r: &'r R) -> Result<StoredWarning, sqlx::Error>
where
    R: Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let s = |c: &'static str| r.try_get::<String, _>(c);
    Ok(StoredWarning {
        id: s("id")?,
        rule: s("rule")?,
        severity: s("severity")?,
        region: s("region")?,
        agencies: s("agencies")?,
        enterprise: s("enterprise")?,
        officers: s("officers")?,
        at: s("at")?,
        evidence: s("evidence")?,
        detail: s("detail")?,
        position: u64::try_from(r.try_get::<i64, _>("position")?).unwrap_or(0),
    })
}

/// One group of satisfaction figures as the live view computes them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredSatisfaction {
    pub key: String,
    pub name: String,
    pub month: String,
    #[serde(flatten)]
    pub tally: Tally,
}

fn read_satisfaction<'r, R>(r: &'r R) -> Result<StoredSatisfaction, sqlx::Error>
where
    R: Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let n = |c: &'static str| {
        r.try_get::<i64, _>(c)
            .map(|v| u64::try_from(v).unwrap_or(0))
    };
    Ok(StoredSatisfaction {
        key: r.try_get("key")?,
        name: r.try_get("name")?,
        month: r.try_get("month")?,
        tally: Tally {
            scanned: n("scanned")?,
            ratings: n("ratings")?,
            level_sum: n("level_sum")?,
            distribution: [n("d1")?, n("d2")?, n("d3")?, n("d4")?, n("d5")?],
        },
    })
}

/// Inspections that count in the statistics: not revoked, not non-inspection visits.
const COUNTED: &str = "v.revoked_at = '' AND v.kind <> '非检查类入企'";

fn satisfaction_sql(dimension: Dimension, w: &Where) -> String {
    let (key, name, from) = match dimension {
        Dimension::Agency => ("v.agency_code", "MIN(v.agency_name)", "view_inspections v"),
        Dimension::Region => ("v.region", "''", "view_inspections v"),
        Dimension::Officer => (
            "o.officer",
            "MIN(o.name)",
            "view_inspections v JOIN view_inspection_officers o ON o.inspection_id = v.inspection_id",
        ),
    };
    let extra = w
        .clauses
        .iter()
        .map(|c| format!(" AND {c}"))
        .collect::<String>();
    let level =
        |l: u8| format!("CAST(SUM(CASE WHEN v.rating = {l} THEN 1 ELSE 0 END) AS bigint) AS d{l}");
    format!(
        "SELECT {key} AS key, {name} AS name, v.month AS month, \
         CAST(SUM(CASE WHEN v.enterprise_scanned_at <> '' THEN 1 ELSE 0 END) AS bigint) AS scanned, \
         CAST(COUNT(v.rating) AS bigint) AS ratings, \
         CAST(COALESCE(SUM(v.rating), 0) AS bigint) AS level_sum, {}, {}, {}, {}, {} \
         FROM {from} WHERE {COUNTED}{extra} GROUP BY {key}, v.month ORDER BY {key}, v.month",
        level(1),
        level(2),
        level(3),
        level(4),
        level(5)
    )
}

impl Store {
    /// Takes the views lock, or `None` when another process holds it.
    pub async fn try_lock_views(&self) -> Result<Option<ViewsLock>, StoreError> {
        match &self.db {
            Db::Sqlite(_) => Ok(Some(ViewsLock { connection: None })),
            Db::Postgres(p) => {
                let mut connection = p.acquire().await?.detach();
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(VIEWS_LOCK)
                    .fetch_one(&mut connection)
                    .await?;
                Ok(locked.then_some(ViewsLock {
                    connection: Some(connection),
                }))
            }
        }
    }

    /// Writes a projection step and moves the `views` cursor, in one transaction.
    pub async fn write_views(&self, batch: &ViewBatch) -> Result<(), StoreError> {
        let ins = batch_insert(
            &self.db,
            "view_inspections",
            INSPECTION_COLUMNS,
            "inspection_id",
            true,
        );
        let off = batch_insert(
            &self.db,
            "view_inspection_officers",
            OFFICER_COLUMNS,
            "officer, inspection_id",
            false,
        );
        let warn = batch_insert(&self.db, "view_warnings", WARNING_COLUMNS, "id", false);
        let cursor = i64::try_from(batch.cursor).unwrap_or(i64::MAX);
        // `$rows`: how the rows of one table are bound to its statement.
        macro_rules! write {
            ($pool:expr, $cursor:expr, $rows:ident) => {{
                let mut tx = $pool.begin().await?;
                let found: Option<i64> = sqlx::query_scalar($cursor)
                    .bind(VIEWS_CURSOR)
                    .fetch_optional(&mut *tx)
                    .await?;
                let found = found.map_or(0, |n| u64::try_from(n).unwrap_or(0));
                if found != batch.previous {
                    return Err(StoreError::CursorMoved {
                        name: VIEWS_CURSOR,
                        expected: batch.previous,
                        found,
                    });
                }
                if !batch.inspections.is_empty() {
                    $rows!(&ins, &batch.inspections, INSPECTION_COLUMNS)
                        .execute(&mut *tx)
                        .await?;
                }
                if !batch.officers.is_empty() {
                    $rows!(&off, &batch.officers, OFFICER_COLUMNS)
                        .execute(&mut *tx)
                        .await?;
                }
                if !batch.warnings.is_empty() {
                    $rows!(&warn, &batch.warnings, WARNING_COLUMNS)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(super::log::SET_CURSOR)
                    .bind(VIEWS_CURSOR)
                    .bind(cursor)
                    .execute(&mut *tx)
                    .await?;
                if let Some(clock) = batch.clock {
                    sqlx::query(super::log::SET_CURSOR)
                        .bind(VIEWS_CLOCK)
                        .bind(clock.timestamp_millis().max(0))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }};
        }
        macro_rules! as_arrays {
            ($sql:expr, $rows:expr, $columns:expr) => {
                column_arrays($rows, $columns)?
                    .into_iter()
                    .fold(sqlx::query($sql), |query, array| query.bind(array))
            };
        }
        macro_rules! as_json {
            ($sql:expr, $rows:expr, $columns:expr) => {
                sqlx::query($sql).bind(serde_json::to_string($rows)?)
            };
        }
        // PostgreSQL: the row lock keeps a concurrent writer out until this commits. SQLite: a
        // write transaction that read a cursor another connection has since changed fails.
        match &self.db {
            Db::Sqlite(p) => write!(p, "SELECT position FROM cursors WHERE name = $1", as_json),
            Db::Postgres(p) => write!(
                p,
                "SELECT position FROM cursors WHERE name = $1 FOR UPDATE",
                as_arrays
            ),
        }
        Ok(())
    }

    /// Empties the views and their cursor: the live projection then rebuilds them from the
    /// start of the log.
    pub async fn reset_views(&self) -> Result<(), StoreError> {
        macro_rules! reset {
            ($pool:expr) => {{
                let mut tx = $pool.begin().await?;
                for sql in [
                    "DELETE FROM view_inspection_officers",
                    "DELETE FROM view_inspections",
                    "DELETE FROM view_warnings",
                ] {
                    sqlx::query(sql).execute(&mut *tx).await?;
                }
                sqlx::query("DELETE FROM cursors WHERE name IN ($1, $2)")
                    .bind(VIEWS_CURSOR)
                    .bind(VIEWS_CLOCK)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }};
        }
        match &self.db {
            Db::Sqlite(p) => reset!(p),
            Db::Postgres(p) => reset!(p),
        }
        Ok(())
    }

    /// The time the live projection has advanced to; `None` before its first step.
    pub async fn views_clock(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        let millis = self.cursor(VIEWS_CLOCK).await?;
        Ok((millis > 0)
            .then(|| chrono::DateTime::from_timestamp_millis(i64::try_from(millis).unwrap_or(0)))
            .flatten())
    }

    /// One inspection's history row.
    pub async fn inspection_row(&self, id: &str) -> Result<Option<StoredInspection>, StoreError> {
        let sql = "SELECT * FROM view_inspections WHERE inspection_id = $1".to_string();
        let params = [id.to_string()];
        let rows = fetch_text!(&self.db, sql, params.iter(), read_inspection);
        Ok(rows.into_iter().next())
    }

    /// Inspections matching `filter`, latest date first, then latest issued.
    pub async fn history(
        &self,
        filter: &HistoryFilter,
        offset: u64,
        limit: u64,
    ) -> Result<Page<StoredInspection>, StoreError> {
        let w = history_where(filter);
        let sql = format!(
            "SELECT * FROM view_inspections {} ORDER BY date DESC, issued_position DESC LIMIT {} OFFSET {offset}",
            w.sql(),
            limit + 1
        );
        let mut items = fetch_text!(&self.db, sql, w.params.iter(), read_inspection);
        Ok(page(&mut items, offset, limit))
    }

    /// The rated inspections matching `filter` that the satisfaction statistics count, worst
    /// first: lowest level, then earliest date, then inspection id — the order of
    /// `report.html`'s worst-rated visits, so the API and a replay list them alike. The
    /// partial index `view_inspections_by_rating` (`0009_views_by_rating.sql`) serves the
    /// order when no narrower filter does.
    pub async fn worst_rated(
        &self,
        filter: &HistoryFilter,
        offset: u64,
        limit: u64,
    ) -> Result<Page<StoredInspection>, StoreError> {
        let mut w = history_where(filter);
        w.clauses.push("v.rating IS NOT NULL".into());
        w.clauses.push(COUNTED.into());
        let sql = format!(
            "SELECT * FROM view_inspections v {} ORDER BY v.rating, v.date, v.inspection_id LIMIT {} OFFSET {offset}",
            w.sql(),
            limit + 1
        );
        let mut items = fetch_text!(&self.db, sql, w.params.iter(), read_inspection);
        Ok(page(&mut items, offset, limit))
    }

    /// Warnings matching `filter`, latest first.
    pub async fn warnings(
        &self,
        filter: &WarningFilter,
        offset: u64,
        limit: u64,
    ) -> Result<Page<StoredWarning>, StoreError> {
        let w = warning_where(filter);
        let sql = format!(
            "SELECT * FROM view_warnings {} ORDER BY at DESC, id LIMIT {} OFFSET {offset}",
            w.sql(),
            limit + 1
        );
        let mut items = fetch_text!(&self.db, sql, w.params.iter(), read_warning);
        Ok(page(&mut items, offset, limit))
    }

    /// One warning by its id.
    pub async fn warning(&self, id: &str) -> Result<Option<StoredWarning>, StoreError> {
        let sql = "SELECT * FROM view_warnings WHERE id = $1".to_string();
        let params = [id.to_string()];
        let rows = fetch_text!(&self.db, sql, params.iter(), read_warning);
        Ok(rows.into_iter().next())
    }

    /// Satisfaction figures per key of `dimension` and month, for months in `[from, to]`
    /// (`YYYY-MM`, inclusive) and optionally one agency, one region, or the regions `within` a
    /// prefix (see [`region_prefix`]).
    pub async fn satisfaction(
        &self,
        dimension: Dimension,
        agency: Option<&str>,
        region: Option<&str>,
        within: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<StoredSatisfaction>, StoreError> {
        let mut w = Where::default();
        if let Some(v) = agency {
            w.add("v.agency_code = ?", v);
        }
        if let Some(v) = region {
            w.add("v.region = ?", v);
        }
        if let Some(v) = within {
            w.add(
                "v.region LIKE ? ESCAPE '\\'",
                &format!("{}%", escape_like(v)),
            );
        }
        if let Some(v) = from {
            w.add("v.month >= ?", v);
        }
        if let Some(v) = to {
            w.add("v.month <= ?", v);
        }
        let sql = satisfaction_sql(dimension, &w);
        Ok(fetch_text!(&self.db, sql, w.params.iter(), |r| {
            read_satisfaction(r)
        }))
    }
}

impl Store {
    /// Counted inspections per enterprise and year, for the year-over-year figures: of one
    /// region or enterprise when given, and of the years `from..=to` when given.
    pub async fn frequency(
        &self,
        region: Option<&str>,
        enterprise: Option<&str>,
        years: Option<(i32, i32)>,
    ) -> Result<Frequency, StoreError> {
        let mut w = Where::default();
        if let Some(v) = region {
            w.add("v.region = ?", v);
        }
        if let Some(v) = enterprise {
            w.add("v.enterprise_code = ?", v);
        }
        if let Some((from, to)) = years {
            w.add("v.date >= ?", &format!("{from:04}-01-01"));
            w.add("v.date <= ?", &format!("{to:04}-12-31"));
        }
        let extra: String = w.clauses.iter().map(|c| format!(" AND {c}")).collect();
        let sql = format!(
            "SELECT v.enterprise_code AS key, MIN(v.enterprise_name) AS name, \
             SUBSTR(v.date, 1, 4) AS year, CAST(COUNT(*) AS bigint) AS inspections \
             FROM view_inspections v WHERE {COUNTED}{extra} \
             GROUP BY v.enterprise_code, SUBSTR(v.date, 1, 4)"
        );
        let rows = fetch_text!(&self.db, sql, w.params.iter(), |r| {
            Ok::<_, sqlx::Error>((
                r.try_get::<String, _>("key")?,
                r.try_get::<String, _>("name")?,
                r.try_get::<String, _>("year")?,
                r.try_get::<i64, _>("inspections")?,
            ))
        });
        let mut frequency = Frequency::default();
        for (code, name, year, n) in rows {
            let year = year.parse().map_err(|_| {
                StoreError::Corrupt(format!("view_inspections: a date in year {year:?}"))
            })?;
            frequency.add(&code, &name, year, u64::try_from(n).unwrap_or(0));
        }
        Ok(frequency)
    }
}

/// The page of `items` (read from `offset`, one more than `limit` if there are more).
pub(crate) fn page<T>(items: &mut Vec<T>, offset: u64, limit: u64) -> Page<T> {
    let more = items.len() as u64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Page {
        items: std::mem::take(items),
        offset,
        next_offset: more.then_some(offset + limit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_their_text_literally() {
        assert_eq!(escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(contains_pattern("ZF_0A"), "%zf\\_0a%");
        assert_eq!(contains_pattern("华创"), "%华创%");
    }

    #[test]
    fn a_region_covers_the_codes_below_it() {
        assert_eq!(region_prefix("630000"), "63");
        assert_eq!(region_prefix("630100"), "6301");
        assert_eq!(region_prefix("630102"), "630102");
        assert_eq!(region_prefix("430200"), "4302");
        let w = warning_where(&WarningFilter {
            within: Some(region_prefix("630100").to_string()),
            ..WarningFilter::default()
        });
        assert_eq!(w.sql(), "WHERE region LIKE $1 ESCAPE '\\'");
        assert_eq!(w.params, ["6301%"]);
    }

    #[test]
    fn every_filter_binds_its_value_and_adds_nothing_else() {
        let w = history_where(&HistoryFilter {
            enterprise: Some("91X".into()),
            q: Some("  x' OR 1=1 --  ".into()),
            ..HistoryFilter::default()
        });
        assert_eq!(w.params, ["91X", "%x' or 1=1 --%"]);
        assert!(w
            .sql()
            .starts_with("WHERE enterprise_code = $1 AND (lower(enterprise_name) LIKE $2"));
        assert!(
            !w.sql().contains("OR 1=1"),
            "values are bound, never inlined"
        );
        assert_eq!(history_where(&HistoryFilter::default()).sql(), "");
    }

    #[tokio::test]
    async fn batch_inserts_name_their_columns_and_update_all_but_the_key() {
        let db = Db::Sqlite(sqlx::SqlitePool::connect_lazy("sqlite::memory:").unwrap());
        let sql = batch_insert(
            &db,
            "t",
            &[("a", "text"), ("b", "text"), ("c", "bigint")],
            "a",
            true,
        );
        assert_eq!(
            sql,
            "INSERT INTO t (a, b, c) SELECT json_extract(value, '$.a'), json_extract(value, '$.b'), \
             json_extract(value, '$.c') FROM json_each($1) WHERE true ON CONFLICT (a) DO UPDATE SET \
             b = excluded.b, c = excluded.c"
        );
        let sql = batch_insert(&db, "t", &[("a", "text"), ("b", "text")], "a, b", false);
        assert!(sql.ends_with("ON CONFLICT (a, b) DO NOTHING"), "{sql}");
        let db = Db::Postgres(sqlx::PgPool::connect_lazy("postgres://localhost/none").unwrap());
        let sql = batch_insert(
            &db,
            "t",
            &[("a", "text"), ("b", "boolean"), ("c", "bigint")],
            "a",
            true,
        );
        assert_eq!(
            sql,
            "INSERT INTO t (a, b, c) SELECT a::text, b::boolean, c::bigint \
             FROM UNNEST($1::text[], $2::text[], $3::text[]) AS batch (a, b, c) \
             ON CONFLICT (a) DO UPDATE SET b = excluded.b, c = excluded.c"
        );
    }

    #[test]
    fn column_arrays_hold_each_column_as_postgresql_reads_it_from_text() {
        let warning = |id: &str, position| StoredWarning {
            id: id.into(),
            rule: "quiet_day".into(),
            severity: "warning".into(),
            region: "430200".into(),
            agencies: ";A;".into(),
            enterprise: "91X".into(),
            officers: "ZF1;ZF2".into(),
            at: "2026-03-02T00:00:00Z".into(),
            evidence: "[\"e1\"]".into(),
            detail: "周一 \"宁静日\"".into(),
            position,
        };
        let rows = [warning("w1", 7), warning("w2", 1 << 40)];
        let arrays = column_arrays(&rows, WARNING_COLUMNS).unwrap();
        assert_eq!(arrays.len(), WARNING_COLUMNS.len());
        let column = |name: &str| {
            let i = WARNING_COLUMNS
                .iter()
                .position(|(n, _)| *n == name)
                .unwrap();
            arrays[i].clone()
        };
        assert_eq!(column("id"), [Some("w1".into()), Some("w2".into())]);
        assert_eq!(
            column("position"),
            [Some("7".into()), Some("1099511627776".into())]
        );
        assert_eq!(column("detail")[0].as_deref(), Some("周一 \"宁静日\""));
        // Every field of the row is a column, and every column a field.
        let serde_json::Value::Object(fields) = serde_json::to_value(&rows[0]).unwrap() else {
            panic!("a warning is an object");
        };
        let mut names: Vec<&str> = WARNING_COLUMNS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        assert_eq!(fields.keys().map(String::as_str).collect::<Vec<_>>(), names);

        #[derive(Serialize)]
        struct Row {
            a: Option<u8>,
            b: bool,
        }
        let arrays = column_arrays(
            &[
                Row { a: None, b: true },
                Row {
                    a: Some(3),
                    b: false,
                },
            ],
            &[("a", "integer"), ("b", "boolean")],
        )
        .unwrap();
        assert_eq!(arrays[0], [None, Some("3".into())]);
        assert_eq!(arrays[1], [Some("true".into()), Some("false".into())]);
        assert!(matches!(
            column_arrays(&[Row { a: None, b: true }], &[("c", "text")]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
