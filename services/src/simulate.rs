//! `saoma simulate`: a realistic, deterministic population and lifecycle traffic, rule-breaking
//! included, sent through the public interfaces of a running `saoma serve` (the admin import
//! for the registries, signed commands and the enterprise's code calls for the traffic), or,
//! with `--backfill YEAR`, written through the service's own core straight into the configured
//! store, on a schedule over that year's working days: a year of history in minutes.

mod catalogue;
mod driver;
mod population;
mod schedule;
mod traffic;

use crate::app::App;
use crate::client::Client;
use crate::config::{Secret, Settings};
use crate::nats::NatsClient;
use anyhow::{bail, Context as _};
use chrono::{DateTime, Datelike as _, Utc};
use driver::{Clock, Target};
use population::Population;
use saoma_domain::inspection::shanghai_date;
use schedule::Schedule;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use traffic::Traffic;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Number of inspections (codes) to drive.
    #[arg(long, default_value_t = 100)]
    pub inspections: usize,
    /// Seed: the same seed gives the same population and commands (all but the times); a
    /// second run with the same seed and size finds everything already recorded.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Base URL of a running `saoma serve` (default: `http://{http_addr}` of the settings).
    #[arg(long)]
    pub url: Option<String>,
    /// Send the officers' signed commands over NATS JetStream to this server (e.g.
    /// `nats://127.0.0.1:4222`); the registry import and the enterprise's calls still go to
    /// `--url`.
    #[arg(long)]
    pub nats: Option<String>,
    /// Share of scenarios that break a rule (0 to 1).
    #[arg(long, default_value_t = 0.2)]
    pub violations: f64,
    /// Scenarios in flight at once; each inspection's steps stay in order.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Admin bearer token (default: the settings' admin token, else
    /// `{data_dir}/keys/admin.token` as `saoma serve` created it).
    #[arg(long, value_parser = parse_secret)]
    pub admin_token: Option<Secret>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the population's registry import files (CSV) into this folder.
    #[arg(long)]
    pub csv_out: Option<PathBuf>,
    /// Write the traffic of this past year straight into the configured store instead, through
    /// the service's own core in this process: every command signed, checked, sealed and
    /// positioned as `saoma serve` records it, but each at its time on a schedule over the
    /// year's working days (Monday to Friday, 08:30 to about 17:00 in Asia/Shanghai). Needs
    /// no running service; on the embedded SQLite store, stop `saoma serve` first. Backfill
    /// several years one after another, oldest first, with the same seed and size: one
    /// population, each year its own plans and traffic.
    #[arg(long, value_name = "YEAR", conflicts_with_all = ["url", "nats"])]
    pub backfill: Option<i32>,
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s))
}

/// Data rows per import request, so that large populations stay within the request limits.
const IMPORT_ROWS: usize = 1000;

#[derive(Debug, Serialize)]
struct PopulationSummary {
    agencies: usize,
    officers: usize,
    enterprises: usize,
    items: usize,
    plans: usize,
}

#[derive(Debug, Default, Serialize)]
struct ImportSummary {
    requests: usize,
    commands: usize,
    changed: usize,
    unchanged: usize,
    events: usize,
    /// Device keys registered by an earlier run (re-registering a key is refused).
    keys_already_registered: usize,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct Summary {
    /// The service driven, or `in-process` for a backfill.
    url: String,
    /// The year written by `--backfill`.
    #[serde(skip_serializing_if = "Option::is_none")]
    backfill: Option<i32>,
    /// Where the officers' commands went, when over NATS.
    #[serde(skip_serializing_if = "Option::is_none")]
    nats: Option<String>,
    seed: u64,
    population: PopulationSummary,
    import: ImportSummary,
    inspections_attempted: usize,
    by_kind: BTreeMap<&'static str, usize>,
    violations_simulated: BTreeMap<&'static str, usize>,
    codes_issued: usize,
    already_recorded: usize,
    commands_sent: usize,
    officer_commands: usize,
    enterprise_calls: usize,
    accepted: usize,
    refused_as_intended: BTreeMap<String, usize>,
    unexpected_refusals: BTreeMap<String, usize>,
    unexpected_examples: Vec<String>,
    events_committed: usize,
    elapsed_seconds: f64,
    commands_per_second: f64,
    events_per_second: f64,
}

pub async fn run(args: SimulateArgs, settings: &Settings) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.violations) {
        bail!(
            "--violations must be between 0 and 1, not {}",
            args.violations
        );
    }
    let this_year = shanghai_date(Utc::now()).year();
    if let Some(year) = args.backfill {
        if !(2000..this_year).contains(&year) {
            bail!(
                "--backfill takes a past year from 2000 to {}, not {year}",
                this_year - 1
            );
        }
    }
    let year = args.backfill.unwrap_or(this_year);
    let population = Population::generate(args.seed, args.inspections, year);
    // Backfills of several years with one seed: one population, each year its own traffic.
    let traffic_seed = match args.backfill {
        Some(year) => args.seed ^ (u64::from(year.unsigned_abs()) << 32),
        None => args.seed,
    };
    let traffic = Traffic::generate(&population, traffic_seed, args.inspections, args.violations);
    let files = population.import_files(IMPORT_ROWS);
    if let Some(dir) = &args.csv_out {
        write_csv(dir, &population)?;
    }
    let devices = population.officers.iter().map(|o| o.device()).collect();
    let mut by_kind = BTreeMap::new();
    for i in traffic.inspections() {
        *by_kind.entry(i.kind).or_default() += 1;
    }
    let mut violations_simulated = BTreeMap::new();
    for v in traffic.scenarios.iter().filter_map(|s| s.violation) {
        *violations_simulated.entry(v.label()).or_default() += 1;
    }

    let (url, target, clock, import) = match args.backfill {
        Some(year) => {
            let app = Arc::new(crate::serve::open_app(settings).await?);
            let schedule = Schedule::new(year, traffic.scenarios.len());
            let import = import_in_process(&app, &files, schedule.registered_at()).await?;
            driver::position_all(app.store()).await?;
            let url = format!("in-process ({} store)", app.store().backend_name());
            (
                url,
                Target::InProcess(app),
                Clock::Schedule(schedule),
                import,
            )
        }
        None => {
            let url = args
                .url
                .clone()
                .unwrap_or_else(|| format!("http://{}", settings.http_addr));
            let url = url.trim_end_matches('/').to_string();
            let admin = Client::new(&url, Some(admin_token(&args, settings)?));
            let client = Client::new(&url, None);
            match client.get("/healthz").await {
                Ok(r) if r.ok() => {}
                Ok(r) => bail!(
                    "saoma serve at {url} is not healthy: HTTP {} {}",
                    r.status,
                    r.body
                ),
                Err(e) => bail!("cannot reach saoma serve at {url}: {e:#}"),
            }
            let import = import(&admin, &files).await?;
            let offset = clock_offset(&admin, &population).await?;
            let nats = match &args.nats {
                Some(nats_url) => Some(
                    NatsClient::connect(nats_url)
                        .await
                        .with_context(|| format!("connecting to NATS at {nats_url}"))?,
                ),
                None => None,
            };
            (
                url,
                Target::Service { client, nats },
                Clock::Wall(offset),
                import,
            )
        }
    };

    let started = Instant::now();
    let driver = Arc::new(driver::Driver::new(
        target,
        devices,
        clock,
        traffic.scenarios,
    ));
    let tally = driver
        .run(args.concurrency)
        .await
        .context("the traffic stopped")?;
    let elapsed = started.elapsed().as_secs_f64();

    let sent = tally.officer_commands + tally.enterprise_calls;
    let summary = Summary {
        url,
        backfill: args.backfill,
        nats: args.nats.clone(),
        seed: args.seed,
        population: PopulationSummary {
            agencies: population.agencies.len(),
            officers: population.officers.len(),
            enterprises: population.enterprises.len(),
            items: population.items.len(),
            plans: population.plans.len(),
        },
        import,
        inspections_attempted: tally.inspections,
        by_kind,
        violations_simulated,
        codes_issued: tally.codes_issued,
        already_recorded: tally.already_recorded,
        commands_sent: sent,
        officer_commands: tally.officer_commands,
        enterprise_calls: tally.enterprise_calls,
        accepted: tally.accepted,
        refused_as_intended: tally.refused_as_intended,
        unexpected_refusals: tally.unexpected,
        unexpected_examples: tally.examples,
        events_committed: tally.events,
        elapsed_seconds: round(elapsed),
        commands_per_second: round(sent as f64 / elapsed.max(1e-9)),
        events_per_second: round(tally.events as f64 / elapsed.max(1e-9)),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    let unexpected: usize = summary.unexpected_refusals.values().sum();
    if unexpected > 0 {
        bail!("{unexpected} answers were not the ones the simulation intended (see unexpected refusals above)");
    }
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `--admin-token`, else the configured token (`SAOMA_ADMIN_TOKEN`), else the file `saoma
/// serve` wrote into the data dir.
fn admin_token(args: &SimulateArgs, settings: &Settings) -> anyhow::Result<String> {
    if let Some(t) = args.admin_token.as_ref().or(settings.admin_token.as_ref()) {
        return Ok(t.expose().to_string());
    }
    let path = settings.data_dir.join("keys").join("admin.token");
    let token = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the admin token from {} (run simulate in the folder of `saoma serve`, or pass --admin-token)",
            path.display()
        )
    })?;
    Ok(token.trim().to_string())
}

async fn import(
    admin: &Client,
    files: &[(&'static str, Vec<String>)],
) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let mut summary = ImportSummary::default();
    for (kind, bodies) in files {
        for body in bodies {
            let reply = admin
                .import_csv(kind, body.clone())
                .await
                .with_context(|| format!("importing {kind}"))?;
            if reply.status == 401 {
                bail!("the service refused the admin token (HTTP 401); pass the right one with --admin-token");
            }
            if !reply.ok() {
                bail!(
                    "importing {kind} was refused: HTTP {} {}",
                    reply.status,
                    reply.body
                );
            }
            let count = |k: &str| {
                reply
                    .body
                    .get(k)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0) as usize
            };
            summary.requests += 1;
            summary.commands += count("commands");
            summary.changed += count("changed");
            summary.unchanged += count("unchanged");
            summary.events += count("events");
            for refusal in reply
                .body
                .get("refused")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
            {
                match refusal.get("code").and_then(serde_json::Value::as_str) {
                    Some("key_already_registered") => summary.keys_already_registered += 1,
                    _ => bail!("importing {kind}: a row was refused: {refusal}"),
                }
            }
        }
    }
    summary.seconds = round(started.elapsed().as_secs_f64());
    Ok(summary)
}

/// The same import through the service's core in this process, every registration at `at`.
async fn import_in_process(
    app: &App,
    files: &[(&'static str, Vec<String>)],
    at: DateTime<Utc>,
) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    let mut summary = ImportSummary::default();
    for (kind, bodies) in files {
        for body in bodies {
            let commands = crate::import::parse(
                kind.parse().map_err(anyhow::Error::msg)?,
                body.as_bytes(),
                false,
            )
            .map_err(|errors| anyhow::anyhow!("the generated {kind} do not parse: {errors:?}"))?;
            summary.requests += 1;
            summary.commands += commands.len();
            for command in commands {
                match app.register(command, "saoma simulate", at).await {
                    Ok(events) if events.is_empty() => summary.unchanged += 1,
                    Ok(events) => {
                        summary.changed += 1;
                        summary.events += events.len();
                    }
                    Err(refusal) if refusal.code() == "key_already_registered" => {
                        summary.keys_already_registered += 1;
                    }
                    Err(refusal) => bail!("importing {kind}: a row was refused: {refusal}"),
                }
            }
        }
    }
    summary.seconds = round(started.elapsed().as_secs_f64());
    Ok(summary)
}

/// What to add to the local clock so that device times are never earlier than the device keys'
/// registration, which the service records by its own clock: zero when the clocks agree.
async fn clock_offset(admin: &Client, population: &Population) -> anyhow::Result<chrono::Duration> {
    // The last officer was registered by the last import request, so last of all.
    let Some(officer) = population.officers.iter().rev().find(|o| {
        matches!(
            o.profile.credential,
            saoma_domain::ids::OfficerRef::Certificate(_)
        )
    }) else {
        return Ok(chrono::Duration::zero());
    };
    let key = officer.profile.credential.key();
    let reply = admin
        .get(&format!("/api/v1/admin/registry/officers/{key}"))
        .await?;
    if !reply.ok() {
        bail!(
            "officer {key} is not registered after the import: HTTP {} {}",
            reply.status,
            reply.body
        );
    }
    let key_id = officer.device().public_key().key_id();
    let registered_at = reply
        .body
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .find(|k| k.get("key_id").and_then(serde_json::Value::as_str) == Some(key_id.0.as_str()))
        .and_then(|k| k.get("registered_at"))
        .and_then(|t| serde_json::from_value::<chrono::DateTime<Utc>>(t.clone()).ok())
        .with_context(|| format!("the device key of officer {key} is not registered"))?;
    let behind = registered_at - Utc::now() + chrono::Duration::milliseconds(10);
    Ok(behind.max(chrono::Duration::zero()))
}

fn write_csv(dir: &std::path::Path, population: &Population) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (kind, bodies) in population.import_files(usize::MAX) {
        let path = dir.join(format!("{kind}.csv"));
        std::fs::write(&path, bodies.concat())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn list(map: &BTreeMap<impl std::fmt::Display, usize>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_summary(s: &Summary) {
    let p = &s.population;
    let i = &s.import;
    println!("saoma simulate: seed {} against {}", s.seed, s.url);
    if let Some(year) = s.backfill {
        println!("backfilled: the working days of {year}, on a schedule");
    }
    if let Some(nats) = &s.nats {
        println!("officer commands sent over NATS JetStream at {nats}");
    }
    println!(
        "population: {} agencies, {} officers, {} enterprises, {} items, {} plans",
        p.agencies, p.officers, p.enterprises, p.items, p.plans
    );
    println!(
        "registry import: {} commands in {} requests, {} changed ({} events), {} unchanged, {} keys already registered, {:.2} s",
        i.commands, i.requests, i.changed, i.events, i.unchanged, i.keys_already_registered, i.seconds
    );
    println!(
        "inspections attempted: {} ({})",
        s.inspections_attempted,
        list(&s.by_kind)
    );
    println!("violations simulated: {}", list(&s.violations_simulated));
    println!(
        "codes issued: {}, already recorded by an earlier run: {}",
        s.codes_issued, s.already_recorded
    );
    println!(
        "commands sent: {} ({} signed officer commands, {} enterprise calls)",
        s.commands_sent, s.officer_commands, s.enterprise_calls
    );
    println!("accepted: {}", s.accepted);
    let intended: usize = s.refused_as_intended.values().sum();
    println!(
        "refused as intended: {intended} ({})",
        list(&s.refused_as_intended)
    );
    let unexpected: usize = s.unexpected_refusals.values().sum();
    println!(
        "unexpected refusals: {unexpected} ({})",
        list(&s.unexpected_refusals)
    );
    for e in &s.unexpected_examples {
        println!("  {e}");
    }
    println!("events committed: {}", s.events_committed);
    println!(
        "elapsed: {:.2} s, {:.1} commands/s, {:.1} events/s",
        s.elapsed_seconds, s.commands_per_second, s.events_per_second
    );
}

#[cfg(test)]
mod tests {
    use super::population::{enterprise_count, Population};
    use super::traffic::{Action, Expect, Traffic, Violation};
    use chrono::Datelike as _;
    use saoma_domain::ids::CreditCode;
    use saoma_domain::inspection::{InspectionKind, OfficerCommand};
    use saoma_domain::registry::EnterpriseStatus;
    use std::collections::{HashMap, HashSet};

    fn csv(p: &Population) -> Vec<(&'static str, Vec<String>)> {
        p.import_files(usize::MAX)
    }

    #[test]
    fn the_same_seed_gives_the_same_population_and_traffic() {
        let a = Population::generate(7, 300, 2026);
        let b = Population::generate(7, 300, 2026);
        assert_eq!(csv(&a), csv(&b));
        let ta = Traffic::generate(&a, 7, 300, 0.3);
        let tb = Traffic::generate(&b, 7, 300, 0.3);
        assert_eq!(ta.scenarios, tb.scenarios);
    }

    #[test]
    fn a_different_seed_gives_a_different_population() {
        let a = Population::generate(7, 300, 2026);
        let b = Population::generate(8, 300, 2026);
        for ((kind, x), (_, y)) in csv(&a).into_iter().zip(csv(&b)) {
            // The item list is a fixed catalogue; everything else is drawn.
            if kind != "items" {
                assert_ne!(x, y, "{kind}");
            }
        }
    }

    #[test]
    fn the_agencies_do_not_depend_on_the_traffic_size() {
        let a = Population::generate(3, 100, 2026);
        let b = Population::generate(3, 10_000, 2026);
        assert_eq!(csv(&a)[0], csv(&b)[0]);
        assert_eq!(b.enterprises.len(), enterprise_count(10_000));
        assert_eq!(b.enterprises[..50], a.enterprises[..50]);
    }

    #[test]
    fn every_generated_credit_code_parses_and_is_unique() {
        let p = Population::generate(11, 2_000, 2026);
        let mut seen = HashSet::new();
        for e in &p.enterprises {
            assert_eq!(
                CreditCode::parse(e.credit_code.as_str()).as_ref(),
                Ok(&e.credit_code)
            );
            assert!(e.credit_code.as_str().starts_with("91"));
            assert_eq!(e.credit_code.region(), e.region.as_str());
            assert!(seen.insert(e.credit_code.clone()));
        }
        for a in &p.agencies {
            assert!(
                CreditCode::parse(a.agency.code.as_str()).is_ok(),
                "{}",
                a.agency.code
            );
            assert!(seen.insert(CreditCode::parse(a.agency.code.as_str()).unwrap()));
        }
    }

    #[test]
    fn the_import_files_parse_as_the_service_reads_them() {
        let p = Population::generate(5, 400, 2026);
        for (kind, bodies) in p.import_files(100) {
            for body in bodies {
                let kind = kind.parse().unwrap();
                let commands = crate::import::parse(kind, body.as_bytes(), false)
                    .unwrap_or_else(|e| panic!("{kind:?}: {e:?}"));
                assert!(!commands.is_empty());
            }
        }
    }

    #[test]
    fn every_agency_has_officers_items_and_enterprises_and_names_look_real() {
        let p = Population::generate(9, 200, 2026);
        assert!(p.agencies.len() > 40);
        for a in &p.agencies {
            assert!((2..=6).contains(&a.officers.len()), "{}", a.agency.name);
            assert!(!a.items.is_empty(), "{}", a.agency.name);
            assert!(!a.enterprises.is_empty(), "{}", a.agency.name);
        }
        let names: Vec<&str> = p.agencies.iter().map(|a| a.agency.name.as_str()).collect();
        assert!(names.contains(&"株洲市市场监督管理局"), "{names:?}");
        assert!(names.contains(&"株洲市荷塘区应急管理局"), "{names:?}");
        assert!(p
            .officers
            .iter()
            .any(|o| o.profile.credential.key().starts_with('警')));
        assert!(p.enterprises.iter().all(|e| e.name.contains("公司")));
    }

    #[test]
    fn every_planned_inspection_is_covered_by_its_plan_and_only_the_intended_ones_exceed_it() {
        let p = Population::generate(7, 1_000, 2026);
        let t = Traffic::generate(&p, 7, 1_000, 0.5);
        assert_eq!(t.inspections().count(), 1_000);
        let plans: HashMap<_, _> = p.plans.iter().map(|plan| (plan.id.clone(), plan)).collect();
        let mut used: HashMap<_, u32> = HashMap::new();
        let mut exceeded = 0;
        // Scenarios run concurrently, but the visits of one plan and enterprise that exceed it
        // are all in one scenario, after the allowed ones.
        for i in t.inspections() {
            let issue = i.issue();
            let InspectionKind::Planned { plan } = &issue.kind else {
                continue;
            };
            let plan = plans[plan];
            assert!(
                plan.covers(&issue.agency, &issue.enterprise, &issue.items),
                "{issue:?}"
            );
            assert_eq!(plan.year, 2026);
            let n = used
                .entry((plan.id.clone(), issue.enterprise.clone()))
                .or_default();
            match &i.steps[0].expect {
                Expect::Accepted => {
                    *n += 1;
                    assert!(*n <= plan.allowed_visits, "{issue:?}");
                }
                Expect::Refused(code) => {
                    assert_eq!(*code, "plan_frequency_exceeded");
                    assert_eq!(*n, plan.allowed_visits);
                    exceeded += 1;
                }
            }
        }
        assert!(exceeded > 0);
    }

    #[test]
    fn issued_codes_name_registered_active_parties_and_the_issuer_first() {
        let p = Population::generate(4, 600, 2026);
        let t = Traffic::generate(&p, 4, 600, 0.4);
        for i in t.inspections() {
            let issue = i.issue();
            let agency = p.agency_index(&issue.agency).expect("a simulated agency");
            let enterprise = p
                .enterprises
                .iter()
                .find(|e| e.credit_code == issue.enterprise)
                .unwrap();
            assert_eq!(enterprise.status, EnterpriseStatus::Active);
            assert!(!issue.officers.is_empty() && !issue.items.is_empty());
            let Action::Officer { officer, .. } = &i.steps[0].action else {
                panic!("issued by an officer")
            };
            assert_eq!(
                p.officers[*officer].profile.agency,
                p.agencies[agency].agency.code
            );
            assert_eq!(p.officers[*officer].profile.credential, issue.officers[0]);
            let keys: HashSet<_> = issue.officers.iter().map(|o| o.key()).collect();
            assert_eq!(keys.len(), issue.officers.len());
            // Officer steps are signed by officers on the code, except the intended interloper.
            for step in &i.steps {
                if let Action::Officer {
                    officer, command, ..
                } = &step.action
                {
                    let listed = keys.contains(&p.officers[*officer].profile.credential.key());
                    assert!(
                        listed || step.expect == Expect::Refused("not_assigned"),
                        "{command:?}"
                    );
                    assert_eq!(command.inspection_id(), i.inspection_id);
                    if let OfficerCommand::ScanEnterpriseCode { enterprise, .. } = command.as_ref()
                    {
                        assert!(
                            enterprise == &issue.enterprise
                                || step.expect == Expect::Refused("wrong_enterprise")
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_kind_of_rule_breaking_occurs_in_a_large_traffic() {
        let p = Population::generate(2, 3_000, 2026);
        let t = Traffic::generate(&p, 2, 3_000, 0.5);
        let seen: HashSet<Violation> = t.scenarios.iter().filter_map(|s| s.violation).collect();
        for v in Violation::ALL {
            assert!(seen.contains(&v), "{v:?}");
        }
        let kinds: HashSet<&str> = t.inspections().map(|i| i.kind).collect();
        assert_eq!(kinds.len(), 4, "{kinds:?}");
        let ids: HashSet<_> = t.inspections().map(|i| i.inspection_id).collect();
        assert_eq!(ids.len(), 3_000);
    }

    #[tokio::test]
    async fn a_backfill_of_this_year_or_a_future_one_is_refused_before_anything_is_written() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: super::SimulateArgs,
        }
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Settings {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let this_year = saoma_domain::inspection::shanghai_date(chrono::Utc::now()).year();
        for year in [this_year, this_year + 1, 1999] {
            let year = year.to_string();
            let cli = Cli::try_parse_from(["simulate", "--backfill", &year]).unwrap();
            let e = super::run(cli.args, &settings).await.unwrap_err();
            assert!(e.to_string().contains("past year"), "{e}");
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing written"
        );
        assert!(
            Cli::try_parse_from(["simulate", "--backfill", "2025", "--url", "http://x"]).is_err()
        );
    }

    #[test]
    fn no_violations_means_no_intended_refusals_but_retries() {
        let p = Population::generate(6, 500, 2026);
        let t = Traffic::generate(&p, 6, 500, 0.0);
        for i in t.inspections() {
            for s in &i.steps {
                assert!(
                    matches!(
                        s.expect,
                        Expect::Accepted | Expect::Refused("duplicate_command")
                    ),
                    "{s:?}"
                );
            }
        }
    }
}
