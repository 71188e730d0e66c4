//! The projections end to end: a simulated log (rule-breaking included) followed by the live
//! views, stopped and resumed in the middle, equals a replay of the same log; two replays write
//! byte-identical reports; the read API answers from the views and refuses bad queries.

use crate::support::{spawn_app, spawn_app_with, Backend, TestApp, ADMIN_TOKEN};
use chrono::{DateTime, Datelike as _, Duration, Utc};
use clap::Parser as _;
use futures_util::TryStreamExt as _;
use saoma_domain::inspection::shanghai_date;
use saoma_projections::rules::RuleBook;
use saoma_projections::satisfaction::Satisfaction;
use saoma_services::config::Settings;
use saoma_services::replay::{replay_store, write_reports, ReplayArgs, Replayed};
use saoma_services::store::{HistoryFilter, Store, StoredWarning, WarningFilter};
use saoma_services::views::{stored_warning, LiveViews};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration as StdDuration;

#[derive(clap::Parser)]
struct Sim {
    #[command(flatten)]
    args: saoma_services::simulate::SimulateArgs,
}

/// Drives `inspections` simulated inspections through the app's public interfaces.
pub(crate) async fn simulate(app: &TestApp, inspections: usize, seed: u64) {
    let sim = Sim::try_parse_from([
        "simulate",
        "--inspections",
        &inspections.to_string(),
        "--seed",
        &seed.to_string(),
        "--url",
        &app.base,
        "--admin-token",
        ADMIN_TOKEN,
        "--violations",
        "0.3",
    ])
    .expect("simulator arguments");
    let settings = app.settings.clone().expect("settings of an in-process app");
    saoma_services::simulate::run(sim.args, &settings)
        .await
        .expect("the simulation runs");
}

/// Writes `inspections` simulated inspections over the working days of `year` straight into
/// the store of `settings` (`saoma simulate --backfill`).
pub(crate) async fn backfill(settings: &Settings, inspections: usize, year: i32) {
    let sim = Sim::try_parse_from([
        "simulate",
        "--inspections",
        &inspections.to_string(),
        "--seed",
        "5",
        "--violations",
        "0.3",
        "--backfill",
        &year.to_string(),
    ])
    .expect("simulator arguments");
    saoma_services::simulate::run(sim.args, settings)
        .await
        .expect("the backfill runs, every answer the intended one");
}

async fn open(settings: &Settings) -> Store {
    saoma_services::serve::open_store(settings)
        .await
        .expect("store")
}

async fn position_everything(store: &Store) {
    while store.assign_positions(10_000).await.expect("sequencer") > 0 {}
    assert_eq!(store.unpositioned().await.unwrap(), 0);
}

fn book() -> RuleBook {
    saoma_services::rules::load(&Settings::default()).expect("the shipped rule book")
}

async fn all_history(store: &Store) -> Vec<(u64, saoma_projections::history::HistoryRow)> {
    let mut rows = Vec::new();
    let mut offset = 0;
    loop {
        let page = store
            .history(&HistoryFilter::default(), offset, 500)
            .await
            .unwrap();
        rows.extend(page.items.into_iter().map(|r| (r.issued_position, r.row)));
        match page.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    rows.sort_by_key(|r| r.0);
    rows
}

/// Warnings keyed by id, without the detection position (which depends on when the live
/// views happened to look, not on the log).
async fn all_warnings(store: &Store) -> BTreeMap<String, StoredWarning> {
    let mut out = BTreeMap::new();
    let mut offset = 0;
    loop {
        let page = store
            .warnings(&WarningFilter::default(), offset, 500)
            .await
            .unwrap();
        for mut w in page.items {
            w.position = 0;
            assert!(
                out.insert(w.id.clone(), w).is_none(),
                "a warning stored twice"
            );
        }
        match page.next_offset {
            Some(next) => offset = next,
            None => break,
        }
    }
    out
}

/// The replay's history rows, by issued position.
async fn replayed_history(
    replayed: &Replayed,
) -> Vec<(u64, saoma_projections::history::HistoryRow)> {
    replayed
        .scratch
        .visits()
        .map_ok(|(position, v)| (position, v.history_row()))
        .try_collect()
        .await
        .unwrap()
}

/// The replay's warnings as the live views store them, keyed by id, without the detection
/// position (see [`all_warnings`]).
async fn replayed_warnings(replayed: &Replayed) -> BTreeMap<String, StoredWarning> {
    let warnings: Vec<_> = replayed.scratch.warnings().try_collect().await.unwrap();
    warnings
        .iter()
        .map(|w| {
            let mut s = stored_warning(w, 0);
            s.position = 0;
            (s.id.clone(), s)
        })
        .collect()
}

fn digest_dir(dir: &std::path::Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        out.insert(
            path.file_name().unwrap().to_string_lossy().into_owned(),
            hex::encode(Sha256::digest(&bytes)),
        );
    }
    out
}

/// Live views, stopped after part of the log and resumed from their stored cursor, equal a
/// replay of the whole log; two replays give byte-identical reports.
pub async fn live_views_resumed_in_the_middle_equal_a_replay(backend: Backend) {
    let app = spawn_app(backend).await;
    simulate(&app, 1_500, 7).await;
    let settings = app.settings.clone().unwrap();
    let store = open(&settings).await;
    position_everything(&store).await;
    let total = store.max_position().await.unwrap();
    assert!(total > 5_000, "only {total} events in the simulated log");
    // Far enough ahead that every time-based rule has had its deadline.
    let as_of: DateTime<Utc> = Utc::now() + Duration::days(40);

    let mut live = LiveViews::open(store.clone(), book(), StdDuration::ZERO)
        .await
        .unwrap();
    while live.position() < total / 2 {
        live.step().await.unwrap();
    }
    let stopped_at = live.position();
    live.close().await;
    let mut live = LiveViews::open(store.clone(), book(), StdDuration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        live.position(),
        stopped_at,
        "resumed from the stored cursor"
    );
    while live.step().await.unwrap() > 0 {}
    assert_eq!(live.position(), total);
    live.tick(as_of).await.unwrap();
    assert_eq!(
        live.held(),
        0,
        "every visit's deadlines are past: all let go"
    );

    // Feedback on an inspection after the live views' clock has passed all its deadlines (its
    // visit let go): the views refold it from its stream before applying the feedback.
    let (_, first) = all_history(&store).await.swap_remove(0);
    let id: uuid::Uuid = first.inspection_id.parse().unwrap();
    let secret = saoma_services::keys::load_or_create_secret(
        &saoma_services::serve::keys_dir(&settings).join("token.key"),
        false,
    )
    .unwrap();
    let token = saoma_services::token::TokenKey::new(secret).token_for(&id);
    let sent = app
        .public
        .post_json(
            &format!("/api/v1/codes/{token}/feedback"),
            &serde_json::json!({"text": "检查结束后补充意见"}),
        )
        .await
        .unwrap();
    assert!(sent.status < 300, "{:?}", sent.body);
    position_everything(&store).await;
    let total = store.max_position().await.unwrap();
    while live.step().await.unwrap() > 0 {}
    assert_eq!(live.position(), total);
    let (_, again) = all_history(&store)
        .await
        .into_iter()
        .find(|(_, r)| r.inspection_id == first.inspection_id)
        .unwrap();
    assert_eq!(again.feedback_count, first.feedback_count + 1);
    assert_eq!(again.events, first.events + 1);
    assert_eq!(
        (again.status.as_str(), again.date.as_str()),
        (first.status.as_str(), first.date.as_str()),
        "the refolded visit kept what it had"
    );

    let replayed = replay_store(&settings, Some(as_of), true, false)
        .await
        .unwrap();
    assert_eq!(replayed.checked.events, total);
    assert!(replayed.checked.officer_signatures > 1_000);

    let live_rows = all_history(&store).await;
    let replay_rows = replayed_history(&replayed).await;
    assert_eq!(live_rows.len(), replay_rows.len());
    assert!(
        live_rows == replay_rows,
        "live history differs from the replay"
    );
    let rated = live_rows.iter().filter(|r| r.1.rating.is_some()).count();
    assert!(rated > 100, "only {rated} rated inspections");

    // Year over year from the live views' counts: what the replay computes from its visits.
    let mut satisfaction = Satisfaction::default();
    let visits: Vec<_> = replayed.scratch.visits().try_collect().await.unwrap();
    for (_, v) in &visits {
        satisfaction.add(v);
    }
    let live = store.frequency(None, None, None).await.unwrap();
    assert!(!live.enterprise_years().is_empty());
    assert_eq!(live.enterprise_years(), satisfaction.enterprise_years());
    assert_eq!(live.years(), satisfaction.years());

    let live_warnings = all_warnings(&store).await;
    let replay_warnings = replayed_warnings(&replayed).await;
    assert!(
        live_warnings.len() > 20,
        "only {} warnings from a log with violations",
        live_warnings.len()
    );
    assert_eq!(
        live_warnings.keys().collect::<Vec<_>>(),
        replay_warnings.keys().collect::<Vec<_>>()
    );
    assert!(live_warnings == replay_warnings);

    // Two replays into two folders: the same bytes.
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [&a, &b] {
        let args = ReplayArgs {
            out: dir.path().to_path_buf(),
            as_of: Some(as_of),
            no_signatures: false,
            stats: false,
            bundle: None,
            notary_key: None,
        };
        saoma_services::replay::run(&settings, &args).await.unwrap();
    }
    let (da, db) = (digest_dir(a.path()), digest_dir(b.path()));
    // The same log replayed from an export bundle instead of the store: the same bytes.
    let bundle = tempfile::tempdir().unwrap();
    saoma_services::audit::run_export(
        &settings,
        &saoma_services::audit::ExportArgs {
            out: bundle.path().to_path_buf(),
            filter: Default::default(),
        },
    )
    .await
    .unwrap();
    let from_bundle = tempfile::tempdir().unwrap();
    let args = ReplayArgs {
        out: from_bundle.path().to_path_buf(),
        as_of: Some(as_of),
        no_signatures: false,
        stats: false,
        bundle: Some(bundle.path().to_path_buf()),
        notary_key: None,
    };
    saoma_services::replay::run(&settings, &args).await.unwrap();
    assert_eq!(
        digest_dir(from_bundle.path()),
        da,
        "a replay of the bundle differs from the store's"
    );
    assert_eq!(
        da.keys().collect::<Vec<_>>(),
        [
            "frequency.csv",
            "history.csv",
            "report.html",
            "satisfaction.csv",
            "summary.json",
            "warnings.csv"
        ]
    );
    assert_eq!(da, db, "two replays of one log differ");
    let history = std::fs::read_to_string(a.path().join("history.csv")).unwrap();
    assert_eq!(
        history.lines().count(),
        replay_rows.len() + 1,
        "a header and one row per inspection"
    );
    let report = std::fs::read_to_string(a.path().join("report.html")).unwrap();
    assert!(
        report.contains("<svg") && report.contains("满意率"),
        "report has its charts"
    );
    assert!(!report.contains("<script") && !report.contains("https://"));

    // Without signature checks the same views come out.
    let fast = replay_store(&settings, Some(as_of), false, false)
        .await
        .unwrap();
    let c = tempfile::tempdir().unwrap();
    write_reports(&fast, false, c.path()).await.unwrap();
    let dc = digest_dir(c.path());
    for file in [
        "history.csv",
        "warnings.csv",
        "satisfaction.csv",
        "frequency.csv",
    ] {
        assert_eq!(
            dc[file], da[file],
            "{file} differs without signature checks"
        );
    }

    // One byte of one stored event changed behind the service's back: the replay refuses
    // the log and names the position.
    let position = total / 3;
    tamper(&settings, position).await;
    let e = refusal(&settings, as_of, false).await;
    assert!(
        e.contains(&format!("position {position} ")) && e.contains("hash"),
        "{e}"
    );
}

/// Flips `"late":false` to `"late":true` in the stored event at `position`, as someone with
/// write access to the database could.
/// Why the replay of a tampered log (with or without signature checks) refused it.
async fn refusal(settings: &Settings, as_of: DateTime<Utc>, signatures: bool) -> String {
    let e = replay_store(settings, Some(as_of), signatures, false)
        .await
        .err()
        .expect("a tampered log does not replay");
    format!("{e:#}")
}

pub(crate) async fn tamper(settings: &Settings, position: u64) {
    update_events(
        settings,
        "UPDATE events SET payload = replace(payload::text, '\"late\":false', '\"late\":true')::json \
         WHERE position = $1",
        "UPDATE events SET payload = replace(payload, '\"late\":false', '\"late\":true') \
         WHERE position = $1",
        &[position],
    )
    .await;
}

/// Replaces the notary signature at position `to` with the one at `from`.
async fn copy_notary_signature(settings: &Settings, from: u64, to: u64) {
    update_events(
        settings,
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{notary}', \
         (SELECT payload::jsonb -> 'notary' FROM events WHERE position = $1))::json \
         WHERE position = $2",
        "UPDATE events SET payload = json_set(payload, '$.notary', \
         json((SELECT json_extract(payload, '$.notary') FROM events WHERE position = $1))) \
         WHERE position = $2",
        &[from, to],
    )
    .await;
}

/// Changes one stored event behind the service's back, with the statement for the store's
/// database, the positions bound in order.
async fn update_events(settings: &Settings, postgres: &str, sqlite: &str, positions: &[u64]) {
    let positions = positions.iter().map(|p| i64::try_from(*p).unwrap());
    let changed = match &settings.database_url {
        Some(url) => {
            let pool = sqlx::PgPool::connect(url.expose()).await.unwrap();
            let mut q = sqlx::query(postgres);
            for p in positions {
                q = q.bind(p);
            }
            q.execute(&pool).await.unwrap().rows_affected()
        }
        None => {
            let path = settings.data_dir.join("saoma.db");
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            let mut q = sqlx::query(sqlite);
            for p in positions {
                q = q.bind(p);
            }
            q.execute(&pool).await.unwrap().rows_affected()
        }
    };
    assert_eq!(changed, 1);
}

/// Two years written on a schedule (`simulate --backfill`, one year after the other) are
/// replayed and followed by the live views holding only the recent visits in memory as their
/// clock moves through the years, and both still agree.
pub async fn backfilled_years_are_followed_holding_only_the_recent_visits(backend: Backend) {
    const INSPECTIONS: usize = 2_000;
    let app = spawn_app(backend).await;
    let settings = app.settings.clone().unwrap();
    let last = shanghai_date(Utc::now()).year() - 1;
    let years = [last - 1, last];
    for year in years {
        backfill(&settings, INSPECTIONS, year).await;
    }
    let store = open(&settings).await;
    assert_eq!(
        store.unpositioned().await.unwrap(),
        0,
        "the backfill positions its events"
    );
    let total = store.max_position().await.unwrap();
    assert!(total > 16_000, "only {total} events backfilled");
    let as_of = Utc::now();

    let replayed = replay_store(&settings, Some(as_of), true, false)
        .await
        .unwrap();
    assert_eq!(replayed.checked.events, total);
    // About 8 visits a working day, each held from its code until its result is due (15
    // working days at most) and a week more: a few hundred at once, not all of a year's.
    assert!(
        replayed.peak_visits_held < INSPECTIONS as u64 / 4,
        "the replay held {} visits at once",
        replayed.peak_visits_held
    );
    assert_eq!(replayed.visits_restored, 0, "the log follows the days");
    let replay_rows = replayed_history(&replayed).await;
    // Less the codes refused as intended (over a plan's frequency, not yet valid…).
    assert!(
        (2 * INSPECTIONS * 9 / 10..=2 * INSPECTIONS).contains(&replay_rows.len()),
        "{} inspections replayed",
        replay_rows.len()
    );
    // Codes dated the day before or after (refused as intended) may leave the years by a day.
    let (first, after) = (
        format!("{}-12-31", years[0] - 1),
        format!("{}-01-01", last + 1),
    );
    assert!(replay_rows
        .iter()
        .all(|(_, r)| (first.as_str()..=after.as_str()).contains(&r.date.as_str())));
    let months: BTreeSet<&str> = replay_rows
        .iter()
        .map(|(_, r)| &r.date[..7])
        .filter(|m| years.iter().any(|y| m.starts_with(&y.to_string())))
        .collect();
    assert_eq!(months.len(), 24, "visits in every month: {months:?}");

    let mut live = LiveViews::open(store.clone(), book(), StdDuration::ZERO)
        .await
        .unwrap();
    let mut peak = 0;
    while live.step().await.unwrap() > 0 {
        peak = peak.max(live.held());
    }
    assert!(
        peak > 0 && peak < INSPECTIONS / 4,
        "the live views held {peak} visits at once"
    );
    live.tick(as_of).await.unwrap();
    assert_eq!(live.held(), 0);
    assert!(
        all_history(&store).await == replay_rows,
        "live history differs from the replay"
    );
    let live_warnings = all_warnings(&store).await;
    let replay_warnings = replayed_warnings(&replayed).await;
    assert!(
        live_warnings.len() > 50,
        "only {} warnings",
        live_warnings.len()
    );
    assert!(
        live_warnings == replay_warnings,
        "live warnings differ from the replay"
    );

    // Two changes behind the service's back, pages apart: a notary signature copied from the
    // next event (the hash still holds), and further on one byte. With every check the first
    // is named, though its signatures are verified after later pages were linked; without
    // signature checks, the second.
    let (signature_at, byte_at) = (total / 4, total / 2);
    copy_notary_signature(&settings, signature_at + 1, signature_at).await;
    tamper(&settings, byte_at).await;
    let e = refusal(&settings, as_of, true).await;
    assert!(
        e.contains(&format!("position {signature_at} ")) && e.contains("signature"),
        "{e}"
    );
    let e = refusal(&settings, as_of, false).await;
    assert!(
        e.contains(&format!("position {byte_at} ")) && e.contains("hash"),
        "{e}"
    );
}

/// The views follow a running service by themselves, and the read API answers from them.
pub async fn the_read_api_answers_from_the_live_views(backend: Backend) {
    let app = spawn_app_with(backend, None).await;
    simulate(&app, 200, 3).await;
    let events = app.event_count().await;
    let status = caught_up(&app, events).await;
    assert!(status["clock"].is_string(), "{status}");

    let page = app.client.get("/api/v1/history?limit=5").await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    let page = page.body;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(page["next_offset"], 5);
    let first = &items[0];
    let name: String = first["enterprise_name"]
        .as_str()
        .unwrap()
        .chars()
        .skip(1)
        .take(3)
        .collect();

    // Fuzzy search by a fragment of the enterprise's name finds it, and every hit matches.
    let found = app
        .client
        .get(&format!("/api/v1/history?limit=500&q={}", urlencode(&name)))
        .await
        .unwrap()
        .body;
    let hits = found["items"].as_array().unwrap();
    assert!(hits
        .iter()
        .any(|h| h["inspection_id"] == first["inspection_id"]));
    assert!(hits.iter().all(|h| {
        let fields = [
            "enterprise_name",
            "officer_names",
            "item_names",
            "enterprise_code",
            "officers",
            "item_codes",
        ];
        fields
            .iter()
            .any(|f| h[*f].as_str().unwrap().contains(&name))
    }));

    // One enterprise's history holds only that enterprise.
    let code = first["enterprise_code"].as_str().unwrap();
    let of_one = app
        .client
        .get(&format!("/api/v1/history?enterprise={code}&limit=500"))
        .await
        .unwrap()
        .body;
    assert!(of_one["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["enterprise_code"] == code));

    // One inspection: its row and its verified trace.
    let id = first["inspection_id"].as_str().unwrap();
    let one = app
        .client
        .get(&format!("/api/v1/history/{id}"))
        .await
        .unwrap();
    assert_eq!(one.status, 200, "{}", one.body);
    let one = one.body;
    assert_eq!(one["trace"]["verified"], true);
    assert_eq!(
        one["trace"]["events"].as_array().unwrap().len() as u64,
        one["events"].as_u64().unwrap()
    );

    let sat = app
        .client
        .get("/api/v1/satisfaction?by=agency")
        .await
        .unwrap();
    assert_eq!(sat.status, 200, "{}", sat.body);
    let groups = sat.body["groups"].as_array().unwrap().clone();
    assert!(!groups.is_empty());
    assert!(groups
        .iter()
        .all(|g| g["ratings"].as_u64() <= g["scanned"].as_u64()));

    // Year over year: this year's headline counts every counted inspection of the history.
    let year = &first["date"].as_str().unwrap()[..4];
    let frequency = app
        .client
        .get(&format!("/api/v1/frequency?year={year}&limit=500"))
        .await
        .unwrap();
    assert_eq!(frequency.status, 200, "{}", frequency.body);
    let counted = app
        .client
        .get(&format!(
            "/api/v1/history?from={year}-01-01&to={year}-12-31&limit=500"
        ))
        .await
        .unwrap()
        .body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| {
            h["kind"] != "非检查类入企" && h["revoked_at"].as_str().unwrap_or("").is_empty()
        })
        .count() as u64;
    let years = frequency.body["years"].as_array().unwrap();
    let this = years
        .iter()
        .find(|y| y["year"].as_i64() == year.parse().ok())
        .unwrap();
    assert_eq!(
        this["inspections"].as_u64(),
        Some(counted),
        "{}",
        frequency.body
    );
    let per_enterprise: u64 = frequency.body["enterprises"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["inspections"].as_u64().unwrap())
        .sum();
    assert_eq!(per_enterprise, counted);

    let warnings = app.client.get("/api/v1/warnings?limit=500").await.unwrap();
    assert_eq!(warnings.status, 200, "{}", warnings.body);

    // Bad queries are refused with the parameter named; nothing else happens.
    for (query, param) in [
        ("/api/v1/history?from=2026-13-01", "from"),
        ("/api/v1/history?limit=0", "limit"),
        ("/api/v1/history?region=abc", "region"),
        ("/api/v1/history?nonsense=1", "query"),
        ("/api/v1/warnings?rule=made_up", "rule"),
        ("/api/v1/satisfaction?by=planet", "by"),
        ("/api/v1/history/not-a-uuid", "inspection_id"),
        ("/api/v1/frequency?year=19", "year"),
        ("/api/v1/frequency?enterprise=a%20b", "enterprise"),
    ] {
        let r = app.client.get(query).await.unwrap();
        assert_eq!(r.status, 422, "{query}: {}", r.body);
        let body = r.body;
        assert_eq!(body["error"]["code"], "invalid_query", "{query}");
        assert!(
            body["error"]["detail"].as_str().unwrap().starts_with(param),
            "{query}: {body}"
        );
    }
    let r = app.public.get("/api/v1/history").await.unwrap();
    assert_eq!(r.status, 401, "the history needs the admin token");

    // Emptied underneath the running service (`saoma rebuild-views`), the views are rebuilt
    // from the log by the running projection, to the same rows.
    let before = app
        .client
        .get("/api/v1/history?limit=500")
        .await
        .unwrap()
        .body;
    let store = open(app.settings.as_ref().unwrap()).await;
    store.reset_views().await.unwrap();
    caught_up(&app, events).await;
    let after = app
        .client
        .get("/api/v1/history?limit=500")
        .await
        .unwrap()
        .body;
    assert!(after == before, "the views were rebuilt to the same rows");
}

/// Waits until the live views account for all `events` stored events; returns their status.
pub(crate) async fn caught_up(app: &TestApp, events: i64) -> serde_json::Value {
    let mut status = serde_json::Value::Null;
    for _ in 0..300 {
        status = app.client.get("/api/v1/views/status").await.unwrap().body;
        if status["position"].as_i64() == Some(events) {
            return status;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    panic!("the views did not catch up with {events} events: {status}");
}

/// On PostgreSQL one process keeps the views at a time; the next takes over when it stops.
pub async fn one_process_keeps_the_views_and_another_takes_over(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = open(app.settings.as_ref().unwrap()).await;
    let first = LiveViews::open(store.clone(), book(), StdDuration::ZERO)
        .await
        .unwrap();
    let second = LiveViews::open(store.clone(), book(), StdDuration::ZERO).await;
    match store.backend_name() {
        "postgres" => assert!(
            matches!(second, Err(saoma_services::views::ViewError::Standby)),
            "a second projection stands by"
        ),
        _ => assert!(
            second.is_ok(),
            "SQLite is one process's file: no lock needed"
        ),
    }
    drop(second);
    first.close().await;
    let taken_over = LiveViews::open(store.clone(), book(), StdDuration::ZERO).await;
    assert!(
        taken_over.is_ok(),
        "the lock is free once the first has stopped"
    );
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
