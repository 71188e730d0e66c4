//! `saoma-bench ingest`: the ingest benchmark of issue 3, in one run on this machine.
//!
//! It starts its own PostgreSQL and NATS (the test harness's throw-away servers) and a release
//! `saoma serve` on them, registers a population through the admin import, signs N officer
//! commands ahead of time (complete lifecycles over many inspections), and measures:
//! sustained events/s over JetStream (publish → verified → committed → reply), reply latency at
//! a fixed offered rate, the service's peak memory and where the CPU went; then, on the same
//! PostgreSQL, the plain cqrs-es + postgres-es way with 1 and 16 tasks, and the machine's limits
//! (ed25519, SHA-256, `COPY`). Prints a markdown table, and writes it to `--out` when given.
//!
//! `saoma-bench replay` (`bench/replay.rs`): `saoma replay` of a log built by `saoma simulate`
//! through a release `saoma serve`, with every check and without signatures, beside plain
//! cqrs-es + postgres-es reading the same events and the machine's limit for the same work.
//!
//! The `saoma` binary is `$SAOMA_BIN` when set, else built here with
//! `cargo build --release -p saoma-services --bin saoma`.
//!
//! ```text
//! cargo run --release -p saoma-tests --bin saoma-bench -- ingest --commands 40000
//! cargo run --release -p saoma-tests --bin saoma-bench -- replay --events 200000
//! ```

#[path = "../bench/mod.rs"]
mod bench;

use anyhow::{bail, ensure, Context as _, Result};
use bench::ingest::{self, Nats, RunResult};
use bench::population::{Population, STEPS};
use bench::procs::{self, CpuSample, Roots};
use bench::replay::{self, ReplayArgs};
use bench::report::{mebibytes, millis, thousands, Table};
use bench::{baseline, limits};
use chrono::Utc;
use clap::{Parser, Subcommand};
use saoma_services::client::Client;
use saoma_tests::{NatsServer, PgServer, SaomaCommand};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "saoma-bench",
    about = "Saoma's benchmarks, each in one self-contained run"
)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Signed commands over NATS JetStream into PostgreSQL, beside plain cqrs-es and the
    /// machine's limits.
    Ingest(IngestArgs),
    /// `saoma replay` of a simulated log, with and without signature checks, beside plain
    /// cqrs-es + postgres-es reading the same events and the machine's limits.
    Replay(ReplayArgs),
}

#[derive(clap::Args)]
struct IngestArgs {
    /// Signed commands in the throughput run (rounded up to whole four-step lifecycles).
    #[arg(long, default_value_t = 40_000)]
    commands: usize,
    /// Inspections in flight at once in the throughput run.
    #[arg(long, default_value_t = 2048)]
    window: usize,
    /// Offered rate of the latency run, in commands (= events) per second.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Length of the latency run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    latency_seconds: f64,
    /// Seconds offered at the latency run's rate before it is measured. Right after the
    /// throughput run the OS writes back its files (JetStream's, PostgreSQL's) for a while,
    /// and PostgreSQL's commits wait for the disk behind that; 30 s is the kernel's default
    /// `dirty_expire_centisecs`. The p99 of this time is reported too.
    #[arg(long, default_value_t = 30.0)]
    settle_seconds: f64,
    /// Length of each plain cqrs-es run (1 task, then 16 tasks), in seconds.
    #[arg(long, default_value_t = 10.0)]
    baseline_seconds: f64,
    /// Length of each machine-limit measurement, in seconds.
    #[arg(long, default_value_t = 2.0)]
    limits_seconds: f64,
    /// Concurrent tasks of the second plain cqrs-es run.
    #[arg(long, default_value_t = 16)]
    baseline_tasks: usize,
    /// Seed of the officers' device keys.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run PostgreSQL with the test suite's relaxed durability (`fsync=off`; a process crash
    /// loses nothing, an OS crash may) instead of its defaults (every commit flushed to disk).
    #[arg(long)]
    relaxed_durability: bool,
    /// Run the durable PostgreSQL with `deploy/postgres/saoma.conf` (2 GB of shared buffers,
    /// rare checkpoints) instead of the harness's small settings (32 MB, PostgreSQL's
    /// checkpoint defaults).
    #[arg(long, conflicts_with = "relaxed_durability")]
    pg_conf: bool,
    /// Run `saoma serve` without the live views (`SAOMA_LIVE_VIEWS=false`), as an ingest-only
    /// node would.
    #[arg(long)]
    no_live_views: bool,
    /// Also write the table (markdown) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> Result<()> {
    let (table, out) = match Cli::parse().command {
        Bench::Ingest(args) => {
            ensure!(args.commands > 0, "--commands must be positive");
            ensure!(
                args.rate > 0.0 && args.latency_seconds > 0.0 && args.settle_seconds >= 0.0,
                "--rate and --latency-seconds must be positive, --settle-seconds not negative"
            );
            (ingest_bench(&args)?, args.out)
        }
        Bench::Replay(args) => (replay::bench(&args)?, args.out),
    };
    println!("\n{}", table.markdown());
    if let Some(out) = &out {
        std::fs::write(out, table.markdown())
            .with_context(|| format!("writing {}", out.display()))?;
        eprintln!("table written to {}", out.display());
    }
    Ok(())
}

fn step(what: &str) {
    eprintln!("[{}] {what}", Utc::now().format("%H:%M:%S"));
}

/// `$SAOMA_BIN`, else a release build of `saoma` (cargo prints the path of what it built).
fn saoma_release_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("SAOMA_BIN") {
        // Absolute: `saoma serve` runs in its own working dir.
        return std::fs::canonicalize(&path)
            .with_context(|| format!("SAOMA_BIN={}", Path::new(&path).display()));
    }
    step("building saoma (cargo build --release -p saoma-services --bin saoma)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "-p",
            "saoma-services",
            "--bin",
            "saoma",
            "--message-format=json-render-diagnostics",
        ])
        .output()
        .context("running cargo build for the saoma binary")?;
    ensure!(
        out.status.success(),
        "cargo build --release of saoma failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] == "compiler-artifact" && message["target"]["name"] == "saoma" {
            if let Some(path) = message["executable"].as_str() {
                return Ok(path.into());
            }
        }
    }
    bail!("cargo build reported no saoma executable")
}

/// Everything the ingest runs measured against the service.
struct IngestFigures {
    throughput: RunResult,
    throughput_cpu: CpuSample,
    /// Ingest batches (`submit_batch` calls) in the throughput run and their mean size.
    throughput_batches: Option<(f64, f64)>,
    latency: RunResult,
    /// After the throughput run's last reply: (all positioned, all published on `saoma.evt.>`).
    log_caught_up: (Option<Duration>, Option<Duration>),
    peak_memory: Option<u64>,
    sample_payload: String,
    problems: Vec<String>,
}

fn ingest_bench(args: &IngestArgs) -> Result<Table> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let binary = saoma_release_binary()?;

    step("starting PostgreSQL and NATS");
    let pg_settings = match args.pg_conf {
        true => saoma_tests::postgres::recommended_settings(),
        false => Vec::new(),
    };
    let pg = match args.relaxed_durability {
        true => PgServer::start()?,
        false => PgServer::start_durable_with(pg_settings.clone())?,
    };
    let nats = NatsServer::start()?;
    let baseline_url = pg.create_database("baseline")?;
    let copy_url = pg.create_database("copy_limit")?;

    let limit_time = Duration::from_secs_f64(args.limits_seconds);
    step("machine limits: ed25519 and SHA-256 on one core");
    let crypto = limits::crypto(limit_time)?;

    step("starting saoma serve (release) on PostgreSQL with NATS ingest");
    let work = tempfile::Builder::new().prefix("saoma-bench-").tempdir()?;
    let mut saoma = SaomaCommand::new(work.path())
        .binary(&binary)
        .database_url(pg.url())
        .env("SAOMA_NATS_URL", nats.url())
        .env("SAOMA_LIVE_VIEWS", (!args.no_live_views).to_string())
        .spawn()?;
    let pid = saoma.pid().context("saoma serve is not running")?;
    let roots = Roots {
        serve: pid,
        postgres: procs::server_pid("postgres", pg.port()),
        nats: procs::server_pid("nats-server", nats.port()),
    };

    let runtime = tokio::runtime::Runtime::new()?;
    let figures = runtime.block_on(ingest_runs(
        args,
        &saoma.base_url(),
        saoma.admin_token(),
        &nats.url(),
        &pg.url(),
        roots,
        pid,
    ));
    let figures = match figures {
        Ok(f) => f,
        Err(e) => {
            eprintln!("--- saoma serve log (tail) ---");
            let log = saoma.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
            return Err(e);
        }
    };
    step("stopping saoma serve");
    if let Err(e) = saoma.terminate() {
        eprintln!("saoma serve did not stop cleanly: {e:#}");
    }
    drop(saoma);

    let base_time = Duration::from_secs_f64(args.baseline_seconds);
    let (plain_one, plain_many, copy_rows) = runtime.block_on(async {
        let pool = baseline::prepare(&baseline_url, args.baseline_tasks as u32 + 4).await?;
        step("plain cqrs-es + postgres-es, 1 task");
        let one = baseline::run(&pool, 1, base_time).await?;
        step(&format!(
            "plain cqrs-es + postgres-es, {} tasks",
            args.baseline_tasks
        ));
        let many = baseline::run(&pool, args.baseline_tasks, base_time).await?;
        let stored = baseline::stored(&pool).await?;
        ensure!(
            stored as u64 == one.0 + many.0,
            "the plain runs counted {} events but the table holds {stored}",
            one.0 + many.0
        );
        step("machine limits: PostgreSQL COPY");
        let sealed = limits::copy(
            &copy_url,
            "sealed_rows",
            &figures.sample_payload,
            limit_time,
        )
        .await?;
        let small = limits::copy(
            &copy_url,
            "plain_rows",
            &baseline::sample_payload(),
            limit_time,
        )
        .await?;
        anyhow::Ok((one, many, (sealed, small)))
    })?;

    let mut t = Table::default();
    let rate = |(events, elapsed): (u64, Duration)| events as f64 / elapsed.as_secs_f64();
    let ingest_rate = figures.throughput.events_per_second();
    let met = |ok: bool| if ok { "met" } else { "**missed**" };
    t.row(
        "machine",
        format!("{cores} cores (available_parallelism)"),
        "2 cores",
    );
    t.row(
        "PostgreSQL durability (both ways measured on it)",
        match pg.is_durable() {
            true => "fsync=on, full_page_writes=on (PostgreSQL's defaults)",
            false => "fsync=off, full_page_writes=off (--relaxed-durability)",
        },
        "",
    );
    t.row(
        "PostgreSQL settings",
        match (pg.is_durable(), pg_settings.is_empty()) {
            (true, false) => format!("deploy/postgres/saoma.conf: {}", pg_settings.join(", ")),
            _ => "the test harness's: shared_buffers=32MB, checkpoint defaults".to_string(),
        },
        "",
    );
    t.row(
        "live views in saoma serve (history, warnings)",
        match args.no_live_views {
            false => "on (the default)",
            true => "off (--no-live-views)",
        },
        "",
    );
    let th = &figures.throughput;
    t.row(
        format!(
            "ingest sustained: {} signed commands over JetStream, {} inspections in flight",
            thousands(th.commands_sent as f64),
            args.window
        ),
        format!("{} events/s", thousands(ingest_rate)),
        format!("≥ 10,000 events/s: {}", met(ingest_rate >= 10_000.0)),
    );
    t.row(
        "… elapsed, first publish → last reply",
        format!("{:.2} s", th.elapsed.as_secs_f64()),
        "",
    );
    t.row(
        "… accepted / refused / events in replies",
        format!(
            "{} / {} / {}",
            thousands(th.accepted as f64),
            th.refused_total(),
            thousands(th.events as f64)
        ),
        "all accepted, one event each",
    );
    t.row(
        "… reply latency under saturation p50 / p99",
        format!(
            "{} / {}",
            millis(th.percentile(50.0)),
            millis(th.percentile(99.0))
        ),
        "(queueing behind the window, not the target's figure)",
    );
    if let Some((batches, mean)) = figures.throughput_batches {
        t.row(
            "… ingest batches (submit_batch calls), mean size",
            format!("{} batches, {mean:.0} commands each", thousands(batches)),
            "",
        );
    }
    let cpu = figures.throughput_cpu;
    let wall = th.elapsed.as_secs_f64();
    let share = |s: f64| format!("{s:.1} s ({:.0}% of a core)", 100.0 * s / wall);
    t.row("… CPU: saoma serve", share(cpu.serve), "");
    let found =
        |root: Option<u32>, s: f64| root.map_or_else(|| "process not found".into(), |_| share(s));
    t.row(
        "… CPU: PostgreSQL (postmaster and backends)",
        found(roots.postgres, cpu.postgres),
        "",
    );
    t.row("… CPU: nats-server", found(roots.nats, cpu.nats), "");
    t.row(
        "… CPU: other processes on the machine",
        share(cpu.others()),
        "0 on a quiet machine",
    );
    t.row(
        "… CPU: saoma-bench (publisher and reply reader)",
        share(cpu.bench),
        "",
    );
    t.row("… CPU: idle", share(cpu.machine_idle), "");
    let per_event = |s: f64| format!("{:.0} µs", 1e6 * s / th.events.max(1) as f64);
    t.row(
        "… CPU per event: saoma serve / PostgreSQL / nats-server",
        format!(
            "{} / {} / {}",
            per_event(cpu.serve),
            per_event(cpu.postgres),
            per_event(cpu.nats)
        ),
        "≤ 200 µs in all for 10,000 events/s on 2 cores",
    );
    let after_last = |lag: Option<Duration>| {
        lag.map_or_else(
            || "not within 30 s".into(),
            |l| format!("{} after the last reply", millis(l)),
        )
    };
    t.row(
        "… every event positioned in the global log (sequencer)",
        after_last(figures.log_caught_up.0),
        "bounded delay",
    );
    t.row(
        "… every event published on saoma.evt.>",
        after_last(figures.log_caught_up.1),
        "bounded delay",
    );
    let lat = &figures.latency;
    let p99 = lat.percentile(99.0);
    t.row(
        format!(
            "latency run: {} commands offered at {} /s, measured after the first {} s",
            thousands(lat.commands_sent as f64),
            thousands(args.rate),
            args.settle_seconds
        ),
        format!(
            "{} offered/s, {} events/s",
            thousands(lat.commands_sent as f64 / lat.publishing.as_secs_f64().max(1e-9)),
            thousands(lat.events_per_second())
        ),
        format!("{} /s", thousands(args.rate)),
    );
    t.row("… reply latency p50", millis(lat.percentile(50.0)), "");
    t.row(
        "… reply latency p99",
        millis(p99),
        format!("≤ 50 ms: {}", met(p99 <= Duration::from_millis(50))),
    );
    t.row("… reply latency max", millis(lat.max_latency()), "");
    t.row(
        "… reply latency p99 in the first seconds, right after the throughput run",
        millis(ingest::percentile(&lat.settling, 99.0)),
        "(the throughput run's files still being written back: not the target's figure)",
    );
    t.row(
        "… accepted / refused",
        format!(
            "{} / {}",
            thousands(lat.accepted as f64),
            lat.refused_total()
        ),
        "all accepted",
    );
    t.row(
        "saoma serve peak memory (VmHWM)",
        figures
            .peak_memory
            .map_or_else(|| "unknown".into(), mebibytes),
        "bounded",
    );
    let one = rate(plain_one);
    let many = rate(plain_many);
    t.row(
        "plain cqrs-es + postgres-es, 1 task, no signing",
        format!("{} events/s", thousands(one)),
        "≈ 1,400 events/s (DESIGN.md)",
    );
    t.row(
        format!(
            "plain cqrs-es + postgres-es, {} tasks, no signing",
            args.baseline_tasks
        ),
        format!("{} events/s", thousands(many)),
        "≈ 3,400 events/s (DESIGN.md)",
    );
    t.row(
        format!("ingest ÷ plain ({} tasks)", args.baseline_tasks),
        format!("{:.2}×", ingest_rate / many.max(1e-9)),
        format!("≥ 3×: {}", met(ingest_rate >= 3.0 * many)),
    );
    t.row(
        format!("ed25519 sign, {} B, one core", limits::MESSAGE_BYTES),
        format!("{} /s", thousands(crypto.sign_per_s)),
        "≈ 46,000 /s",
    );
    t.row(
        format!(
            "ed25519 verify_strict, {} B, one core",
            limits::MESSAGE_BYTES
        ),
        format!("{} /s", thousands(crypto.verify_strict_per_s)),
        "≈ 25,000 /s",
    );
    crypto.batch_and_sha_rows(&mut t, "");
    t.row(
        format!(
            "PostgreSQL COPY of sealed event rows ({} B payload, one connection)",
            figures.sample_payload.len()
        ),
        format!("{} rows/s", thousands(copy_rows.0)),
        "≈ 83,000 rows/s (row size not stated)",
    );
    t.row(
        format!(
            "PostgreSQL COPY of plain event rows ({} B payload, one connection)",
            baseline::sample_payload().len()
        ),
        format!("{} rows/s", thousands(copy_rows.1)),
        "≈ 83,000 rows/s (row size not stated)",
    );
    if !figures.problems.is_empty() {
        println!("\n{}", t.markdown());
        bail!(
            "the run was not clean:\n- {}",
            figures.problems.join("\n- ")
        );
    }
    Ok(t)
}

async fn admin_event_count(admin: &Client) -> Result<u64> {
    let reply = admin.get("/api/v1/admin/stats").await?;
    ensure!(
        reply.ok(),
        "GET /api/v1/admin/stats: HTTP {} {}",
        reply.status,
        reply.body
    );
    reply
        .body
        .get("events")
        .and_then(serde_json::Value::as_u64)
        .context("stats without an event count")
}

/// `(sum, count)` of the service's `saoma_nats_batch_size` histogram from `GET /metrics`:
/// how many messages each `submit_batch` call took. `None` when the metric is not exported.
async fn batch_sizes(admin: &Client) -> Option<(f64, f64)> {
    let reply = admin.get("/metrics").await.ok()?;
    let text = reply.body.as_str()?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
    };
    Some((
        value("saoma_nats_batch_size_sum")?,
        value("saoma_nats_batch_size_count")?,
    ))
}

/// Checks a run: every command answered and accepted with one event, and the store grew by
/// exactly that many events.
fn check_run(name: &str, run: &RunResult, expected: usize, grew: u64, problems: &mut Vec<String>) {
    if run.accepted != expected || run.refused_total() > 0 {
        problems.push(format!(
            "{name}: {} of {expected} commands accepted, refusals: {:?}",
            run.accepted, run.refused
        ));
    }
    if run.events != expected || grew != expected as u64 {
        problems.push(format!(
            "{name}: {expected} events expected, {} in replies, the store grew by {grew}",
            run.events
        ));
    }
    if run.publish_failures > 0 {
        problems.push(format!(
            "{name}: {} publishes were not acknowledged by JetStream",
            run.publish_failures
        ));
    }
    if run.stray_replies > 0 {
        eprintln!(
            "{name}: {} replies to no command of the run",
            run.stray_replies
        );
    }
}

/// How long after `since` the store's global log caught up: every event positioned, and every
/// positioned event published on `saoma.evt.>` (the `nats-events` cursor); `None` for what did
/// not happen within 30 s (or a store without those tables).
async fn log_catch_up(pool: &sqlx::PgPool, since: Instant) -> (Option<Duration>, Option<Duration>) {
    const POSITIONED: &str = "SELECT NOT EXISTS (SELECT 1 FROM events WHERE position IS NULL)";
    const PUBLISHED: &str =
        "SELECT COALESCE((SELECT position FROM cursors WHERE name = 'nats-events'), 0) \
         >= COALESCE((SELECT MAX(position) FROM events), 0)";
    let mut out = [None, None];
    for (i, sql) in [POSITIONED, PUBLISHED].into_iter().enumerate() {
        while since.elapsed() < Duration::from_secs(30) {
            match sqlx::query_as::<_, (bool,)>(sql).fetch_one(pool).await {
                Ok((true,)) => {
                    out[i] = Some(since.elapsed());
                    break;
                }
                Ok((false,)) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => {
                    eprintln!("reading the log's progress: {e}");
                    break;
                }
            }
        }
    }
    (out[0], out[1])
}

async fn ingest_runs(
    args: &IngestArgs,
    base_url: &str,
    admin_token: &str,
    nats_url: &str,
    store_url: &str,
    roots: Roots,
    pid: u32,
) -> Result<IngestFigures> {
    let admin = Client::new(base_url, Some(admin_token.to_string()));
    let population = Population::new(args.seed, 16, 8, 2000);
    step(&format!(
        "registering {} agencies, {} officers with device keys, {} enterprises",
        population.agency_count(),
        population.officer_count(),
        population.enterprise_count()
    ));
    population.import(&admin).await?;
    let registered = population.keys_registered_at(&admin).await?;
    let device_time = Utc::now().max(registered) + chrono::Duration::milliseconds(1);

    let throughput_n = args.commands.div_ceil(STEPS);
    let latency_n =
        ((args.rate * (args.settle_seconds + args.latency_seconds)) as usize).div_ceil(STEPS);
    let warmup_n = 64;
    step(&format!(
        "signing {} commands ahead of the timing",
        (throughput_n + latency_n + warmup_n) * STEPS
    ));
    let signing = Instant::now();
    let warmup = population.sign_lifecycles(0, warmup_n, device_time);
    let throughput = population.sign_lifecycles(warmup_n, throughput_n, device_time);
    let latency = population.sign_lifecycles(warmup_n + throughput_n, latency_n, device_time);
    step(&format!(
        "signed in {:.1} s",
        signing.elapsed().as_secs_f64()
    ));

    let nats = Nats::connect(nats_url, Duration::from_secs(30)).await?;
    let store = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(store_url)
        .await
        .context("connecting to the service's database")?;
    let mut problems = Vec::new();

    step("warm-up: 64 lifecycles");
    let before = admin_event_count(&admin).await?;
    let run = ingest::throughput(&nats, &warmup, args.window).await?;
    let grew = admin_event_count(&admin).await? - before;
    check_run("warm-up", &run, warmup_n * STEPS, grew, &mut problems);
    ensure!(problems.is_empty(), "warm-up failed: {problems:?}");

    step(&format!(
        "throughput run: {} commands, {} inspections in flight",
        throughput_n * STEPS,
        args.window
    ));
    log_catch_up(&store, Instant::now()).await;
    let before = admin_event_count(&admin).await?;
    let batches_before = batch_sizes(&admin).await;
    let cpu_before = roots.sample();
    let throughput_run = ingest::throughput(&nats, &throughput, args.window).await?;
    let throughput_cpu = roots.sample() - cpu_before;
    let throughput_batches = match (batches_before, batch_sizes(&admin).await) {
        (Some((s0, c0)), Some((s1, c1))) if c1 > c0 => Some((c1 - c0, (s1 - s0) / (c1 - c0))),
        _ => None,
    };
    let log_caught_up = log_catch_up(&store, Instant::now()).await;
    let grew = admin_event_count(&admin).await? - before;
    check_run(
        "throughput run",
        &throughput_run,
        throughput_n * STEPS,
        grew,
        &mut problems,
    );
    step(&format!(
        "{:.0} events/s",
        throughput_run.events_per_second()
    ));

    step(&format!(
        "latency run: {} commands at {} /s",
        latency_n * STEPS,
        args.rate
    ));
    let before = admin_event_count(&admin).await?;
    let settle = Duration::from_secs_f64(args.settle_seconds);
    let latency_run = ingest::latency(&nats, &latency, args.rate, 250, settle).await?;
    let grew = admin_event_count(&admin).await? - before;
    check_run(
        "latency run",
        &latency_run,
        latency_n * STEPS,
        grew,
        &mut problems,
    );
    step(&format!(
        "p50 {:?}, p99 {:?} (p99 while settling {:?})",
        latency_run.percentile(50.0),
        latency_run.percentile(99.0),
        ingest::percentile(&latency_run.settling, 99.0)
    ));

    let peak_memory = procs::status_bytes(pid, "VmHWM");
    let (sample_payload,): (String,) = sqlx::query_as(
        "SELECT payload::text FROM events WHERE aggregate_type = 'Inspection' \
         AND event_type = 'CodeIssued' LIMIT 1",
    )
    .fetch_one(&store)
    .await
    .context("reading a stored event as the COPY sample")?;
    Ok(IngestFigures {
        throughput: throughput_run,
        throughput_cpu,
        throughput_batches,
        latency: latency_run,
        log_caught_up,
        peak_memory,
        sample_payload,
        problems,
    })
}
