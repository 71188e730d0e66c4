//! `saoma replay --out DIR`: reads the whole log from the configured store (or, with
//! `--bundle`, from an export bundle) in position order,
//! checks every hash, chain link and signature as it goes, rebuilds every view and writes the
//! reports: `history.csv`, `warnings.csv`, `satisfaction.csv`, `frequency.csv`
//! (inspections per enterprise and year, beside the year before), `summary.json` and
//! `report.html`. The same log gives byte-identical files: nothing in them depends on the
//! clock, the machine or hash-map order (the as-of time defaults to the last event's).
//!
//! Memory follows the visits whose deadlines are ahead, not the length of the log: a visit is
//! held until [`RETENTION_DAYS`] after its last deadline, then parked with its stream's chain
//! in a scratch store on disk, from which a late event takes it back and the reports are read
//! at the end.

pub mod scratch;

use crate::config::Settings;
use crate::report;
use crate::serve::{notary_key_path, open_store};
use crate::store::{LoggedRow, Store, StoreError};
use crate::views::{log_event, ViewError};
use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use saoma_domain::keys::PublicKey;
use saoma_domain::verify::{
    prepare, prepare_canonical, verify_signatures, Broken, Checked, LogVerifier, Prepared,
    SignatureCheck,
};
use saoma_projections::history::time;
use saoma_projections::projector::{LogEvent, Projector};
use saoma_projections::satisfaction::Satisfaction;
use saoma_projections::warnings::Warning;
use scratch::{Parked, Scratch};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// Events read from the store per query.
const PAGE: u64 = 4_096;
/// Pages read ahead of the checks.
const READ_AHEAD: usize = 2;
/// Pages whose signatures may still be being verified while the next ones are projected.
const VERIFY_AHEAD: usize = 2;
/// Signatures per ed25519 batch verification: a page's signatures in a few batches, one per
/// core or more. Larger batches cost less per signature (the multi-scalar multiplication's
/// fixed part is shared, and a key's terms merge across more signatures), up to a point.
pub const SIGNATURE_BATCH: usize = 1024;
/// How long a visit is held after its last deadline: later events of it (a rating, a
/// feedback, a late result) are then applied without a trip to the scratch store.
pub const RETENTION_DAYS: i64 = 7;
/// The latest warnings listed in the report.
const REPORT_WARNINGS: usize = 50;

fn broken(b: Broken) -> anyhow::Error {
    anyhow::anyhow!("the log does not verify: {b}")
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Directory for the reports (created if missing; existing report files are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// The time the report is as of (RFC 3339): deadlines up to it fire. Default: the time the
    /// last event of the log was recorded.
    #[arg(long)]
    pub as_of: Option<DateTime<Utc>>,
    /// Skip the ed25519 signature checks (hashes and chain links are still checked).
    #[arg(long)]
    pub no_signatures: bool,
    /// Print what the run took (seconds, events/s, peak memory) as one JSON line on stdout.
    #[arg(long)]
    pub stats: bool,
    /// Read the log from this export bundle (`saoma export`, the whole log) instead of the
    /// configured store.
    #[arg(long)]
    pub bundle: Option<PathBuf>,
    /// With --bundle: the notary public key (base64) to hold it to, obtained independently;
    /// without it, the bundle's own keys.json is trusted.
    #[arg(long, requires = "bundle")]
    pub notary_key: Option<String>,
}

/// What a run took; printed with `--stats`, never written into the (deterministic) reports.
#[derive(Debug, Serialize)]
pub struct RunStats {
    pub events: u64,
    pub inspections: u64,
    pub warnings: u64,
    pub signatures_checked: bool,
    pub notary_signatures: u64,
    pub officer_signatures: u64,
    /// Bytes of stored event JSON read.
    pub payload_bytes: u64,
    /// Reading, checking and projecting the log.
    pub replay_seconds: f64,
    /// Writing the reports.
    pub report_seconds: f64,
    /// Most visits held in memory at once.
    pub peak_visits_held: u64,
    /// Visits taken back from the scratch store for a late event.
    pub visits_restored: u64,
    pub events_per_second: f64,
    /// Peak resident memory of this process (`VmHWM`), when the system reports it.
    pub peak_memory_bytes: Option<u64>,
}

/// This process's peak resident memory, from `/proc/self/status` (Linux).
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What a replay found, as written to `summary.json`.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub as_of: String,
    pub log_position: u64,
    pub checked: Checked,
    pub signatures_checked: bool,
    pub inspections: u64,
    pub warnings: u64,
    pub warnings_by_rule: BTreeMap<String, u64>,
    pub warnings_by_agency: BTreeMap<String, u64>,
    pub inspections_by_month: BTreeMap<String, u64>,
    pub years: Vec<saoma_projections::satisfaction::YearFrequency>,
}

/// Everything a replay rebuilt: every visit and warning, in the scratch store.
pub struct Replayed {
    pub scratch: Scratch,
    pub log_position: u64,
    pub checked: Checked,
    pub as_of: DateTime<Utc>,
    /// Bytes of stored event JSON read.
    pub payload_bytes: u64,
    pub peak_visits_held: u64,
    pub visits_restored: u64,
}

pub async fn run(settings: &Settings, args: &ReplayArgs) -> anyhow::Result<Summary> {
    let start = std::time::Instant::now();
    let replayed = match &args.bundle {
        None => replay_store(settings, args.as_of, !args.no_signatures, true).await?,
        Some(dir) => {
            let trusted = args
                .notary_key
                .as_deref()
                .map(|k| {
                    PublicKey::from_base64(k).ok_or_else(|| {
                        anyhow::anyhow!("--notary-key is not a base64 ed25519 public key")
                    })
                })
                .transpose()?;
            replay_bundle(
                settings,
                dir,
                trusted,
                args.as_of,
                !args.no_signatures,
                true,
            )
            .await?
        }
    };
    let replay_seconds = start.elapsed().as_secs_f64();
    let summary = write_reports(&replayed, !args.no_signatures, &args.out).await?;
    if args.stats {
        let stats = RunStats {
            events: replayed.checked.events,
            inspections: summary.inspections,
            warnings: summary.warnings,
            signatures_checked: !args.no_signatures,
            notary_signatures: replayed.checked.notary_signatures,
            officer_signatures: replayed.checked.officer_signatures,
            payload_bytes: replayed.payload_bytes,
            replay_seconds,
            report_seconds: start.elapsed().as_secs_f64() - replay_seconds,
            peak_visits_held: replayed.peak_visits_held,
            visits_restored: replayed.visits_restored,
            #[allow(clippy::cast_precision_loss)]
            events_per_second: replayed.checked.events as f64 / replay_seconds.max(1e-9),
            peak_memory_bytes: peak_memory_bytes(),
        };
        println!("{}", serde_json::to_string(&stats)?);
    }
    Ok(summary)
}

/// Reads and checks the configured store's whole log and rebuilds every view; the clock ends
/// at `as_of` (default: the last event's recorded time).
pub async fn replay_store(
    settings: &Settings,
    as_of: Option<DateTime<Utc>>,
    signatures: bool,
    show_progress: bool,
) -> anyhow::Result<Replayed> {
    let store = open_store(settings).await?;
    let notary = notary_public_key(settings)?;
    let total = store.max_position().await?;
    let log = Log {
        pages: read_ahead(store.clone()),
        total,
        notary,
    };
    let replayed = replay(settings, log, as_of, signatures, show_progress).await;
    store.close().await;
    replayed
}

/// As [`replay_store`], from an export bundle of the whole log (`saoma export`), checked with
/// the notary key `trusted` or, without it, the bundle's own.
pub async fn replay_bundle(
    settings: &Settings,
    dir: &Path,
    trusted: Option<PublicKey>,
    as_of: Option<DateTime<Utc>>,
    signatures: bool,
    show_progress: bool,
) -> anyhow::Result<Replayed> {
    let (manifest, key, pages) = crate::audit::bundle::logged_rows(dir)?;
    if manifest.filter.is_some() {
        bail!(
            "{} is a filtered bundle: a replay needs the whole log (saoma verify checks it)",
            dir.display()
        );
    }
    let log = Log {
        pages,
        total: manifest.events,
        notary: trusted.unwrap_or(key),
    };
    replay(settings, log, as_of, signatures, show_progress).await
}

/// A whole log to replay: its pages in position order, how many events it holds, and the
/// notary key it is held to.
struct Log<E> {
    pages: mpsc::Receiver<Result<Vec<LoggedRow>, E>>,
    total: u64,
    notary: PublicKey,
}

async fn replay<E: Into<anyhow::Error> + Send + 'static>(
    settings: &Settings,
    Log {
        pages,
        total,
        notary,
    }: Log<E>,
    as_of: Option<DateTime<Utc>>,
    signatures: bool,
    show_progress: bool,
) -> anyhow::Result<Replayed> {
    let book = crate::rules::load(settings)?;
    let bar = if show_progress {
        progress(total)
    } else {
        ProgressBar::hidden()
    };
    let mut verifier = LogVerifier::new([notary], signatures);
    let mut projector = Projector::new(book).with_retention(chrono::Duration::days(RETENTION_DAYS));
    let mut scratch = Scratch::create().await?;
    let mut last_recorded = None;
    let mut payload_bytes = 0u64;
    let (mut peak_visits_held, mut visits_restored) = (0usize, 0u64);
    // Four stages at once: reading pages, parsing and hashing them (all cores), linking and
    // projecting in position order (this task), and verifying the signatures (all cores).
    let mut pages = prepare_ahead(pages);
    let mut verifying = VecDeque::new();
    while let Some(page) = pages.recv().await {
        let (rows, prepared) = page?;
        payload_bytes += rows
            .iter()
            .map(|r| r.payload_text.len() as u64)
            .sum::<u64>();
        let mut checks = Vec::new();
        let mut linked = Ok(());
        for (row, (checked, entry)) in rows.iter().zip(prepared) {
            // A late event of a visit let go: take it and its chain back first.
            if let Some(id) = entry.as_ref().ok().and_then(|e| projector.missing(e)) {
                if let Some(parked) = scratch.unpark(id).await? {
                    if let Some(chain) = parked.chain {
                        verifier.resume(parked.settled.visit.stream().to_string(), chain);
                    }
                    projector.restore(parked.settled);
                    visits_restored += 1;
                }
            }
            if let Err(b) = checked.and_then(|c| verifier.link(c, &mut checks)) {
                linked = Err(b);
                break;
            }
            let entry = entry?;
            last_recorded = Some(entry.recorded_at());
            let changes = projector.apply(row.position, &entry)?;
            scratch.warn(changes.warnings).await?;
            peak_visits_held = peak_visits_held.max(projector.held());
            park(&mut scratch, &mut verifier, projector.settle()).await?;
        }
        verifying.push_back(verify(checks));
        bar.inc(rows.len() as u64);
        // Signatures of the events before a broken link come first: the first broken
        // position is named, whatever broke there.
        while verifying.len() > VERIFY_AHEAD || (linked.is_err() && !verifying.is_empty()) {
            if let Some(earlier) = verifying.pop_front() {
                earlier.await?.map_err(broken)?;
            }
        }
        linked.map_err(broken)?;
    }
    for earlier in verifying {
        earlier.await?.map_err(broken)?;
    }
    bar.finish_and_clear();
    if projector.position() != total {
        bail!(
            "the log ends at position {} but holds {total} events",
            projector.position()
        );
    }
    let as_of = as_of
        .or(last_recorded)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    scratch.warn(projector.advance(as_of)).await?;
    park(&mut scratch, &mut verifier, projector.settle_all()).await?;
    scratch.flush().await?;
    Ok(Replayed {
        scratch,
        log_position: projector.position(),
        checked: verifier.checked(),
        as_of,
        payload_bytes,
        peak_visits_held: peak_visits_held as u64,
        visits_restored,
    })
}

/// A page of the log with each event parsed and hashed, and read as a log entry.
type PreparedPage = (
    Vec<LoggedRow>,
    Vec<(Result<Prepared, Broken>, Result<LogEvent, ViewError>)>,
);

/// The pages parsed and hashed on all cores, by a task of their own one page ahead of the
/// caller, in order; a page that is not JSON ends them with its error.
fn prepare_ahead<E: Into<anyhow::Error> + Send + 'static>(
    mut pages: mpsc::Receiver<Result<Vec<LoggedRow>, E>>,
) -> mpsc::Receiver<anyhow::Result<PreparedPage>> {
    let (prepared, received) = mpsc::channel(1);
    tokio::spawn(async move {
        while let Some(page) = pages.recv().await {
            let page = match page {
                Ok(rows) => tokio::task::spawn_blocking(move || prepare_page(rows))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|p| p),
                Err(e) => Err(e.into()),
            };
            let failed = page.is_err();
            if prepared.send(page).await.is_err() || failed {
                break;
            }
        }
    });
    received
}

fn prepare_page(rows: Vec<LoggedRow>) -> anyhow::Result<PreparedPage> {
    let prepared = rows
        .par_iter()
        .map(|row| {
            // An event stored canonically is checked and read straight from its text; one
            // stored otherwise, or whose hash does not match, is checked through a JSON tree.
            let checked = match prepare_canonical(row.position, &row.payload_text) {
                Some(prepared) => Ok(prepared),
                None => {
                    let value: Value =
                        serde_json::from_str(&row.payload_text).with_context(|| {
                            format!("position {}: payload is not JSON", row.position)
                        })?;
                    prepare(row.position, &value)
                }
            };
            Ok((checked, log_event(row)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((rows, prepared))
}

/// Verifies a page's signatures on all cores, beside the caller, in batches.
pub(crate) fn verify(checks: Vec<SignatureCheck>) -> tokio::task::JoinHandle<Result<(), Broken>> {
    tokio::task::spawn_blocking(move || {
        checks
            .par_chunks(SIGNATURE_BATCH)
            .map(verify_signatures)
            .collect::<Vec<_>>()
            .into_iter()
            .collect()
    })
}

/// The log's pages in position order, read by a task of their own up to [`READ_AHEAD`] pages
/// ahead of the checks, so that the database and the checks work at the same time. The task
/// ends at the end of the log, at the first error (sent as the last page), or when the
/// receiver is dropped.
pub(crate) fn read_ahead(store: Store) -> mpsc::Receiver<Result<Vec<LoggedRow>, StoreError>> {
    let (pages, received) = mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        let mut after = 0;
        loop {
            let page = store.events_after(after, PAGE).await;
            let last = match &page {
                Ok(rows) if rows.is_empty() => break,
                Ok(rows) => rows.last().map(|r| r.position),
                Err(_) => None,
            };
            if pages.send(page).await.is_err() {
                break;
            }
            match last {
                Some(position) => after = position,
                None => break,
            }
        }
    });
    received
}

/// Parks visits let go, with their stream's chain.
async fn park(
    scratch: &mut Scratch,
    verifier: &mut LogVerifier,
    settled: Vec<saoma_projections::projector::Settled>,
) -> anyhow::Result<()> {
    for s in settled {
        let chain = verifier.forget(s.visit.stream());
        scratch.park(Parked { settled: s, chain }).await?;
    }
    Ok(())
}

fn notary_public_key(settings: &Settings) -> anyhow::Result<PublicKey> {
    let path = notary_key_path(settings);
    let key = crate::keys::load_or_create_signing_key(&path, false)
        .with_context(|| format!("reading the notary key {}", path.display()))?;
    Ok(PublicKey(key.verifying_key()))
}

fn progress(total: u64) -> ProgressBar {
    // Hidden by indicatif itself when stderr is not a terminal (pipes, CI logs).
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} 重放 {pos}/{len} 条事件 [{bar:40}] {per_sec} 剩余 {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// Writes every report for `replayed` into `out`, reading the visits and warnings back from
/// the scratch store one at a time.
pub async fn write_reports(
    replayed: &Replayed,
    signatures: bool,
    out: &Path,
) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut summary = Summary {
        as_of: time(replayed.as_of),
        log_position: replayed.log_position,
        checked: replayed.checked,
        signatures_checked: signatures,
        inspections: 0,
        warnings: 0,
        warnings_by_rule: BTreeMap::new(),
        warnings_by_agency: BTreeMap::new(),
        inspections_by_month: BTreeMap::new(),
        years: Vec::new(),
    };

    let mut satisfaction = Satisfaction::default();
    let mut csv = csv::Writer::from_path(out.join("history.csv"))?;
    let mut visits = std::pin::pin!(replayed.scratch.visits());
    while let Some((_, v)) = visits.try_next().await? {
        csv.serialize(v.history_row())?;
        satisfaction.add(&v);
        summary.inspections += 1;
        if v.revoked.is_none() && v.is_inspection() {
            *summary
                .inspections_by_month
                .entry(v.date.format("%Y-%m").to_string())
                .or_default() += 1;
        }
    }
    csv.flush()?;
    summary.years = satisfaction.years();

    let mut csv = csv::Writer::from_path(out.join("warnings.csv"))?;
    csv.write_record([
        "id",
        "rule",
        "title",
        "severity",
        "region",
        "agencies",
        "enterprise",
        "officers",
        "at",
        "evidence",
        "detail",
    ])?;
    let mut latest = VecDeque::with_capacity(REPORT_WARNINGS + 1);
    let mut warnings = std::pin::pin!(replayed.scratch.warnings());
    while let Some(w) = warnings.try_next().await? {
        csv.write_record([
            w.id.as_str(),
            w.rule.code(),
            w.rule.title(),
            w.severity.as_str(),
            &w.region.to_string(),
            &w.agencies.join(";"),
            w.enterprise.as_deref().unwrap_or_default(),
            &w.officers.join(";"),
            &time(w.at),
            &w.evidence.join(";"),
            &w.detail,
        ])?;
        summary.warnings += 1;
        *summary
            .warnings_by_rule
            .entry(w.rule.code().to_string())
            .or_default() += 1;
        for a in &w.agencies {
            *summary.warnings_by_agency.entry(a.clone()).or_default() += 1;
        }
        latest.push_back(w);
        if latest.len() > REPORT_WARNINGS {
            latest.pop_front();
        }
    }
    csv.flush()?;

    let mut csv = csv::Writer::from_path(out.join("satisfaction.csv"))?;
    csv.write_record([
        "dimension",
        "key",
        "name",
        "month",
        "scanned",
        "ratings",
        "mean",
        "satisfaction_rate",
        "response_rate",
        "level_1",
        "level_2",
        "level_3",
        "level_4",
        "level_5",
    ])?;
    let fixed = |x: Option<f64>| x.map(|x| format!("{x:.4}")).unwrap_or_default();
    for r in satisfaction.rows() {
        let t = r.tally;
        let mut record = vec![
            r.dimension.as_str().to_string(),
            r.key,
            r.name,
            r.month,
            t.scanned.to_string(),
            t.ratings.to_string(),
            fixed(t.mean()),
            fixed(t.satisfaction_rate()),
            fixed(t.response_rate()),
        ];
        record.extend(t.distribution.iter().map(u64::to_string));
        csv.write_record(&record)?;
    }
    csv.flush()?;

    // Year over year, per enterprise: the headline figure the provinces publish.
    let mut csv = csv::Writer::from_path(out.join("frequency.csv"))?;
    for y in satisfaction.enterprise_years() {
        csv.serialize(y)?;
    }
    csv.flush()?;

    let json = serde_json::to_string_pretty(&summary)?;
    std::fs::write(out.join("summary.json"), json + "\n")?;
    let latest: Vec<Warning> = latest.into();
    let html = report::render(&summary, &satisfaction, &latest);
    std::fs::write(out.join("report.html"), html)?;
    Ok(summary)
}
