//! The global log: sequencers and writers racing on one PostgreSQL give every event one
//! position, without gaps and in each stream's order; and every committed event goes out on NATS JetStream
//! exactly once, in order, even when NATS was down while it was committed.

use crate::lifecycle::{issue, pair};
use crate::support::*;
use async_nats::jetstream::{self, consumer::pull, stream::Stream};
use saoma_domain::inspection::{InspectionKind, OfficerCommand, Outcome, VisitPurpose};
use saoma_services::store::{AppendError, NewRow, Store, SEQUENCER_LOCK};
use saoma_tests::NatsServer;
use serde_json::{json, Value};
use sqlx::{Connection as _, PgConnection, PgPool};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Commits one event the way the es crates do: naming their columns, leaving `position` NULL.
async fn commit(pool: &PgPool, stream: &str, sequence: i64) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, \
         payload, metadata) VALUES ('Inspection', $1, $2, 'CodeShown', '1', $3::json, '{}')",
    )
    .bind(stream)
    .bind(sequence)
    .bind(json!({ "stream": format!("Inspection/{stream}"), "sequence": sequence }).to_string())
    .execute(pool)
    .await
    .unwrap();
}

/// (position, stream, sequence) of every event, in position order; panics on a NULL position.
async fn log_of(store: &Store) -> Vec<(u64, String, u64)> {
    store
        .events_after(0, u64::MAX >> 1)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.position, r.aggregate_id, r.sequence))
        .collect()
}

/// Two stores, two pools: two `saoma serve` processes on one database; and a plain pool for
/// the es crates' own inserts.
async fn two_processes(url: &str) -> (Store, Store, PgPool) {
    (
        Store::open_postgres(url).await.unwrap(),
        Store::open_postgres(url).await.unwrap(),
        PgPool::connect(url).await.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sequencers_racing_on_one_postgres_give_every_event_one_position_without_gaps() {
    let Some(url) = crate::postgres_database().await else {
        return;
    };
    let (a, b, pool) = two_processes(&url).await;
    const WRITERS: usize = 6;
    const STREAMS_PER_WRITER: usize = 8;
    const EVENTS_PER_STREAM: i64 = 12;
    let total = (WRITERS * STREAMS_PER_WRITER) as u64 * EVENTS_PER_STREAM as u64;

    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let pool = pool.clone();
        writers.spawn(async move {
            // Each stream in order, the streams interleaved, the writers concurrent.
            for seq in 1..=EVENTS_PER_STREAM {
                for s in 0..STREAMS_PER_WRITER {
                    commit(&pool, &format!("w{w}-s{s}"), seq).await;
                }
            }
        });
    }
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut sequencers = tokio::task::JoinSet::new();
    for store in [a.clone(), b.clone(), a.clone(), b.clone()] {
        let writing = writing.clone();
        sequencers.spawn(async move {
            let mut assigned = 0;
            loop {
                let still_writing = writing.load(std::sync::atomic::Ordering::SeqCst);
                // Small rounds, so the sequencers meet often.
                let n = store.assign_positions(7).await.unwrap();
                assigned += n;
                if n == 0 && !still_writing && store.unpositioned().await.unwrap() == 0 {
                    return assigned;
                }
            }
        });
    }
    // Halfway, remember what was given: it must never change.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let early = log_of(&a).await;
    while let Some(w) = writers.join_next().await {
        w.unwrap();
    }
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut assigned = 0;
    while let Some(n) = sequencers.join_next().await {
        assigned += n.unwrap();
    }
    assert_eq!(assigned, total, "every event positioned exactly once");

    let log = log_of(&b).await;
    let positions: Vec<u64> = log.iter().map(|r| r.0).collect();
    assert_eq!(
        positions,
        (1..=total).collect::<Vec<_>>(),
        "from 1, no gaps"
    );
    assert_eq!(b.unpositioned().await.unwrap(), 0);
    assert_eq!(a.max_position().await.unwrap(), total);
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (position, stream, sequence) in &log {
        let before = last.insert(stream, *sequence).unwrap_or(0);
        assert_eq!(*sequence, before + 1, "{stream} at position {position}");
    }
    assert!(!early.is_empty(), "the sequencers had started by then");
    assert_eq!(&log[..early.len()], &early[..], "positions never change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequencer_waits_while_another_holds_the_lock_and_takes_over_when_it_dies() {
    let Some(url) = crate::postgres_database().await else {
        return;
    };
    let store = Store::open_postgres(&url).await.unwrap();
    let pool = PgPool::connect(&url).await.unwrap();
    commit(&pool, "a", 1).await;
    commit(&pool, "a", 2).await;

    // Another process's sequencer, mid-round (a session lock stands in for its transaction).
    let mut other = PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(SEQUENCER_LOCK)
        .execute(&mut other)
        .await
        .unwrap();
    assert_eq!(
        store.assign_positions(100).await.unwrap(),
        0,
        "not the leader"
    );
    assert_eq!(store.unpositioned().await.unwrap(), 2);

    // It dies: the server ends its session and frees the lock.
    drop(other);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut assigned = 0;
    while assigned == 0 {
        assert!(Instant::now() < deadline, "no takeover within 10 s");
        assigned = store.assign_positions(100).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(assigned, 2);
    assert_eq!(
        log_of(&store).await,
        [(1, "a".to_string(), 1), (2, "a".to_string(), 2)]
    );
}

/// One event of each of `streams` streams (`{prefix}-{i}`), at `sequence`, in one batch as
/// the writer appends it.
fn batch(prefix: &str, streams: usize, sequence: i64) -> Vec<NewRow> {
    (0..streams)
        .map(|i| NewRow {
            aggregate_type: "Inspection",
            aggregate_id: format!("{prefix}-{i}"),
            sequence,
            event_type: "CodeShown".into(),
            event_version: "1".into(),
            payload: json!({ "sequence": sequence }).to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_positioned_as_they_commit_after_everything_committed_before() {
    let Some(url) = crate::postgres_database().await else {
        return;
    };
    let (a, b, pool) = two_processes(&url).await;
    let entry = |p: u64, id: &str, s: u64| (p, id.to_string(), s);

    // Nothing waits for a position: the batch gets the next ones as it is stored, in its
    // order.
    a.append(batch("first", 3, 1)).await.unwrap();
    assert_eq!(a.unpositioned().await.unwrap(), 0);
    assert_eq!(
        log_of(&a).await,
        [
            entry(1, "first-0", 1),
            entry(2, "first-1", 1),
            entry(3, "first-2", 1)
        ]
    );

    // An event committed the es crates' way waits for the sequencer, so a batch stored after
    // it waits too (it must not overtake it), and the sequencer numbers them all.
    commit(&pool, "es", 1).await;
    a.append(batch("second", 2, 1)).await.unwrap();
    assert_eq!(a.unpositioned().await.unwrap(), 3);
    assert_eq!(a.assign_positions(100).await.unwrap(), 3);
    assert_eq!(
        log_of(&a).await[3..],
        [
            entry(4, "es", 1),
            entry(5, "second-0", 1),
            entry(6, "second-1", 1)
        ]
    );
    // A taken (stream, sequence) stores nothing and gives no position.
    assert!(matches!(
        b.append(batch("first", 1, 1)).await,
        Err(AppendError::Conflict)
    ));
    assert_eq!(a.max_position().await.unwrap(), 6);

    // Two processes' writers, es-style commits and a sequencer, all at once: one gapless
    // order with every stream in sequence.
    const WRITERS: usize = 4;
    const STREAMS: usize = 6;
    const EVENTS_PER_STREAM: i64 = 15;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let store = [a.clone(), b.clone()][w % 2].clone();
        tasks.spawn(async move {
            for seq in 1..=EVENTS_PER_STREAM {
                store
                    .append(batch(&format!("w{w}"), STREAMS, seq))
                    .await
                    .unwrap();
            }
        });
    }
    let es = pool.clone();
    tasks.spawn(async move {
        for seq in 1..=EVENTS_PER_STREAM {
            commit(&es, "es-racing", seq).await;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    let sequencer = b.clone();
    let sequencing = tokio::spawn(async move {
        for _ in 0..200 {
            sequencer.assign_positions(5).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    sequencing.await.unwrap();
    while a.assign_positions(100).await.unwrap() > 0 {}

    let total =
        6 + (WRITERS * STREAMS) as u64 * EVENTS_PER_STREAM as u64 + EVENTS_PER_STREAM as u64;
    let log = log_of(&a).await;
    let positions: Vec<u64> = log.iter().map(|r| r.0).collect();
    assert_eq!(
        positions,
        (1..=total).collect::<Vec<_>>(),
        "from 1, no gaps"
    );
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (position, stream, sequence) in &log {
        let before = last.insert(stream, *sequence).unwrap_or(0);
        assert_eq!(*sequence, before + 1, "{stream} at position {position}");
    }
}

/// One message of `SAOMA_EVT`, as a subscriber sees it.
#[derive(Debug, Clone, PartialEq)]
struct Received {
    subject: String,
    msg_id: String,
    position: u64,
    hash: String,
    payload: Value,
}

/// A subscriber to `saoma.evt.>`: a durable pull consumer that survives NATS restarts.
struct Subscriber {
    stream: Stream,
    consumer: jetstream::consumer::PullConsumer,
    /// By stream sequence: a redelivery lands on the same key.
    received: BTreeMap<u64, Received>,
}

impl Subscriber {
    async fn connect(url: &str) -> Self {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .reconnect_delay_callback(|_| Duration::from_millis(100))
            .connect(url)
            .await
            .unwrap();
        let js = jetstream::new(client);
        let deadline = Instant::now() + Duration::from_secs(20);
        // The service creates the stream when it starts publishing.
        let stream = loop {
            match js.get_stream("SAOMA_EVT").await {
                Ok(stream) => break stream,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("SAOMA_EVT was never created: {e}"),
            }
        };
        let consumer = stream
            .get_or_create_consumer(
                "e2e-subscriber",
                pull::Config {
                    durable_name: Some("e2e-subscriber".into()),
                    filter_subject: "saoma.evt.>".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        Subscriber {
            stream,
            consumer,
            received: BTreeMap::new(),
        }
    }

    /// Receives until `total` distinct messages arrived (30 s at most).
    async fn receive_until(&mut self, total: usize) {
        use futures_util::StreamExt as _;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.received.len() < total {
            assert!(
                Instant::now() < deadline,
                "only {} of {total} events arrived",
                self.received.len()
            );
            let batch = self
                .consumer
                .fetch()
                .max_messages(200)
                .expires(Duration::from_millis(500))
                .messages()
                .await;
            let Ok(mut batch) = batch else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            while let Some(message) = batch.next().await {
                let Ok(message) = message else { break };
                let seq = message.info().unwrap().stream_sequence;
                let headers = message.headers.clone().expect("headers");
                let header = |name: &str| {
                    headers
                        .get(name)
                        .unwrap_or_else(|| panic!("header {name}"))
                        .as_str()
                        .to_string()
                };
                let got = Received {
                    subject: message.subject.to_string(),
                    msg_id: header("Nats-Msg-Id"),
                    position: header("Saoma-Position").parse().unwrap(),
                    hash: header("Saoma-Hash"),
                    payload: serde_json::from_slice(&message.payload).unwrap(),
                };
                if let Some(before) = self.received.insert(seq, got.clone()) {
                    assert_eq!(before, got, "a redelivery of stream message {seq} differs");
                }
                let _ = message.ack().await;
            }
        }
    }

    async fn stream_messages(&mut self) -> u64 {
        self.stream.info().await.unwrap().state.messages
    }
}

/// One non-inspection visit through issue, show, scan, report and rating: six events.
async fn visit(app: &TestApp, w: &World) -> Uuid {
    let cmd = issue(
        w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::Service,
        },
        pair(w),
    );
    let id = cmd.inspection_id;
    let issued = app
        .client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(cmd)))
        .await
        .unwrap();
    assert_eq!(issued.status, 201, "{:?}", issued.body);
    let token = issued.body["token"].as_str().unwrap().to_string();
    let shown = OfficerCommand::ShowCode { inspection_id: id };
    let shown = app.client.submit(&signed(&w.li, &shown)).await.unwrap();
    assert_eq!(shown.status, 201, "{:?}", shown.body);
    let scanned = app
        .public
        .post_json(&format!("/api/v1/codes/{token}/scan"), &json!({}))
        .await
        .unwrap();
    assert_eq!(scanned.status, 200, "{:?}", scanned.body);
    let mutual = OfficerCommand::ScanEnterpriseCode {
        inspection_id: id,
        enterprise: w.enterprise.clone(),
    };
    let mutual = app.client.submit(&signed(&w.wang, &mutual)).await.unwrap();
    assert_eq!(mutual.status, 201, "{:?}", mutual.body);
    let report = OfficerCommand::ReportResult {
        inspection_id: id,
        outcome: Outcome::NoProblems,
    };
    let report = app.client.submit(&signed(&w.wang, &report)).await.unwrap();
    assert_eq!(report.status, 201, "{:?}", report.body);
    let rated = app
        .public
        .post_json(
            &format!("/api/v1/codes/{token}/rating"),
            &json!({"level": 4}),
        )
        .await
        .unwrap();
    assert_eq!(rated.status, 200, "{:?}", rated.body);
    id
}

pub(crate) async fn visits(app: &TestApp, w: &World, n: usize) -> Vec<Uuid> {
    futures_util::future::join_all((0..n).map(|_| visit(app, w))).await
}

/// Everything a subscriber received is the store's log, in order, each event once, on the right
/// subject, with the right headers, and exactly the stored sealed event.
async fn assert_events_out(app: &TestApp, w: &World, sub: &Subscriber, inspections: &[Uuid]) {
    let total = app.event_count().await as u64;
    let seqs: Vec<u64> = sub.received.keys().copied().collect();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "one message per event"
    );
    let mut per_stream: HashMap<String, Vec<&Received>> = HashMap::new();
    for (seq, m) in &sub.received {
        assert_eq!(m.position, *seq, "stream order is log order");
        let stream = m.payload["stream"].as_str().unwrap();
        let sequence = m.payload["sequence"].as_u64().unwrap();
        assert_eq!(m.msg_id, format!("{stream}/{sequence}"));
        assert_eq!(m.hash, m.payload["hash"].as_str().unwrap());
        let event_type = m.payload["event"]["type"].as_str().unwrap();
        let expected_subject = if stream.starts_with("Inspection/") {
            format!("saoma.evt.{}.{event_type}", w.market)
        } else {
            assert!(stream.starts_with("Registry/"), "{stream}");
            format!("saoma.evt.registry.{event_type}")
        };
        assert_eq!(m.subject, expected_subject);
        per_stream.entry(stream.to_string()).or_default().push(m);
    }
    for (stream, messages) in &per_stream {
        let sequences: Vec<u64> = messages
            .iter()
            .map(|m| m.payload["sequence"].as_u64().unwrap())
            .collect();
        assert_eq!(
            sequences,
            (1..=messages.len() as u64).collect::<Vec<_>>(),
            "{stream} in order, complete"
        );
    }
    for id in inspections {
        let trace = app
            .client
            .get(&format!("/api/v1/admin/inspections/{id}/events"))
            .await
            .unwrap();
        let stored = trace.body["events"].as_array().unwrap();
        let published: Vec<&Value> = per_stream[&format!("Inspection/{id}")]
            .iter()
            .map(|m| &m.payload)
            .collect();
        assert_eq!(stored.len(), 6);
        assert_eq!(
            published,
            stored.iter().collect::<Vec<_>>(),
            "the stored events of {id}"
        );
    }
}

async fn every_committed_event_goes_out_once_in_order_even_across_a_nats_crash(backend: Backend) {
    let Some(mut nats) = tokio::task::block_in_place(NatsServer::start_or_skip) else {
        return;
    };
    let app = spawn_app_with(backend, Some(nats.url())).await;
    let w = populate(&app).await;
    let mut inspections = visits(&app, &w, 4).await;
    let mut sub = Subscriber::connect(&nats.url()).await;
    sub.receive_until(app.event_count().await as usize).await;
    assert_events_out(&app, &w, &sub, &inspections).await;

    // NATS crashes; commands keep being committed to the store meanwhile.
    tokio::task::block_in_place(|| nats.kill());
    inspections.extend(visits(&app, &w, 3).await);
    // Longer than the publisher's ack timeout (5 s): its publishes fail, it backs off and
    // retries, and what its client buffered meanwhile may still land after the restart.
    tokio::time::sleep(Duration::from_secs(7)).await;
    tokio::task::block_in_place(|| nats.restart()).expect("nats restarts");

    let total = app.event_count().await as usize;
    sub.receive_until(total).await;
    assert_events_out(&app, &w, &sub, &inspections).await;
    // And nothing more arrives: no event was published twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sub.stream_messages().await, total as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite_every_committed_event_goes_out_once_in_order_even_across_a_nats_crash() {
    every_committed_event_goes_out_once_in_order_even_across_a_nats_crash(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_every_committed_event_goes_out_once_in_order_even_across_a_nats_crash() {
    let Some(url) = crate::postgres_database().await else {
        return;
    };
    every_committed_event_goes_out_once_in_order_even_across_a_nats_crash(Backend::Postgres(url))
        .await;
}
