//! `saoma-bench replay`: replay and offline verification of a simulated log, in one run.
//!
//! It builds a log of at least `--events` events spanning a year through the service's own core
//! (a release `saoma simulate --backfill` on a throw-away PostgreSQL: every command signed,
//! checked, sealed and positioned as `saoma serve` records it), and then measures on that store:
//! `saoma replay --stats` with every check and with `--no-signatures` (events/s, report time,
//! peak memory, and that both runs wrote byte-identical reports); the machine's limit for the
//! same work (the signatures at ed25519-dalek's batch rate, at the better of its batch sizes,
//! plus SHA-256 of every stored byte, on all cores; measured before the replays and again after
//! `saoma verify`, the higher figures kept); and plain cqrs-es + postgres-es reading the same events. Prints a markdown table.
//!
//! ```text
//! cargo run --release -p saoma-tests --bin saoma-bench -- replay --events 200000
//! ```

use super::limits::{self, CryptoLimits};
use super::procs::{self, Roots};
use super::report::{mebibytes, thousands, Table};
use crate::step;
use anyhow::{bail, ensure, Context as _, Result};
use chrono::Datelike as _;
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::PersistedEventRepository as _;
use cqrs_es::{Aggregate, DomainEvent};
use futures_util::TryStreamExt as _;
use postgres_es::PostgresEventRepository;
use saoma_tests::PgServer;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::hint::black_box;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Events a simulated inspection adds to the log (seed 1, 20% violations): 4.95–4.99 measured
/// with 962 and 9,616 inspections; a little less here, so that the log reaches `--events`.
const EVENTS_PER_INSPECTION: f64 = 4.9;
/// Registry events besides the enterprises (agencies, officers with their device keys, plans):
/// about 1,790 measured, whatever the number of inspections.
const REGISTRY_EVENTS: f64 = 1_700.0;
/// The simulation's largest number of enterprises (`MAX_ENTERPRISES` of
/// services/src/simulate/population.rs, which is private to it).
const MAX_ENTERPRISES: usize = 20_000;
/// Bytes per message of the SHA-256 throughput figure: about a stored event's payload.
const SHA_MESSAGE_BYTES: usize = 2048;
/// The longest the sequencer may take to position the last events after the simulation.
const POSITIONING_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the simulation's progress is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(15);
/// The reports both replays must write byte for byte alike.
const REPORTS: [&str; 3] = ["history.csv", "warnings.csv", "satisfaction.csv"];

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Events the simulated log must hold at least (sizes `saoma simulate --inspections`).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Inspections to simulate, instead of sizing them from `--events`.
    #[arg(long)]
    pub inspections: Option<usize>,
    /// Seed of the simulated population and traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scenarios `saoma simulate` keeps in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// The last of the past years whose working days the simulated log spans (`--backfill`;
    /// default: last year).
    #[arg(long)]
    pub year: Option<i32>,
    /// Years the log spans, each with the same traffic (`--events` spread over them): memory
    /// must not grow with them.
    #[arg(long, default_value_t = 1)]
    pub years: usize,
    /// Length of each machine-limit measurement, in seconds.
    #[arg(long, default_value_t = 2.0)]
    pub limits_seconds: f64,
    /// Also write the table (markdown) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The JSON line of `saoma replay --stats`.
#[derive(Debug, Deserialize)]
struct ReplayStats {
    events: u64,
    inspections: u64,
    warnings: u64,
    signatures_checked: bool,
    notary_signatures: u64,
    officer_signatures: u64,
    payload_bytes: u64,
    replay_seconds: f64,
    report_seconds: f64,
    #[allow(dead_code)] // Recomputed from `events` and `replay_seconds`.
    events_per_second: f64,
    peak_visits_held: u64,
    visits_restored: u64,
    peak_memory_bytes: Option<u64>,
}

impl ReplayStats {
    fn rate(&self) -> f64 {
        self.events as f64 / self.replay_seconds.max(1e-9)
    }
}

/// One `saoma replay` child process: what it printed and what it cost.
struct ReplayRun {
    stats: ReplayStats,
    wall: Duration,
    /// CPU seconds of the child (user + system), of PostgreSQL, and of everything else on the
    /// machine (this process excluded) while it ran.
    cpu_replay: f64,
    cpu_postgres: f64,
    cpu_others: f64,
    /// SHA-256 (hex) of each of [`REPORTS`].
    reports: Vec<String>,
}

/// Wall time of each phase of the run, in order.
#[derive(Default)]
struct Phases(Vec<(&'static str, Duration)>);

impl Phases {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        self.0.push((name, took));
        step(&format!("{name}: {:.1} s", took.as_secs_f64()));
        out
    }
}

/// One measurement of the machine's limits: ed25519 on one core, and SHA-256 bytes per second
/// of [`SHA_MESSAGE_BYTES`]-byte messages.
struct Limits {
    crypto: CryptoLimits,
    sha_bytes_per_s: f64,
}

/// What `saoma simulate` reported, and how the log came out.
struct Simulation {
    years: std::ops::RangeInclusive<i32>,
    inspections: usize,
    /// One per year.
    summaries: Vec<serde_json::Value>,
    wall: Duration,
    /// Events in the store once every one is positioned.
    events: u64,
}

pub fn bench(args: &ReplayArgs) -> Result<Table> {
    ensure!(args.events > 0, "--events must be positive");
    ensure!(
        args.limits_seconds > 0.0,
        "--limits-seconds must be positive"
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut phases = Phases::default();
    let mut problems = Vec::new();
    let binary = phases.time("saoma release binary", crate::saoma_release_binary)?;
    let runtime = tokio::runtime::Runtime::new()?;

    step("starting PostgreSQL (relaxed durability)");
    let pg = phases.time("starting PostgreSQL", PgServer::start)?;
    let work = tempfile::Builder::new()
        .prefix("saoma-bench-replay-")
        .tempdir()?;
    // The service's data dir: the notary and token keys are created in `keys/`.
    let data_dir = work.path().join("data");
    let pool = runtime
        .block_on(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(&pg.url()),
        )
        .context("connecting to the service's database")?;

    ensure!(args.years > 0, "--years must be positive");
    let inspections = args
        .inspections
        .unwrap_or_else(|| inspections_for(args.events, args.years));
    let last_year = args.year.unwrap_or_else(|| chrono::Utc::now().year() - 1);
    let first_year = last_year + 1 - i32::try_from(args.years)?;
    let mut summaries = Vec::new();
    let mut wall = Duration::ZERO;
    for year in first_year..=last_year {
        let (summary, took) =
            phases.time("simulating a year (saoma simulate --backfill)", || {
                simulate(
                    &binary,
                    args,
                    year,
                    inspections,
                    &pg.url(),
                    &data_dir,
                    work.path(),
                    &runtime,
                    &pool,
                )
            })?;
        if let Some(unexpected) = summary.get("unexpected_refusals") {
            if unexpected.as_object().is_some_and(|m| !m.is_empty()) {
                problems.push(format!(
                    "saoma simulate --backfill {year}: unexpected refusals {unexpected}"
                ));
            }
        }
        summaries.push(summary);
        wall += took;
    }
    let events = phases.time("checking every event's position", || {
        runtime.block_on(wait_positioned(&pool))
    })?;
    let simulation = Simulation {
        years: first_year..=last_year,
        inspections: inspections * args.years,
        summaries,
        wall,
        events,
    };
    if simulation.events < args.events {
        problems.push(format!(
            "the log holds {} events, fewer than --events {}: raise --inspections",
            simulation.events, args.events
        ));
    }
    let key = data_dir.join("keys").join("notary.key");
    ensure!(
        key.is_file(),
        "saoma simulate left no notary key at {}",
        key.display()
    );

    let limit_time = Duration::from_secs_f64(args.limits_seconds);
    let machine_limits = |phases: &mut Phases, name: &'static str| {
        step("machine limits: ed25519 and SHA-256 on one core");
        phases.time(name, || {
            Ok(Limits {
                crypto: limits::crypto(limit_time)?,
                sha_bytes_per_s: sha256_bytes_per_second(limit_time),
            })
        })
    };
    let before = machine_limits(&mut phases, "machine limits")?;

    step("PostgreSQL alone: every payload as text, in position order");
    let raw_read = phases.time("PostgreSQL read of every payload", || {
        runtime.block_on(read_payloads(&pool))
    })?;

    let postgres = procs::server_pid("postgres", pg.port());
    let replay = |out: &str, signatures: bool| {
        replay_once(
            &binary,
            &pg.url(),
            &data_dir,
            &work.path().join(out),
            signatures,
            postgres,
        )
    };
    step("saoma replay --stats (every check)");
    let checked = phases.time("saoma replay, every check", || {
        replay("replay-checks", true)
    })?;
    step("saoma replay --no-signatures --stats");
    let unsigned = phases.time("saoma replay --no-signatures", || {
        replay("replay-no-signatures", false)
    })?;

    let bundle_dir = work.path().join("bundle");
    step("saoma export --out: the whole log as a bundle (its tree grown and signed first)");
    let exported = phases.time("saoma export", || {
        export_once(&binary, &pg.url(), &data_dir, &bundle_dir)
    })?;
    step("saoma verify --json on the bundle, offline");
    let offline = phases.time("saoma verify", || verify_once(&binary, &bundle_dir))?;
    // Right after: the machine's speed drifts within a run; the higher of the two is the limit.
    let after = machine_limits(&mut phases, "machine limits again, after saoma verify")?;

    step("plain cqrs-es + postgres-es: stream_all_events of every aggregate type");
    let plain = phases.time("plain cqrs-es + postgres-es read", || {
        runtime.block_on(plain_read(&pool))
    })?;
    runtime.block_on(pool.close());

    for (name, run) in [("every check", &checked), ("--no-signatures", &unsigned)] {
        if run.stats.events != simulation.events {
            problems.push(format!(
                "saoma replay ({name}) read {} events, the store holds {}",
                run.stats.events, simulation.events
            ));
        }
    }
    if !checked.stats.signatures_checked || unsigned.stats.signatures_checked {
        problems.push("saoma replay reported the wrong signatures_checked".into());
    }
    if plain.0 != simulation.events || raw_read.0 != simulation.events {
        problems.push(format!(
            "the plain read saw {} events and the PostgreSQL read {}, the store holds {}",
            plain.0, raw_read.0, simulation.events
        ));
    }
    let identical = checked.reports == unsigned.reports;
    if !identical {
        problems.push("the two replays wrote different reports".into());
    }
    if offline.report.checked.events != simulation.events || exported.events != simulation.events {
        problems.push(format!(
            "saoma export wrote {} events and saoma verify checked {}, the store holds {}",
            exported.events, offline.report.checked.events, simulation.events
        ));
    }

    let t = table(
        args,
        cores,
        &simulation,
        [&before, &after],
        raw_read,
        &checked,
        &unsigned,
        (&exported, &offline),
        plain,
        &phases,
    );
    if !problems.is_empty() {
        println!("\n{}", t.markdown());
        bail!("the run was not clean:\n- {}", problems.join("\n- "));
    }
    Ok(t)
}

#[allow(clippy::too_many_arguments)]
fn table(
    args: &ReplayArgs,
    cores: usize,
    sim: &Simulation,
    measured: [&Limits; 2],
    raw_read: (u64, u64, Duration),
    checked: &ReplayRun,
    unsigned: &ReplayRun,
    (exported, offline): (&Exported, &VerifyRun),
    plain: (u64, Duration),
    phases: &Phases,
) -> Table {
    let met = |ok: bool| if ok { "met" } else { "**missed**" };
    let per_s = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let [before, after] = measured;
    let crypto = &before.crypto.higher(&after.crypto);
    let sha_bytes_per_s = before.sha_bytes_per_s.max(after.sha_bytes_per_s);
    let s = &checked.stats;
    let events = s.events.max(1) as f64;
    let signatures = (s.notary_signatures + s.officer_signatures) as f64 / events;
    let bytes = s.payload_bytes as f64 / events;
    let cores_f = cores as f64;
    let batch_per_s = crypto.best_batch_per_s();
    let signature_seconds = signatures / (batch_per_s * cores_f);
    let hash_seconds = bytes / (sha_bytes_per_s * cores_f);
    // Events/s for this many signatures an event, and the stored bytes hashed, on all cores.
    let limit_for = |signatures: f64| 1.0 / (signatures / (batch_per_s * cores_f) + hash_seconds);
    let limit = limit_for(signatures);
    let checked_rate = s.rate();
    let unsigned_rate = unsigned.stats.rate();

    let mut t = Table::default();
    t.row(
        "machine",
        format!("{cores} cores (available_parallelism)"),
        "2 cores",
    );
    t.row(
        "PostgreSQL the log is read from",
        "fsync=off, full_page_writes=off (relaxed: replay only reads)",
        "",
    );
    let total = |k: &str| -> Option<f64> {
        sim.summaries
            .iter()
            .map(|s| s.get(k).and_then(serde_json::Value::as_f64))
            .sum()
    };
    t.row(
        format!(
            "log built by saoma simulate --backfill, years {} to {}: {} inspections over their \
             working days, seed {}, {} in flight",
            sim.years.start(),
            sim.years.end(),
            thousands(sim.inspections as f64),
            args.seed,
            args.concurrency
        ),
        format!(
            "{} events in {:.0} s ({} events/s)",
            thousands(sim.events as f64),
            sim.wall.as_secs_f64(),
            thousands(sim.events as f64 / sim.wall.as_secs_f64().max(1e-9))
        ),
        format!("≥ {} events (--events)", thousands(args.events as f64)),
    );
    t.row(
        "… simulate's own summaries: accepted / events committed / commands/s",
        format!(
            "{} / {} / {}",
            total("accepted").map_or_else(|| "?".into(), thousands),
            total("events_committed").map_or_else(|| "?".into(), thousands),
            total("commands_sent")
                .zip(total("elapsed_seconds"))
                .map_or_else(|| "?".into(), |(n, s)| thousands(n / s.max(1e-9))),
        ),
        "no unexpected refusals",
    );
    t.row(
        "… per event: notary / officer signatures, stored bytes",
        format!(
            "{:.2} / {:.2}, {} B",
            s.notary_signatures as f64 / events,
            s.officer_signatures as f64 / events,
            thousands(bytes)
        ),
        "",
    );
    t.row(
        "… inspections / warnings the replay found",
        format!(
            "{} / {}",
            thousands(s.inspections as f64),
            thousands(s.warnings as f64)
        ),
        "",
    );
    t.row(
        format!(
            "machine limit for the same work, {cores} cores (ed25519-dalek's faster batch size, \
             and the higher of the measurements before and after)"
        ),
        format!("{} events/s", thousands(limit)),
        format!(
            "1 / ({signatures:.2} signatures ÷ ({} × {cores}) + {} B ÷ ({} B/s × {cores})) per event",
            thousands(batch_per_s),
            thousands(bytes),
            thousands(sha_bytes_per_s)
        ),
    );
    t.row(
        "… of which signatures / hashing, per event",
        format!(
            "{:.2} µs / {:.2} µs",
            1e6 * signature_seconds,
            1e6 * hash_seconds
        ),
        "",
    );
    t.row(
        "replay with every check (hashes, chains, notary and officer signatures)",
        format!("{} events/s", thousands(checked_rate)),
        format!(
            "≥ 80% of the limit = {} events/s: {}",
            thousands(0.8 * limit),
            met(checked_rate >= 0.8 * limit)
        ),
    );
    t.row(
        "… share of the machine limit",
        format!("{:.0}%", 100.0 * checked_rate / limit),
        "≥ 80%",
    );
    replay_rows(&mut t, checked);
    t.row(
        "replay without signature checks (--no-signatures)",
        format!("{} events/s", thousands(unsigned_rate)),
        format!("≥ 500,000 events/s: {}", met(unsigned_rate >= 500_000.0)),
    );
    replay_rows(&mut t, unsigned);
    let identical = checked.reports == unsigned.reports;
    t.row(
        format!("reports of the two replays ({})", REPORTS.join(", ")),
        match identical {
            true => format!(
                "byte-identical (SHA-256 {})",
                checked
                    .reports
                    .iter()
                    .map(|h| &h[..12])
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            false => "**differ**".into(),
        },
        "byte-identical",
    );
    t.row(
        "saoma export --out: the whole log as a bundle (growing its Merkle tree and signing a \
         checkpoint first)",
        format!(
            "{} events, {:.2} GB, in {:.1} s",
            thousands(exported.events as f64),
            exported.bytes as f64 / 1e9,
            exported.wall.as_secs_f64()
        ),
        "",
    );
    // The same limit as the replay's: verify checks the same signatures and hashes the same
    // bytes, and also hashes the tree (a leaf and an interior node per event) on top.
    let v = &offline.report.checked;
    let verify_signatures = (v.notary_signatures + v.officer_signatures) as f64 / events;
    let verify_limit = limit_for(verify_signatures);
    let verify_rate = per_s(v.events, offline.wall);
    t.row(
        "saoma verify of the bundle, offline: every hash, chain link, notary and officer \
         signature, key validity, the Merkle root against every checkpoint (process wall time)",
        format!("{} events/s", thousands(verify_rate)),
        format!(
            "≥ 80% of the limit = {} events/s: {}",
            thousands(0.8 * verify_limit),
            met(verify_rate >= 0.8 * verify_limit)
        ),
    );
    t.row(
        format!(
            "… share of the machine limit ({verify_signatures:.2} signatures and {} B hashed an \
             event, as the replay's)",
            thousands(bytes)
        ),
        format!("{:.0}%", 100.0 * verify_rate / verify_limit),
        "≥ 80%",
    );
    t.row(
        "… events / signatures checked / checkpoints / tree size",
        format!(
            "{} / {} / {} / {}",
            thousands(v.events as f64),
            thousands((v.notary_signatures + v.officer_signatures) as f64),
            offline.report.checkpoints,
            thousands(offline.report.tree_size as f64)
        ),
        "every event",
    );
    t.row(
        "… wall time / CPU of saoma verify",
        format!(
            "{:.2} s / {:.2} s ({:.0}% of a core)",
            offline.wall.as_secs_f64(),
            offline.cpu,
            100.0 * offline.cpu / offline.wall.as_secs_f64().max(1e-9)
        ),
        "",
    );
    t.row(
        "… peak memory (VmHWM, sampled every 20 ms)",
        offline
            .peak_memory
            .map_or_else(|| "unknown".into(), mebibytes),
        "bounded",
    );
    let plain_rate = per_s(plain.0, plain.1);
    t.row(
        "plain cqrs-es + postgres-es: PostgresEventRepository::stream_all_events per aggregate \
         type (Inspection, Registry), each payload into serde_json::Value, no checks",
        format!("{} events/s", thousands(plain_rate)),
        "(reference)",
    );
    t.row(
        "replay with every check ÷ plain read",
        format!("{:.2}×", checked_rate / plain_rate.max(1e-9)),
        "",
    );
    t.row(
        "replay --no-signatures ÷ plain read",
        format!("{:.2}×", unsigned_rate / plain_rate.max(1e-9)),
        "",
    );
    t.row(
        "PostgreSQL alone: SELECT CAST(payload AS TEXT) ORDER BY position, one connection, \
         not parsed",
        format!(
            "{} events/s, {:.0} MB/s",
            thousands(per_s(raw_read.0, raw_read.2)),
            per_s(raw_read.1, raw_read.2) / 1e6
        ),
        "(the read alone)",
    );
    for (limits, when) in [(before, ", before"), (after, ", after saoma verify")] {
        limits.crypto.batch_and_sha_rows(&mut t, when);
        t.row(
            format!("SHA-256 of {SHA_MESSAGE_BYTES} B, one core{when}"),
            format!(
                "{} /s, {:.0} MB/s",
                thousands(limits.sha_bytes_per_s / SHA_MESSAGE_BYTES as f64),
                limits.sha_bytes_per_s / 1e6
            ),
            "",
        );
    }
    for (name, took) in &phases.0 {
        t.row(
            format!("phase: {name}"),
            format!("{:.1} s", took.as_secs_f64()),
            "",
        );
    }
    t
}

/// The rows every replay run gets below its rate.
fn replay_rows(t: &mut Table, run: &ReplayRun) {
    let s = &run.stats;
    t.row(
        "… replay / report seconds (process wall time)",
        format!(
            "{:.2} s / {:.2} s ({:.2} s)",
            s.replay_seconds,
            s.report_seconds,
            run.wall.as_secs_f64()
        ),
        "",
    );
    t.row(
        "… peak memory (VmHWM)",
        s.peak_memory_bytes
            .map_or_else(|| "unknown".into(), mebibytes),
        "bounded (10M events in < 1 GiB)",
    );
    t.row(
        "… visits held in memory at most / taken back from the scratch store",
        format!(
            "{} of {} / {}",
            thousands(s.peak_visits_held as f64),
            thousands(s.inspections as f64),
            thousands(s.visits_restored as f64)
        ),
        "the recent visits, not the log",
    );
    let wall = run.wall.as_secs_f64().max(1e-9);
    let share = |c: f64| format!("{c:.2} s ({:.0}% of a core)", 100.0 * c / wall);
    t.row(
        "… CPU: saoma replay / PostgreSQL / other processes",
        format!(
            "{} / {} / {}",
            share(run.cpu_replay),
            share(run.cpu_postgres),
            share(run.cpu_others)
        ),
        "others 0 on a quiet machine",
    );
}

fn print_log_tail(name: &str, log: &str) {
    eprintln!("--- {name} log (tail) ---");
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    for line in tail.into_iter().rev() {
        eprintln!("{line}");
    }
}

/// A `saoma` child process with none of this shell's `SAOMA_*` settings.
fn saoma(binary: &Path, subcommand: &str) -> Command {
    let mut cmd = Command::new(binary);
    cmd.arg(subcommand);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SAOMA_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// About how many events `saoma simulate --inspections n` stores, for each of `years`: its
/// inspections' events, one registry event per enterprise (one for every two inspections, as
/// `enterprise_count` of services/src/simulate/population.rs has it, registered once) and the
/// rest of the registry (each year's plans are about a tenth of it).
fn expected_events(inspections: usize, years: usize) -> f64 {
    let enterprises = (inspections / 2).clamp(50, MAX_ENTERPRISES);
    (inspections * years) as f64 * EVENTS_PER_INSPECTION + enterprises as f64 + REGISTRY_EVENTS
}

/// The fewest inspections a year whose simulation over `years` is expected to store at least
/// `events` events.
fn inspections_for(events: u64, years: usize) -> usize {
    let (mut low, mut high) = (1usize, events.max(1) as usize);
    while low < high {
        let mid = low + (high - low) / 2;
        if expected_events(mid, years) >= events as f64 {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    low
}

/// Runs `saoma simulate --backfill` on the store, printing its growth as it goes; returns
/// simulate's JSON summary and the wall time.
#[allow(clippy::too_many_arguments)]
fn simulate(
    binary: &Path,
    args: &ReplayArgs,
    year: i32,
    inspections: usize,
    database_url: &str,
    data_dir: &Path,
    work: &Path,
    runtime: &tokio::runtime::Runtime,
    pool: &sqlx::PgPool,
) -> Result<(serde_json::Value, Duration)> {
    step(&format!(
        "saoma simulate --backfill {year} --inspections {inspections} --seed {} --concurrency {} (≈ {} events)",
        args.seed,
        args.concurrency,
        thousands(expected_events(inspections, 1))
    ));
    let log_path = work.join("simulate.log");
    let mut child = saoma(binary, "simulate")
        .args(["--inspections", &inspections.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .args(["--backfill", &year.to_string()])
        .args(["--concurrency", &args.concurrency.to_string(), "--json"])
        .env("SAOMA_DATABASE_URL", database_url)
        .env("SAOMA_DATA_DIR", data_dir)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(&log_path)?)
        .spawn()
        .context("starting saoma simulate")?;
    let start = Instant::now();
    let mut stdout = child.stdout.take().context("simulate's stdout")?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).map(|_| out)
    });
    let mut last_report = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
        if last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            let count: Result<(i64,), _> =
                runtime.block_on(sqlx::query_as("SELECT COUNT(*) FROM events").fetch_one(pool));
            if let Ok((n,)) = count {
                let secs = start.elapsed().as_secs_f64();
                step(&format!(
                    "… {} events stored after {secs:.0} s ({} events/s)",
                    thousands(n as f64),
                    thousands(n as f64 / secs)
                ));
            }
        }
    };
    let wall = start.elapsed();
    let stdout = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reading simulate's stdout panicked"))??;
    let summary: Option<serde_json::Value> = serde_json::from_str(stdout.trim()).ok();
    match summary {
        Some(summary) => {
            if !status.success() {
                eprintln!("saoma simulate exited with {status}; its summary is kept");
            }
            Ok((summary, wall))
        }
        None => {
            print_log_tail(
                "saoma simulate",
                &std::fs::read_to_string(&log_path).unwrap_or_default(),
            );
            bail!("saoma simulate exited with {status} and printed no JSON summary:\n{stdout}")
        }
    }
}

/// Waits until the sequencer has positioned every event; returns how many events the store holds
/// (checked to be positioned 1..=n without gaps).
async fn wait_positioned(pool: &sqlx::PgPool) -> Result<u64> {
    let start = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let (unpositioned,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM events WHERE position IS NULL")
                .fetch_one(pool)
                .await?;
        if unpositioned == 0 {
            break;
        }
        ensure!(
            start.elapsed() < POSITIONING_TIMEOUT,
            "{unpositioned} events still without a position after {} s",
            POSITIONING_TIMEOUT.as_secs()
        );
        if last_report.elapsed() >= PROGRESS_EVERY {
            last_report = Instant::now();
            step(&format!("… {unpositioned} events still to position"));
            print_busy_sessions(pool).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (count, max): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(position), 0) FROM events")
            .fetch_one(pool)
            .await?;
    ensure!(
        count == max,
        "{count} events positioned up to {max}: the log has gaps"
    );
    Ok(count as u64)
}

/// What the database's other sessions are doing (to see what holds the sequencer up).
async fn print_busy_sessions(pool: &sqlx::PgPool) {
    let sessions: Result<Vec<(String, String, f64, String)>, _> = sqlx::query_as(
        "SELECT COALESCE(state, ''), \
                COALESCE(wait_event_type || ':' || wait_event, 'running'), \
                COALESCE(EXTRACT(EPOCH FROM now() - xact_start)::float8, 0), \
                left(regexp_replace(COALESCE(query, ''), '\\s+', ' ', 'g'), 100) \
         FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'",
    )
    .fetch_all(pool)
    .await;
    match sessions {
        Ok(sessions) => {
            for (state, wait, seconds, query) in sessions {
                eprintln!("    session {state}, {wait}, transaction open {seconds:.1} s: {query}");
            }
        }
        Err(e) => eprintln!("    reading pg_stat_activity: {e}"),
    }
}

/// SHA-256 of [`SHA_MESSAGE_BYTES`]-byte messages on the calling thread (one core), in bytes/s.
fn sha256_bytes_per_second(duration: Duration) -> f64 {
    let messages: Vec<Vec<u8>> = (0..64u8)
        .map(|i| {
            let mut m = vec![b'x'; SHA_MESSAGE_BYTES];
            m[0] = i;
            m
        })
        .collect();
    let start = Instant::now();
    let mut hashed = 0usize;
    while start.elapsed() < duration {
        for m in &messages {
            black_box(Sha256::digest(black_box(m)));
        }
        hashed += messages.len();
    }
    (hashed * SHA_MESSAGE_BYTES) as f64 / start.elapsed().as_secs_f64()
}

/// Every payload as text in position order on one connection, not parsed: (events, bytes,
/// elapsed).
async fn read_payloads(pool: &sqlx::PgPool) -> Result<(u64, u64, Duration)> {
    let start = Instant::now();
    let mut rows = sqlx::query_as::<_, (String,)>(
        "SELECT CAST(payload AS TEXT) FROM events ORDER BY position",
    )
    .fetch(pool);
    let (mut events, mut bytes) = (0u64, 0u64);
    while let Some((text,)) = rows.try_next().await? {
        events += 1;
        bytes += text.len() as u64;
    }
    Ok((events, bytes, start.elapsed()))
}

/// Runs `saoma replay --out <out> --stats` (with `--no-signatures` unless `signatures`) on the
/// store and data dir, and hashes the reports it wrote.
fn replay_once(
    binary: &Path,
    database_url: &str,
    data_dir: &Path,
    out: &Path,
    signatures: bool,
    postgres: Option<u32>,
) -> Result<ReplayRun> {
    let mut cmd = saoma(binary, "replay");
    cmd.arg("--out").arg(out).arg("--stats");
    if !signatures {
        cmd.arg("--no-signatures");
    }
    cmd.env("SAOMA_DATABASE_URL", database_url)
        .env("SAOMA_DATA_DIR", data_dir)
        .stdin(Stdio::null());
    // Machine-wide CPU and PostgreSQL's from /proc; this process stands in for the `serve` root
    // (unused), and the child's CPU comes from this process's waited-for children.
    let roots = Roots {
        serve: std::process::id(),
        postgres,
        nats: None,
    };
    // The replay's backends exit with its connections: the postmaster's waited-for children.
    let postmaster = postgres.map(|p| p.to_string());
    let exited_backends = || postmaster.as_deref().map_or(0.0, children_cpu_seconds);
    let (before, children_before, backends_before) = (
        roots.sample(),
        children_cpu_seconds("self"),
        exited_backends(),
    );
    let start = Instant::now();
    let output = cmd.output().context("running saoma replay")?;
    let wall = start.elapsed();
    let (after, children_after, backends_after) = (
        roots.sample(),
        children_cpu_seconds("self"),
        exited_backends(),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        print_log_tail("saoma replay", &String::from_utf8_lossy(&output.stderr));
        bail!("saoma replay exited with {}", output.status);
    }
    let stats: ReplayStats = last_json_line("saoma replay --stats", &stdout)?;
    step(&format!(
        "{} events in {:.2} s: {} events/s",
        thousands(stats.events as f64),
        stats.replay_seconds,
        thousands(stats.rate())
    ));
    let reports = REPORTS
        .iter()
        .map(|name| file_sha256(&out.join(name)))
        .collect::<Result<Vec<_>>>()?;
    let d = after - before;
    let cpu_replay = children_after - children_before;
    let cpu_postgres = d.postgres + backends_after - backends_before;
    Ok(ReplayRun {
        stats,
        wall,
        cpu_replay,
        cpu_postgres,
        cpu_others: (d.machine_busy - cpu_replay - cpu_postgres - d.bench).max(0.0),
        reports,
    })
}

/// The last line of `stdout` that is a JSON object, read as `T`; `what` names the command.
fn last_json_line<T: serde::de::DeserializeOwned>(what: &str, stdout: &str) -> Result<T> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("{what} printed no JSON line:\n{stdout}"))?;
    serde_json::from_str(line).with_context(|| format!("{what} printed {line}"))
}

/// What `saoma export` wrote.
struct Exported {
    events: u64,
    /// Size of `events.jsonl`.
    bytes: u64,
    wall: Duration,
}

/// Runs `saoma export --out <dir>` on the store and data dir.
fn export_once(binary: &Path, database_url: &str, data_dir: &Path, dir: &Path) -> Result<Exported> {
    let start = Instant::now();
    let output = saoma(binary, "export")
        .arg("--out")
        .arg(dir)
        .env("SAOMA_DATABASE_URL", database_url)
        .env("SAOMA_DATA_DIR", data_dir)
        .stdin(Stdio::null())
        .output()
        .context("running saoma export")?;
    let wall = start.elapsed();
    if !output.status.success() {
        print_log_tail("saoma export", &String::from_utf8_lossy(&output.stderr));
        bail!("saoma export exited with {}", output.status);
    }
    #[derive(Deserialize)]
    struct Manifest {
        events: u64,
    }
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(dir.join("manifest.json"))?)
        .context("the bundle's manifest.json")?;
    Ok(Exported {
        events: manifest.events,
        bytes: std::fs::metadata(dir.join("events.jsonl"))?.len(),
        wall,
    })
}

/// The JSON line of `saoma verify --json`.
#[derive(Debug, Deserialize)]
struct VerifyReport {
    checked: VerifyChecked,
    tree_size: u64,
    checkpoints: u64,
}

#[derive(Debug, Deserialize)]
struct VerifyChecked {
    events: u64,
    notary_signatures: u64,
    officer_signatures: u64,
}

/// One `saoma verify` child process.
struct VerifyRun {
    report: VerifyReport,
    wall: Duration,
    /// User + system CPU seconds.
    cpu: f64,
    peak_memory: Option<u64>,
}

/// Runs `saoma verify <dir> --json`, sampling its peak memory while it runs.
fn verify_once(binary: &Path, dir: &Path) -> Result<VerifyRun> {
    let children_before = children_cpu_seconds("self");
    let start = Instant::now();
    let mut child = saoma(binary, "verify")
        .arg(dir)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running saoma verify")?;
    let pid = child.id();
    let mut peak_memory = None;
    // VmHWM only grows: its last reading before the exit is the peak, give or take 20 ms.
    while child.try_wait()?.is_none() {
        if let Some(hwm) = procs::status_bytes(pid, "VmHWM") {
            peak_memory = Some(hwm);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output()?;
    let wall = start.elapsed();
    let cpu = children_cpu_seconds("self") - children_before;
    if !output.status.success() {
        print_log_tail("saoma verify", &String::from_utf8_lossy(&output.stderr));
        bail!("saoma verify exited with {}", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: VerifyReport = last_json_line("saoma verify --json", &stdout)?;
    step(&format!(
        "{} events in {:.2} s: {} events/s",
        thousands(report.checked.events as f64),
        wall.as_secs_f64(),
        thousands(report.checked.events as f64 / wall.as_secs_f64().max(1e-9))
    ));
    Ok(VerifyRun {
        report,
        wall,
        cpu,
        peak_memory,
    })
}

/// User + system CPU seconds of the waited-for (exited) children of `pid` (`cutime` + `cstime`
/// of `/proc/<pid>/stat`; `pid` is e.g. `self`).
fn children_cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    let fields: Vec<f64> = rest
        .split_whitespace()
        .skip(13)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum::<f64>() / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn file_sha256(path: &Path) -> Result<String> {
    let mut reader =
        BufReader::new(File::open(path).with_context(|| format!("opening {}", path.display()))?);
    let mut hasher = Sha256::new();
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        hasher.update(chunk);
        let n = chunk.len();
        reader.consume(n);
    }
    Ok(format!("{:x}", hasher.finalize()))
}

/// The aggregate types of Saoma's events table, each read as a stream of its own.
const AGGREGATE_TYPES: [&str; 2] = ["Inspection", "Registry"];

/// A stored event as plain cqrs-es sees it without Saoma's types: its JSON payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
struct StoredEvent(serde_json::Value);

impl DomainEvent for StoredEvent {
    fn event_type(&self) -> String {
        "Stored".into()
    }

    fn event_version(&self) -> String {
        "1".into()
    }
}

/// An aggregate that only names the type `AGGREGATE_TYPES[T]` for postgres-es to read.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored<const T: usize>;

impl<const T: usize> Aggregate for Stored<T> {
    const TYPE: &'static str = AGGREGATE_TYPES[T];
    type Command = ();
    type Event = StoredEvent;
    type Error = std::convert::Infallible;
    type Services = ();

    async fn handle(&mut self, _: (), _: &(), _: &EventSink<Self>) -> Result<(), Self::Error> {
        Ok(())
    }

    fn apply(&mut self, _: StoredEvent) {}
}

/// Events of one aggregate type through postgres-es, each one's payload into
/// `serde_json::Value` (the repository's own decoding and cqrs-es's `EventEnvelope`).
async fn stream_type<A: Aggregate>(repo: &PostgresEventRepository) -> Result<u64> {
    let mut stream = repo
        .stream_all_events::<A>()
        .await
        .map_err(|e| anyhow::anyhow!("postgres-es stream_all_events: {e}"))?;
    let mut events = 0u64;
    while let Some(event) = stream.next::<A>(&[]).await {
        let envelope = event.map_err(|e| anyhow::anyhow!("postgres-es: {e}"))?;
        black_box(envelope);
        events += 1;
    }
    Ok(events)
}

/// The plain way: every event of the store through `PostgresEventRepository::stream_all_events`,
/// one aggregate type after the other, no checks. Returns (events, elapsed).
async fn plain_read(pool: &sqlx::PgPool) -> Result<(u64, Duration)> {
    let types: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT aggregate_type FROM events ORDER BY 1")
            .fetch_all(pool)
            .await?;
    for (t,) in &types {
        ensure!(
            AGGREGATE_TYPES.contains(&t.as_str()),
            "the store holds events of aggregate type {t:?}, which the plain read does not cover"
        );
    }
    let repo = PostgresEventRepository::new(pool.clone());
    let start = Instant::now();
    let events = stream_type::<Stored<0>>(&repo).await? + stream_type::<Stored<1>>(&repo).await?;
    Ok((events, start.elapsed()))
}
