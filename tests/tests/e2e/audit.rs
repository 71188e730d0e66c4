//! Tampering caught: a simulated log of thousands of events is changed directly in the database
//! (as someone with write access could) and `saoma audit` names where; the same changes made to
//! an exported bundle are caught by `saoma verify`, offline, with the right position.

use crate::support::*;
use crate::views::backfill;
use chrono::Datelike as _;
use ed25519_dalek::SigningKey;
use saoma_domain::checkpoint::{self, Checkpoint};
use saoma_domain::keys::PublicKey;
use saoma_domain::seal::SealError;
use saoma_domain::verify::{Broken, Failure};
use saoma_services::audit::{self, bundle, Finding};
use saoma_services::config::Settings;
use saoma_services::log::tree::LogTree;
use saoma_services::store::Store;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// Raw SQL on the store, as an intruder has it.
enum Sql {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Sql {
    async fn open(settings: &Settings) -> Self {
        match &settings.database_url {
            Some(url) => Sql::Postgres(sqlx::PgPool::connect(url.expose()).await.unwrap()),
            None => {
                let path = settings.data_dir.join("saoma.db");
                Sql::Sqlite(
                    sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap(),
                )
            }
        }
    }

    async fn exec(&self, sql: &str) {
        match self {
            Sql::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
            Sql::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// What an intruder does first: the triggers that keep positions and checkpoints final.
    async fn drop_guards(&self) {
        match self {
            Sql::Postgres(_) => {
                self.exec(
                    "ALTER TABLE events DISABLE TRIGGER USER; \
                     ALTER TABLE log_checkpoints DISABLE TRIGGER USER;",
                )
                .await
            }
            Sql::Sqlite(_) => {
                self.exec(
                    "DROP TRIGGER events_position_is_final; \
                     DROP TRIGGER log_checkpoints_no_update;",
                )
                .await
            }
        }
    }

    async fn set_payload(&self, position: u64, text: &str) {
        let position = position as i64;
        match self {
            Sql::Postgres(p) => {
                sqlx::query("UPDATE events SET payload = $1::json WHERE position = $2")
                    .bind(text)
                    .bind(position)
                    .execute(p)
                    .await
                    .map(|_| ())
            }
            Sql::Sqlite(p) => sqlx::query("UPDATE events SET payload = $1 WHERE position = $2")
                .bind(text)
                .bind(position)
                .execute(p)
                .await
                .map(|_| ()),
        }
        .unwrap();
    }

    async fn set_checkpoint(&self, size: u64, note: &str, root: &[u8]) {
        const SQL: &str = "UPDATE log_checkpoints SET note = $1, root = $2 WHERE tree_size = $3";
        match self {
            Sql::Postgres(p) => sqlx::query(SQL)
                .bind(note)
                .bind(root)
                .bind(size as i64)
                .execute(p)
                .await
                .map(|_| ()),
            Sql::Sqlite(p) => sqlx::query(SQL)
                .bind(note)
                .bind(root)
                .bind(size as i64)
                .execute(p)
                .await
                .map(|_| ()),
        }
        .unwrap();
    }

    /// Swaps the rows at positions `a` and `b` (its own inverse).
    async fn swap(&self, a: u64, b: u64) {
        self.exec(&format!(
            "UPDATE events SET position = -1 WHERE position = {a}; \
             UPDATE events SET position = {a} WHERE position = {b}; \
             UPDATE events SET position = {b} WHERE position = -1;"
        ))
        .await;
    }

    /// Moves the row at `from` to `to` (> from), the rows between moving down one: the log
    /// then reads as if the row had been committed later.
    async fn move_later(&self, from: u64, to: u64) {
        self.exec(&format!(
            "UPDATE events SET position = -1000000000 WHERE position = {from}; \
             UPDATE events SET position = -(position - 1) WHERE position > {from} AND position <= {to}; \
             UPDATE events SET position = -position WHERE position < 0 AND position > -1000000000; \
             UPDATE events SET position = {to} WHERE position = -1000000000;"
        ))
        .await;
    }

    /// The inverse of [`Sql::move_later`].
    async fn move_back(&self, from: u64, to: u64) {
        self.exec(&format!(
            "UPDATE events SET position = -1000000000 WHERE position = {to}; \
             UPDATE events SET position = -(position + 1) WHERE position >= {from} AND position < {to}; \
             UPDATE events SET position = -position WHERE position < 0 AND position > -1000000000; \
             UPDATE events SET position = {from} WHERE position = -1000000000;"
        ))
        .await;
    }
}

/// The signed payload with one digit of its `recorded_at` changed (one byte).
fn one_byte_changed(text: &str) -> String {
    let needle = "\"recorded_at\":\"";
    let at = text.find(needle).expect("recorded_at") + needle.len();
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'2' { b'3' } else { b'2' };
    String::from_utf8(bytes).unwrap()
}

/// The payload with the notary signature of `other`.
fn signature_of(text: &str, other: &str) -> String {
    let mut event: Value = serde_json::from_str(text).unwrap();
    let other: Value = serde_json::from_str(other).unwrap();
    assert_ne!(event["notary"]["signature"], other["notary"]["signature"]);
    event["notary"]["signature"] = other["notary"]["signature"].clone();
    event.to_string()
}

/// A note over `root` of `size` leaves, signed by `key` under `origin`.
fn note(
    origin: &str,
    size: u64,
    root: saoma_domain::canonical::Digest,
    key: &SigningKey,
) -> String {
    checkpoint::sign(
        &Checkpoint {
            origin: origin.into(),
            size,
            root,
        },
        key,
        &PublicKey(key.verifying_key()),
    )
}

/// A bundle read into memory, to change and write elsewhere.
#[derive(Clone)]
struct Bundle {
    events: Vec<Value>,
    checkpoints: Vec<Value>,
}

impl Bundle {
    fn read(dir: &Path) -> Self {
        let lines = |name: &str| -> Vec<Value> {
            std::fs::read_to_string(dir.join(name))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        Bundle {
            events: lines("events.jsonl"),
            checkpoints: lines("checkpoints.jsonl"),
        }
    }

    /// Writes the bundle into `dir`, with the original's keys and manifest.
    fn write(&self, original: &Path, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for name in ["keys.json", "manifest.json"] {
            std::fs::copy(original.join(name), dir.join(name)).unwrap();
        }
        let text =
            |values: &[Value]| -> String { values.iter().map(|v| format!("{v}\n")).collect() };
        std::fs::write(dir.join("events.jsonl"), text(&self.events)).unwrap();
        std::fs::write(dir.join("checkpoints.jsonl"), text(&self.checkpoints)).unwrap();
    }

    /// Renumbers the events' positions by their lines, as a careful forger would.
    fn renumber(&mut self) {
        for (i, line) in self.events.iter_mut().enumerate() {
            line["position"] = (i as u64 + 1).into();
        }
    }

    /// The event at `position`.
    fn event(&mut self, position: u64) -> &mut Value {
        &mut self.events[position as usize - 1]["event"]
    }
}

async fn audited(store: &Store, notary: PublicKey, origin: &str) -> Result<audit::Report, Finding> {
    audit::audit(store, notary, origin, false)
        .await
        .expect("the audit runs")
}

async fn verified(dir: &Path, notary: PublicKey) -> Result<audit::Report, Finding> {
    bundle::verify(dir, Some(notary), false)
        .await
        .expect("the verification runs")
}

fn at(outcome: Result<audit::Report, Finding>, what: &str) -> Finding {
    outcome.expect_err(&format!("{what} must be caught"))
}

fn event_broken(finding: &Finding) -> Option<&Broken> {
    match finding {
        Finding::Event(b) => Some(b),
        _ => None,
    }
}

/// A service on `backend` with its store, notary key and log tree, as the audit reads them.
struct Log {
    _app: TestApp,
    settings: Settings,
    notary_key: SigningKey,
    notary: PublicKey,
    origin: String,
    store: Store,
    tree: LogTree,
}

impl Log {
    async fn start(backend: Backend) -> Self {
        let app = spawn_app(backend).await;
        let settings = app.settings.clone().unwrap();
        let key_path = saoma_services::serve::notary_key_path(&settings);
        let notary_key =
            saoma_services::keys::load_or_create_signing_key(&key_path, false).unwrap();
        let notary = PublicKey(notary_key.verifying_key());
        let origin = settings.log_origin();
        let store = saoma_services::serve::open_store(&settings).await.unwrap();
        let tree = LogTree::new(
            store.clone(),
            Arc::new(notary_key.clone()),
            notary,
            origin.clone(),
        );
        Log {
            _app: app,
            settings,
            notary_key,
            notary,
            origin,
            store,
            tree,
        }
    }

    /// Backfills `inspections` in each of the last two years, signing a checkpoint after the
    /// first; the size of that checkpoint.
    async fn two_years(&self, inspections: usize) -> u64 {
        let last = saoma_domain::inspection::shanghai_date(chrono::Utc::now()).year() - 1;
        backfill(&self.settings, inspections, last - 1).await;
        let first = self.tree.checkpoint_now().await.unwrap().unwrap().tree_size;
        backfill(&self.settings, inspections, last).await;
        first
    }
}

pub async fn tampering_with_the_store_or_a_bundle_is_caught_where_it_happened(backend: Backend) {
    let log = Log::start(backend).await;
    let Log {
        notary_key,
        notary,
        origin,
        store,
        tree,
        ..
    } = &log;
    let notary = *notary;

    // Two years of traffic, a checkpoint after each.
    let (settings, first) = (&log.settings, log.two_years(250).await);
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("bundle");
    let manifest = bundle::export(tree, store, &exported, &Default::default())
        .await
        .unwrap();
    let size = manifest.tree_size;
    assert!(size > first && size > 2_000, "only {size} events");
    assert_eq!(manifest.checkpoints, 2);

    // Clean: both hold, and every leaf was compared with the service's tree.
    let clean = audited(store, notary, origin)
        .await
        .expect("a clean log audits");
    assert_eq!(
        (clean.tree_size, clean.checkpoints, clean.leaves_compared),
        (size, 2, size)
    );
    assert_eq!(clean.checked.events, size);
    assert!(clean.checked.officer_signatures > 500);
    let offline = verified(&exported, notary)
        .await
        .expect("a clean bundle verifies");
    assert_eq!((offline.tree_size, offline.root), (size, clean.root));
    // The bundle held to another notary key does not verify.
    let stranger = SigningKey::from_bytes(&[0x55; 32]);
    assert!(verified(&exported, PublicKey(stranger.verifying_key()))
        .await
        .is_err());

    let rows = store.events_after(0, size).await.unwrap();
    let text = |p: u64| rows[p as usize - 1].payload_text.clone();
    // An inspection event in the second year, and an officer's device key with its first use.
    let p = (first + size) / 2;
    assert_eq!(rows[p as usize - 1].aggregate_type, "Inspection");
    let first_use = rows
        .iter()
        .find(|r| !r.payload().unwrap()["command"].is_null())
        .expect("commands signed by officers");
    let key_id = first_use.payload().unwrap()["command"]["key_id"].clone();
    let first_use = first_use.position;
    let registered = rows
        .iter()
        .find(|r| {
            r.event_type == "DeviceKeyRegistered"
                && r.payload().unwrap()["event"]["key_id"] == key_id
        })
        .expect("the key's registration");
    let r = registered.position;
    assert!(r < first_use);

    let sql = Sql::open(settings).await;
    sql.drop_guards().await;
    let original = Bundle::read(&exported);
    let tampered = dir.path().join("tampered");
    let bundle_check = |b: Bundle| {
        let (tampered, exported) = (tampered.clone(), exported.clone());
        async move {
            let _ = std::fs::remove_dir_all(&tampered);
            b.write(&exported, &tampered);
            verified(&tampered, notary).await
        }
    };

    // 1. One byte of one payload.
    sql.set_payload(p, &one_byte_changed(&text(p))).await;
    let found = at(audited(store, notary, origin).await, "a changed byte");
    assert_eq!(found.position(), p, "{found}");
    assert!(
        matches!(
            event_broken(&found),
            Some(Broken {
                what: Failure::Seal(SealError::HashMismatch),
                ..
            })
        ),
        "{found}"
    );
    sql.set_payload(p, &text(p)).await;
    let mut b = original.clone();
    *b.event(p) = serde_json::from_str(&one_byte_changed(&text(p))).unwrap();
    let found = at(bundle_check(b).await, "a changed byte in the bundle");
    assert_eq!(found.position(), p, "{found}");

    // 2. A row deleted.
    sql.exec(&format!("CREATE TABLE saved AS SELECT * FROM events WHERE position = {p}; DELETE FROM events WHERE position = {p};")).await;
    let found = at(audited(store, notary, origin).await, "a deleted row");
    assert_eq!(
        found,
        Finding::Missing {
            position: p,
            found: p + 1
        }
    );
    sql.exec("INSERT INTO events SELECT * FROM saved; DROP TABLE saved;")
        .await;
    let mut b = original.clone();
    b.events.remove(p as usize - 1);
    let found = at(bundle_check(b.clone()).await, "a deleted line");
    assert_eq!(
        found,
        Finding::Missing {
            position: p,
            found: p + 1
        }
    );
    b.renumber();
    let found = at(bundle_check(b).await, "a deleted line, renumbered");
    assert!(found.position() >= p, "{found}");

    // 3. A row inserted: a copy of an earlier event, replayed at p.
    let copied = p - 3;
    sql.exec(&format!(
        "UPDATE events SET position = -position WHERE position >= {p}; \
         UPDATE events SET position = -position + 1 WHERE position < 0; \
         INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, position) \
           SELECT aggregate_type, 'forged', sequence, event_type, event_version, payload, metadata, {p} FROM events WHERE position = {copied};"
    ))
    .await;
    let found = at(audited(store, notary, origin).await, "an inserted row");
    assert_eq!(found.position(), p, "{found}");
    sql.exec(&format!(
        "DELETE FROM events WHERE aggregate_id = 'forged'; \
         UPDATE events SET position = -(position - 1) WHERE position > {p}; \
         UPDATE events SET position = -position WHERE position < 0;"
    ))
    .await;
    let mut b = original.clone();
    let copy = b.events[copied as usize - 1].clone();
    b.events.insert(p as usize - 1, copy);
    b.renumber();
    let found = at(bundle_check(b).await, "an inserted line");
    assert_eq!(found.position(), p, "{found}");

    // 4. Two rows swapped.
    sql.swap(p, p + 1).await;
    let found = at(audited(store, notary, origin).await, "swapped rows");
    assert_eq!(found.position(), p, "{found}");
    sql.swap(p, p + 1).await;
    let mut b = original.clone();
    b.events.swap(p as usize - 1, p as usize);
    b.renumber();
    match at(bundle_check(b).await, "swapped lines") {
        // Two streams' events keep each chain intact: only the checkpoint over them fails.
        Finding::Checkpoint { size: s, held, .. } => assert!(held < p && p <= s),
        found => assert_eq!(found.position(), p, "{found}"),
    }

    // 5. A signature replaced by another event's.
    sql.set_payload(p, &signature_of(&text(p), &text(p + 1)))
        .await;
    let found = at(audited(store, notary, origin).await, "a replaced signature");
    assert_eq!(found.position(), p, "{found}");
    sql.set_payload(p, &text(p)).await;
    let mut b = original.clone();
    *b.event(p) = serde_json::from_str(&signature_of(&text(p), &text(p + 1))).unwrap();
    let found = at(bundle_check(b).await, "a replaced signature in the bundle");
    assert_eq!(found.position(), p, "{found}");
    assert!(
        matches!(
            event_broken(&found),
            Some(Broken {
                what: Failure::Seal(SealError::BadNotarySignature),
                ..
            })
        ),
        "{found}"
    );

    // 6. An officer's key registration moved later than its first use.
    sql.move_later(r, first_use).await;
    let found = at(
        audited(store, notary, origin).await,
        "a key registration moved later",
    );
    assert_eq!(found.position(), r, "the moved row is named: {found}");
    sql.move_back(r, first_use).await;
    let mut b = original.clone();
    let registration = b.events.remove(r as usize - 1);
    b.events.insert(first_use as usize - 1, registration);
    b.renumber();
    let found = at(
        bundle_check(b).await,
        "a key registration moved later in the bundle",
    );
    // Offline, the command it signed is the first that cannot hold: its key is not yet known.
    assert_eq!(found.position(), first_use - 1, "{found}");
    assert!(
        matches!(
            event_broken(&found),
            Some(Broken {
                what: Failure::UnknownOfficerKey { .. },
                ..
            })
        ),
        "{found}"
    );

    // 7. The latest checkpoint replaced by one signed with another key.
    let latest = store.checkpoint_of_size(size).await.unwrap().unwrap();
    let forged = note(origin, size, latest.root, &stranger);
    sql.set_checkpoint(size, &forged, &latest.root.0).await;
    let found = at(
        audited(store, notary, origin).await,
        "a checkpoint signed by another key",
    );
    assert!(
        matches!(found, Finding::Checkpoint { size: s, .. } if s == size),
        "{found}"
    );
    sql.set_checkpoint(size, &latest.note, &latest.root.0).await;
    let mut b = original.clone();
    b.checkpoints[1]["note"] = forged.into();
    let found = at(
        bundle_check(b).await,
        "a bundle checkpoint signed by another key",
    );
    assert!(
        matches!(found, Finding::Checkpoint { size: s, .. } if s == size),
        "{found}"
    );

    // 8. A forked history: the first checkpoint's size signed again over another root.
    let earlier = store.checkpoint_of_size(first).await.unwrap().unwrap();
    let mut other_root = earlier.root;
    other_root.0[0] ^= 1;
    let fork = note(origin, first, other_root, notary_key);
    sql.set_checkpoint(first, &fork, &other_root.0).await;
    let found = at(audited(store, notary, origin).await, "a forked checkpoint");
    assert_eq!(found.position(), first, "{found}");
    sql.set_checkpoint(first, &earlier.note, &earlier.root.0)
        .await;
    let mut b = original.clone();
    b.checkpoints
        .insert(1, serde_json::json!({"tree_size": first, "note": fork}));
    let found = at(
        bundle_check(b).await,
        "two checkpoints of one size with different roots",
    );
    assert!(
        matches!(found, Finding::Checkpoint { size: s, held: 0, .. } if s == first),
        "{found}"
    );

    // Every change undone: the log holds again.
    let again = audited(store, notary, origin)
        .await
        .expect("the restored log audits");
    assert_eq!(again.root, clean.root);
}

/// What a filtered export of `store` should hold: every stream of the inspections `selects`
/// picks by agency, enterprise and date, and the registry streams of the officers who signed
/// their commands, each whole.
fn expected_streams(
    rows: &[saoma_services::store::LoggedRow],
    selects: impl Fn(&Value) -> bool,
) -> std::collections::BTreeSet<String> {
    let mut streams = std::collections::BTreeSet::new();
    for row in rows.iter().filter(|r| r.aggregate_type == "Inspection") {
        let stream = format!("Inspection/{}", row.aggregate_id);
        let payload = row.payload().unwrap();
        if row.event_type == "CodeIssued" && selects(&payload["event"]) {
            streams.insert(stream.clone());
        }
        if streams.contains(&stream) {
            if let Some(officer) = payload["command"]["officer"].as_str() {
                streams.insert(format!("Registry/officer:{officer}"));
            }
        }
    }
    streams
}

pub async fn a_filtered_bundle_proves_its_inspections_whole(backend: Backend) {
    let log = Log::start(backend).await;
    let Log {
        notary_key,
        notary,
        origin,
        store,
        tree,
        ..
    } = &log;
    let notary = *notary;
    let first = log.two_years(150).await;
    let year = saoma_domain::inspection::shanghai_date(chrono::Utc::now()).year() - 1;
    let dir = tempfile::tempdir().unwrap();
    let size = tree.checkpoint_now().await.unwrap().unwrap().tree_size;
    let rows = store.events_after(0, size).await.unwrap();

    // One agency's inspections of a spring, and one enterprise's of every year.
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(year, 3, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(year, 6, 30).unwrap(),
    );
    let dated = |e: &Value| -> chrono::NaiveDate { e["date"].as_str().unwrap().parse().unwrap() };
    let issued: Value = rows
        .iter()
        .filter(|r| r.event_type == "CodeIssued")
        .map(|r| r.payload().unwrap()["event"].clone())
        .find(|e| (from..=to).contains(&dated(e)))
        .expect("an inspection in the spring");
    let agency = issued["agency"]["code"].as_str().unwrap().to_string();
    let enterprise = issued["enterprise"]["credit_code"]
        .as_str()
        .unwrap()
        .to_string();
    let spring = audit::filter::Filter {
        agency: Some(agency.clone()),
        from: Some(from),
        to: Some(to),
        ..Default::default()
    };
    let of_enterprise = audit::filter::Filter {
        enterprise: Some(enterprise.clone()),
        ..Default::default()
    };
    let cases = [
        (
            spring,
            expected_streams(&rows, |e| {
                e["agency"]["code"] == agency.as_str() && (from..=to).contains(&dated(e))
            }),
        ),
        (
            of_enterprise,
            expected_streams(&rows, |e| {
                e["enterprise"]["credit_code"] == enterprise.as_str()
            }),
        ),
    ];
    let mut exported = Vec::new();
    for (i, (filter, streams)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("filtered-{i}"));
        let manifest = bundle::export(tree, store, &out, filter).await.unwrap();
        assert_eq!(manifest.tree_size, size);
        assert_eq!(manifest.filter.as_ref(), Some(filter));
        let inspections = streams
            .iter()
            .filter(|s| s.starts_with("Inspection/"))
            .count();
        assert!(inspections > 0, "the filter {filter:?} selects nothing");
        // Exactly the expected streams, each whole, in position order.
        let wanted: Vec<&saoma_services::store::LoggedRow> = rows
            .iter()
            .filter(|r| streams.contains(&format!("{}/{}", r.aggregate_type, r.aggregate_id)))
            .collect();
        let b = Bundle::read(&out);
        assert_eq!(manifest.events, wanted.len() as u64);
        assert_eq!(b.events.len(), wanted.len());
        for (line, row) in b.events.iter().zip(&wanted) {
            assert_eq!(line["position"], row.position);
            assert_eq!(line["event"], row.payload().unwrap());
            assert!(line["proof"].is_array());
        }
        let report = verified(&out, notary)
            .await
            .expect("a clean filtered bundle verifies");
        assert_eq!(report.checked.events, wanted.len() as u64);
        assert_eq!(report.inclusion_proofs, wanted.len() as u64);
        assert_eq!(report.checkpoints, 2);
        assert_eq!(report.tree_size, size);
        assert!(report.checked.officer_signatures > 0);
        exported.push((out, b));
    }

    // Tampering with a filtered bundle is caught where it happened.
    let (out, original) = &exported[0];
    let tampered = dir.path().join("tampered");
    let check = |b: Bundle| {
        let (tampered, out) = (tampered.clone(), out.clone());
        async move {
            let _ = std::fs::remove_dir_all(&tampered);
            b.write(&out, &tampered);
            verified(&tampered, notary).await
        }
    };
    let position = |b: &Bundle, i: usize| b.events[i]["position"].as_u64().unwrap();
    let last_inspection = original
        .events
        .iter()
        .rposition(|l| {
            l["event"]["stream"]
                .as_str()
                .unwrap()
                .starts_with("Inspection/")
        })
        .unwrap();

    // An event changed by one byte: its hash.
    let mut b = original.clone();
    let text = b.events[last_inspection]["event"].to_string();
    b.events[last_inspection]["event"] = serde_json::from_str(&one_byte_changed(&text)).unwrap();
    let found = at(check(b).await, "a changed byte");
    assert_eq!(
        found.position(),
        position(original, last_inspection),
        "{found}"
    );

    // One hash of an inclusion proof changed: that event is not proven.
    let mut b = original.clone();
    let hash = b.events[last_inspection]["proof"][0]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = if hash.starts_with('0') { "1" } else { "0" };
    b.events[last_inspection]["proof"][0] = format!("{flipped}{}", &hash[1..]).into();
    let found = at(check(b).await, "an altered inclusion proof");
    assert!(
        matches!(&found, Finding::NotProven { position: p, size: s, .. }
            if *p == position(original, last_inspection) && *s == size),
        "{found}"
    );

    // A position rewritten to another event's: its proof no longer holds.
    let mut b = original.clone();
    b.events[last_inspection]["position"] = (position(original, last_inspection) + 1).into();
    let found = at(check(b).await, "a moved event");
    assert!(
        matches!(
            found,
            Finding::NotProven { .. } | Finding::OutOfOrder { .. }
        ),
        "{found}"
    );

    // An inspection's first event left out: its stream's next event cannot link.
    let mut b = original.clone();
    let later = |b: &Bundle, i: usize| {
        let stream = &b.events[i]["event"]["stream"];
        b.events[i + 1..]
            .iter()
            .find(|l| l["event"]["stream"] == *stream)
            .map(|l| l["position"].as_u64().unwrap())
    };
    let (issued_at, next) = (0..b.events.len())
        .filter(|&i| b.events[i]["event"]["event"]["type"] == "CodeIssued")
        .find_map(|i| Some((i, later(&b, i)?)))
        .expect("an inspection with more than its CodeIssued");
    b.events.remove(issued_at);
    let found = at(check(b).await, "an inspection's first event left out");
    assert_eq!(found.position(), next, "{found}");

    // The officers' registry streams left out: the first signed command has no known key.
    let mut b = original.clone();
    b.events.retain(|l| {
        !l["event"]["stream"]
            .as_str()
            .unwrap()
            .starts_with("Registry/")
    });
    let first_signed = b
        .events
        .iter()
        .find(|l| !l["event"]["command"].is_null())
        .map(|l| l["position"].as_u64().unwrap())
        .unwrap();
    let found = at(check(b).await, "no officer keys");
    assert_eq!(found.position(), first_signed, "{found}");
    assert!(
        matches!(
            event_broken(&found),
            Some(Broken {
                what: Failure::UnknownOfficerKey { .. },
                ..
            })
        ),
        "{found}"
    );

    // A consistency proof altered, and a fork of the earlier checkpoint: named by its size.
    let mut b = original.clone();
    let i = b
        .checkpoints
        .iter()
        .position(|c| c["tree_size"] == first)
        .unwrap();
    b.checkpoints[i]["consistency"][0] = Value::from("00".repeat(32));
    let found = at(check(b).await, "an altered consistency proof");
    assert!(
        matches!(found, Finding::Inconsistent { size: s, .. } if s == first),
        "{found}"
    );
    let mut other_root = store.checkpoint_of_size(first).await.unwrap().unwrap().root;
    other_root.0[0] ^= 1;
    let mut b = original.clone();
    b.checkpoints[i]["note"] = note(origin, first, other_root, notary_key).into();
    let found = at(check(b).await, "a forked checkpoint");
    assert!(
        matches!(found, Finding::Inconsistent { size: s, .. } if s == first),
        "{found}"
    );

    // The bundle's own checkpoint signed by another key: nothing in it is proven.
    let stranger = SigningKey::from_bytes(&[0x55; 32]);
    let latest = store.checkpoint_of_size(size).await.unwrap().unwrap();
    let mut b = original.clone();
    let last = b.checkpoints.len() - 1;
    b.checkpoints[last]["note"] = note(origin, size, latest.root, &stranger).into();
    let found = at(check(b).await, "the bundle's checkpoint by another key");
    assert!(
        matches!(found, Finding::Inconsistent { size: s, .. } if s == size),
        "{found}"
    );
}
