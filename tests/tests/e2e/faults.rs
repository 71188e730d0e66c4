//! Faults under load on PostgreSQL and NATS: a `kill -9` of `saoma serve`, a NATS crash and a
//! PostgreSQL crash, each in the middle of a few thousand officer commands (whole lifecycles:
//! IssueCode, ShowCode, ScanEnterpriseCode, ReportResult) published over JetStream.
//!
//! Each test starts its own PostgreSQL, NATS and `saoma serve` process, so it can kill and
//! restart them. The publisher behaves as apps in the field do: it sends an inspection's next
//! step once the previous one is answered, re-publishes (same `Nats-Msg-Id` = command id) a
//! command whose publish ack failed, and reads the stored reply from `SAOMA_REPLY` when the
//! live one was missed. Each test ends by checking the store row by row (every inspection has
//! exactly its four events, in order, from exactly its four commands, no command id twice),
//! every command's stored reply (accepted, naming the stored event), the ingest consumer
//! drained, every committed event positioned in the global log and out on `SAOMA_EVT` once,
//! every stream's hash chain verified by the admin trace, and every officer and notary
//! signature of a sample (the inspections in flight when the fault struck among them).

use crate::lifecycle::{assert_trace_verifies, issue, pair};
use crate::nats::ingest_ready;
use crate::support::*;
use async_nats::jetstream::{self, message::PublishMessage};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt as _;
use saoma_domain::inspection::{
    InspectionKind, IssueCode, OfficerCommand, Outcome as ResultOutcome, VisitPurpose,
};
use saoma_services::nats::{NatsClient, Outcome, COMMAND_SUBJECT, REPLY_PREFIX};
use saoma_tests::{NatsServer, PgServer, SaomaCommand, SaomaProcess};
use sqlx::Row as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Inspections per test; each is [`STEPS`] commands, so 4,000 commands.
const LIFECYCLES: usize = 1000;
/// Inspections under way at once: a finished one makes room for the next (a closed loop, so
/// commands are always in flight)...
const WINDOW: usize = 150;
/// ... and besides, new inspections opened every tick (250 ms) whatever the answers (an open
/// loop, so publishing goes on while the service, NATS or PostgreSQL is down, as apps in the
/// field keep working).
const OPEN_PER_TICK: usize = 10;
/// The event each step commits, in order.
const STEPS: [&str; 4] = ["CodeIssued", "CodeShown", "CodeScanned", "ResultReported"];
/// The fault strikes once this share of the commands is accepted.
const FAULT_AT: f64 = 0.3;
/// The whole load, fault included, must be answered within this.
const LOAD_DEADLINE: Duration = Duration::from_secs(120);
/// A command acked by JetStream but unanswered for this long: read its stored reply.
const LOOKUP_AFTER: Duration = Duration::from_secs(3);
/// A command unanswered for this long is published again, as an app would.
const REPUBLISH_AFTER: Duration = Duration::from_secs(20);
/// Stored-reply lookups running at once, at most.
const MAX_LOOKUPS: usize = 64;

/// The origin line of the log's checkpoints in these tests.
const LOG_ORIGIN: &str = "faults.saoma.test/log";

/// One test at a time: each loads two cores with three servers and a publisher.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `kill -9` of `saoma serve`, restarted a second later on the same store and port.
    KillSaoma,
    /// SIGKILL of `nats-server`, restarted six seconds later on the same JetStream store.
    CrashNats,
    /// SIGKILL of PostgreSQL and all its backends, restarted two seconds later (crash recovery).
    CrashPostgres,
    /// Two `saoma serve` processes on one PostgreSQL and one NATS, consuming from the same
    /// durable consumer; `kill -9` of the second, which is not restarted: the first answers
    /// what it had taken, and its sequencer, tree and publisher carry the log on alone.
    KillOneOfTwo,
}

/// The servers of one test, moved to a blocking task while the fault strikes.
struct Servers {
    pg: PgServer,
    nats: NatsServer,
    saoma: SaomaProcess,
    /// A second process on the same servers, keys and data directory ([`Fault::KillOneOfTwo`]).
    second: Option<SaomaProcess>,
    _work: tempfile::TempDir,
}

impl Fault {
    fn strike(self, s: &mut Servers) {
        match self {
            Fault::KillSaoma => {
                s.saoma.kill9();
                std::thread::sleep(Duration::from_secs(1));
                s.saoma
                    .restart()
                    .expect("saoma serve restarts after kill -9");
            }
            Fault::CrashNats => {
                s.nats.kill();
                // Longer than JetStream's publish ack timeout (5 s): publications fail and are
                // retried.
                std::thread::sleep(Duration::from_secs(6));
                s.nats.restart().expect("nats-server restarts on its store");
            }
            Fault::CrashPostgres => {
                s.pg.kill();
                std::thread::sleep(Duration::from_secs(2));
                s.pg.restart().expect("postgres restarts after a crash");
            }
            Fault::KillOneOfTwo => {
                let second = s.second.as_mut().expect("a second saoma serve");
                let consumed = consumed_commands(second.port());
                assert!(
                    consumed > 0,
                    "the second process took no command before it was killed:\n{}",
                    tail(&second.log_path(), 40)
                );
                eprintln!("KillOneOfTwo: the second process had consumed {consumed} commands");
                second.kill9();
            }
        }
    }
}

/// `saoma_nats_messages_consumed_total` of the `saoma serve` listening on `port`, read from its
/// `/metrics` (a blocking HTTP/1.0 request: this runs on the fault's blocking task).
fn consumed_commands(port: u16) -> u64 {
    use std::io::{Read as _, Write as _};
    let mut connection = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    connection
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    connection
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    connection.read_to_string(&mut response).unwrap();
    response
        .lines()
        .find_map(|l| l.strip_prefix("saoma_nats_messages_consumed_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// One signed envelope, kept as published so a re-publication is byte for byte the same.
struct Signed {
    command_id: Uuid,
    payload: Vec<u8>,
}

struct Lifecycle {
    inspection_id: Uuid,
    steps: Vec<Signed>,
}

/// `n` non-inspection visits, each through its four steps, signed by Wang with device times
/// from now on.
fn sign_lifecycles(w: &World, n: usize) -> Vec<Lifecycle> {
    let t0 = now();
    (0..n)
        .map(|_| {
            let cmd: IssueCode = issue(
                w,
                InspectionKind::NonInspection {
                    purpose: VisitPurpose::Service,
                },
                pair(w),
            );
            let id = cmd.inspection_id;
            let commands = [
                OfficerCommand::IssueCode(cmd),
                OfficerCommand::ShowCode { inspection_id: id },
                OfficerCommand::ScanEnterpriseCode {
                    inspection_id: id,
                    enterprise: w.enterprise.clone(),
                },
                OfficerCommand::ReportResult {
                    inspection_id: id,
                    outcome: ResultOutcome::NoProblems,
                },
            ];
            let steps = commands
                .iter()
                .enumerate()
                .map(|(k, command)| {
                    let command_id = Uuid::new_v4();
                    let at = t0 + chrono::Duration::milliseconds(k as i64);
                    let envelope = w.wang.sign(command, at, command_id);
                    Signed {
                        command_id,
                        payload: serde_json::to_vec(&envelope).unwrap(),
                    }
                })
                .collect();
            Lifecycle {
                inspection_id: id,
                steps,
            }
        })
        .collect()
}

/// The last `n` lines of a log file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A NATS connection that reconnects quickly and for ever, as the field's apps do.
async fn connect(url: &str, name: &str, capacity: usize) -> async_nats::Client {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|_| Duration::from_millis(100))
        .subscription_capacity(capacity)
        .connect(url)
        .await
        .expect("connecting to NATS")
}

/// One command sent and not yet answered.
struct Inflight {
    inspection: usize,
    last_publish: Instant,
    /// JetStream acked a publication of it.
    acked: bool,
    /// A publication failed: publish again at this time.
    retry_at: Option<Instant>,
    last_lookup: Instant,
}

type Ack = Pin<Box<dyn Future<Output = (Uuid, bool)> + Send>>;

/// The publisher's side of one run.
struct Load<'a> {
    lifecycles: &'a [Lifecycle],
    /// command id -> (inspection, step)
    index: HashMap<Uuid, (usize, usize)>,
    js: jetstream::Context,
    inflight: HashMap<Uuid, Inflight>,
    acks: FuturesUnordered<Ack>,
    /// The event hash each answered command's reply named.
    answered: HashMap<Uuid, String>,
    opened: usize,
    finished: usize,
    accepted: usize,
    problems: Vec<String>,
    publish_failures: usize,
    republished: usize,
    found_stored: usize,
    repeated_replies: usize,
    /// A publication could not even be handed to the client this tick (NATS away and the
    /// client's buffer full): the others wait for the next tick instead of blocking too.
    blocked: bool,
    log: PathBuf,
}

impl Load<'_> {
    fn total(&self) -> usize {
        self.lifecycles.len() * STEPS.len()
    }

    fn summary(&self) -> String {
        format!(
            "{} of {} commands accepted, {} of {} inspections finished, {} in flight; \
             {} publish failures, {} re-publications, {} replies read from SAOMA_REPLY, \
             {} repeated replies; problems: {:?}",
            self.accepted,
            self.total(),
            self.finished,
            self.lifecycles.len(),
            self.inflight.len(),
            self.publish_failures,
            self.republished,
            self.found_stored,
            self.repeated_replies,
            &self.problems[..self.problems.len().min(20)],
        )
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}: {}\n--- tail of the saoma serve log ---\n{}",
            self.summary(),
            tail(&self.log, 60)
        )
    }

    /// Publishes (or re-publishes) a command; a failure schedules another attempt.
    async fn publish(&mut self, command_id: Uuid) {
        let (inspection, step) = self.index[&command_id];
        let payload = self.lifecycles[inspection].steps[step].payload.clone();
        let message = PublishMessage::build()
            .payload(payload.into())
            .message_id(command_id.to_string());
        let now = Instant::now();
        let sent = if self.blocked {
            None
        } else {
            let sent = tokio::time::timeout(
                Duration::from_millis(200),
                self.js.send_publish(COMMAND_SUBJECT, message),
            )
            .await;
            self.blocked = sent.is_err();
            sent.ok()
        };
        let entry = self.inflight.entry(command_id).or_insert(Inflight {
            inspection,
            last_publish: now,
            acked: false,
            retry_at: None,
            last_lookup: now,
        });
        entry.last_publish = now;
        match sent {
            Some(Ok(ack)) => {
                entry.retry_at = None;
                self.acks
                    .push(Box::pin(async move { (command_id, ack.await.is_ok()) }));
            }
            _ => {
                self.publish_failures += 1;
                entry.retry_at = Some(now + Duration::from_millis(500));
            }
        }
    }

    fn on_ack(&mut self, command_id: Uuid, ok: bool) {
        let Some(f) = self.inflight.get_mut(&command_id) else {
            return;
        };
        if ok {
            f.acked = true;
            f.retry_at = None;
        } else {
            self.publish_failures += 1;
            if !f.acked {
                f.retry_at = Some(Instant::now() + Duration::from_millis(500));
            }
        }
    }

    /// Opens the next inspection, if any is left.
    async fn open_next(&mut self) {
        if self.opened < self.lifecycles.len() {
            let id = self.lifecycles[self.opened].steps[0].command_id;
            self.opened += 1;
            self.publish(id).await;
        }
    }

    /// An outcome for `command_id`, from the live reply or from `SAOMA_REPLY`.
    async fn on_outcome(&mut self, command_id: Uuid, outcome: Outcome) {
        let Some(&(inspection, step)) = self.index.get(&command_id) else {
            self.problems
                .push(format!("a reply to a command never sent: {command_id}"));
            return;
        };
        let inspection_id = self.lifecycles[inspection].inspection_id;
        let expected = |o: &Outcome| -> Result<String, String> {
            match o {
                Outcome::Accepted(a)
                    if a.events.len() == 1
                        && a.events[0].event_type == STEPS[step]
                        && a.events[0].sequence == step as u64 + 1
                        && a.inspection_id == inspection_id =>
                {
                    Ok(a.events[0].hash.clone())
                }
                other => Err(format!(
                    "step {step} ({}) of inspection {inspection}, command {command_id}: {other:?}",
                    STEPS[step]
                )),
            }
        };
        if let Some(hash) = self.answered.get(&command_id) {
            // A second answer (a redelivery's, or the stored copy of the live one): the same.
            self.repeated_replies += 1;
            match expected(&outcome) {
                Ok(h) if &h == hash => {}
                Ok(h) => self.problems.push(format!(
                    "{command_id} answered with event {h}, before {hash}"
                )),
                Err(e) => self
                    .problems
                    .push(format!("a different second answer: {e}")),
            }
            return;
        }
        if self.inflight.remove(&command_id).is_none() {
            return;
        }
        match expected(&outcome) {
            Ok(hash) => {
                self.answered.insert(command_id, hash);
                self.accepted += 1;
                if step + 1 < STEPS.len() {
                    let next = self.lifecycles[inspection].steps[step + 1].command_id;
                    self.publish(next).await;
                } else {
                    self.finished += 1;
                    if self.opened - self.finished < WINDOW {
                        self.open_next().await;
                    }
                }
            }
            Err(e) => {
                self.problems.push(format!("not accepted: {e}"));
                self.finished += 1;
                if self.opened - self.finished < WINDOW {
                    self.open_next().await;
                }
            }
        }
    }
}

/// Runs the whole load; the fault strikes (in a blocking task, while publishing goes on) once
/// [`FAULT_AT`] of the commands are accepted. Returns the servers and the inspections that had
/// a command in flight when it struck.
async fn run_load(
    lifecycles: &[Lifecycle],
    nats_url: &str,
    log: PathBuf,
    servers: Servers,
    fault: Fault,
) -> (Servers, Vec<usize>) {
    let publisher = connect(nats_url, "faults publisher", 1024).await;
    let listener = connect(nats_url, "faults replies", 1 << 16).await;
    let lookups = NatsClient::new(publisher.clone());
    let mut replies = listener
        .subscribe(format!("{REPLY_PREFIX}>"))
        .await
        .unwrap();
    listener.flush().await.unwrap();
    let mut index = HashMap::new();
    for (i, l) in lifecycles.iter().enumerate() {
        for (k, s) in l.steps.iter().enumerate() {
            index.insert(s.command_id, (i, k));
        }
    }
    let mut load = Load {
        lifecycles,
        index,
        js: jetstream::new(publisher),
        inflight: HashMap::new(),
        acks: FuturesUnordered::new(),
        answered: HashMap::new(),
        opened: 0,
        finished: 0,
        accepted: 0,
        problems: Vec::new(),
        publish_failures: 0,
        republished: 0,
        found_stored: 0,
        repeated_replies: 0,
        blocked: false,
        log,
    };
    let (found_tx, mut found_rx) =
        tokio::sync::mpsc::unbounded_channel::<(Uuid, Option<Outcome>)>();
    let mut lookups_running = 0;
    let mut servers = Some(servers);
    let mut striking: Option<tokio::task::JoinHandle<Servers>> = None;
    let mut at_fault = Vec::new();
    let mut struck = false;
    let fault_after = (load.total() as f64 * FAULT_AT) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let start = Instant::now();
    while load.opened < WINDOW.min(lifecycles.len()) {
        load.open_next().await;
    }
    while load.finished < lifecycles.len() {
        // Checked at every turn, so it strikes with commands in flight.
        if !struck && load.accepted >= fault_after {
            if let Some(mut s) = servers.take() {
                struck = true;
                at_fault = load.inflight.values().map(|f| f.inspection).collect();
                at_fault.sort_unstable();
                at_fault.dedup();
                eprintln!(
                    "{fault:?}: strikes at {:.1} s, {} commands accepted, {} in flight",
                    start.elapsed().as_secs_f64(),
                    load.accepted,
                    load.inflight.len()
                );
                striking = Some(tokio::task::spawn_blocking(move || {
                    fault.strike(&mut s);
                    s
                }));
            }
        }
        tokio::select! {
            message = replies.next() => {
                let Some(message) = message else { load.fail("the reply subscription ended") };
                let Some(id) = message
                    .subject
                    .strip_prefix(REPLY_PREFIX)
                    .and_then(|s| s.parse::<Uuid>().ok())
                else {
                    load.problems.push(format!("a reply on {}", message.subject));
                    continue;
                };
                match serde_json::from_slice::<Outcome>(&message.payload) {
                    Ok(outcome) => load.on_outcome(id, outcome).await,
                    Err(e) => load.problems.push(format!("unreadable reply to {id}: {e}")),
                }
            }
            Some((id, ok)) = load.acks.next(), if !load.acks.is_empty() => load.on_ack(id, ok),
            Some((id, found)) = found_rx.recv() => {
                lookups_running -= 1;
                if let Some(outcome) = found {
                    if load.inflight.contains_key(&id) {
                        load.found_stored += 1;
                    }
                    load.on_outcome(id, outcome).await;
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                load.blocked = false;
                if now - start > LOAD_DEADLINE {
                    load.fail(&format!("the load was not answered within {LOAD_DEADLINE:?}"));
                }
                if striking.as_ref().is_some_and(|t| t.is_finished()) {
                    // Surface a failed restart at once rather than as a timeout.
                    servers = Some(striking.take().unwrap().await.expect("the fault task"));
                    eprintln!(
                        "{fault:?}: back at {:.1} s, {} commands accepted",
                        start.elapsed().as_secs_f64(),
                        load.accepted
                    );
                }
                for _ in 0..OPEN_PER_TICK {
                    load.open_next().await;
                }
                let mut again = Vec::new();
                for (id, f) in &mut load.inflight {
                    if f.retry_at.is_some_and(|t| t <= now)
                        || now - f.last_publish > REPUBLISH_AFTER
                    {
                        again.push(*id);
                    } else if f.acked
                        && lookups_running < MAX_LOOKUPS
                        && now - f.last_publish > LOOKUP_AFTER
                        && now - f.last_lookup > LOOKUP_AFTER
                    {
                        f.last_lookup = now;
                        lookups_running += 1;
                        let (lookups, found_tx, id) = (lookups.clone(), found_tx.clone(), *id);
                        tokio::spawn(async move {
                            let found = tokio::time::timeout(
                                Duration::from_secs(2),
                                lookups.stored_outcome(id),
                            )
                            .await;
                            let _ = found_tx.send((id, found.ok().and_then(Result::ok).flatten()));
                        });
                    }
                }
                for id in again {
                    if load.inflight[&id].retry_at.is_none() {
                        load.republished += 1;
                    }
                    load.publish(id).await;
                }
            }
        }
    }
    assert!(struck, "the fault never struck: {}", load.summary());
    let servers = match (servers, striking) {
        (Some(s), None) => s,
        (None, Some(task)) => tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("the fault task finishes")
            .expect("the fault task"),
        _ => unreachable!("the servers are either here or with the fault task"),
    };
    assert!(
        load.problems.is_empty(),
        "{} problems: {}\n--- tail of the saoma serve log ---\n{}",
        load.problems.len(),
        load.summary(),
        tail(&load.log, 60)
    );
    eprintln!(
        "{fault:?}: load answered in {:.1} s: {}",
        start.elapsed().as_secs_f64(),
        load.summary()
    );
    (servers, at_fault)
}

/// Polls `f` until it yields something, failing after `within` with `what` and the log tail.
async fn within<T, Fut: Future<Output = Result<T, String>>>(
    what: &str,
    within: Duration,
    log: &Path,
    f: impl Fn() -> Fut,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let last = match f().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        if Instant::now() > deadline {
            panic!(
                "{what}: not within {within:?} ({last})\n--- tail of the saoma serve log ---\n{}",
                tail(log, 60)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every inspection has exactly its four events, from its four commands, in order; nothing
/// else is stored; returns the stored hash of every command's event.
async fn assert_store_holds_exactly_the_load(
    db_url: &str,
    lifecycles: &[Lifecycle],
) -> HashMap<Uuid, String> {
    let pool = sqlx::PgPool::connect(db_url)
        .await
        .expect("connecting to postgres");
    let rows = sqlx::query(
        "SELECT aggregate_id, sequence, event_type, payload::text AS payload FROM events \
         WHERE aggregate_type = 'Inspection' ORDER BY aggregate_id, sequence",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let total: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Inspection'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        total as usize,
        lifecycles.len() * STEPS.len(),
        "inspection events in the store: none lost, none duplicated"
    );
    // inspection -> [(sequence, event type, command id, hash)]
    let mut streams: BTreeMap<String, Vec<(i64, String, Uuid, String)>> = BTreeMap::new();
    let mut command_ids = HashSet::new();
    for row in &rows {
        let payload: serde_json::Value =
            serde_json::from_str(row.get::<&str, _>("payload")).unwrap();
        let command_id: Uuid = payload["meta"]["command_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("an inspection event without a command id: {payload}"));
        assert!(
            command_ids.insert(command_id),
            "command {command_id} committed twice"
        );
        streams.entry(row.get("aggregate_id")).or_default().push((
            row.get("sequence"),
            row.get("event_type"),
            command_id,
            payload["hash"].as_str().unwrap().to_string(),
        ));
    }
    assert_eq!(streams.len(), lifecycles.len(), "one stream per inspection");
    let mut hashes = HashMap::new();
    for l in lifecycles {
        let stream = streams
            .get(&l.inspection_id.to_string())
            .unwrap_or_else(|| panic!("inspection {} has no events", l.inspection_id));
        let got: Vec<(i64, &str, Uuid)> = stream
            .iter()
            .map(|(seq, t, c, _)| (*seq, t.as_str(), *c))
            .collect();
        let want: Vec<(i64, &str, Uuid)> = l
            .steps
            .iter()
            .zip(STEPS)
            .enumerate()
            .map(|(k, (s, t))| (k as i64 + 1, t, s.command_id))
            .collect();
        assert_eq!(got, want, "the events of inspection {}", l.inspection_id);
        for (_, _, command_id, hash) in stream {
            hashes.insert(*command_id, hash.clone());
        }
    }
    pool.close().await;
    hashes
}

/// Every command's reply is stored in `SAOMA_REPLY`: accepted, naming the event the store holds.
/// Returns how many are marked as duplicates (answers to a redelivery that JetStream counted as
/// a first delivery, having lost its consumer state in a crash).
async fn assert_every_reply_is_stored(
    client: &NatsClient,
    lifecycles: &[Lifecycle],
    hashes: &HashMap<Uuid, String>,
) -> usize {
    let ids: Vec<(Uuid, usize)> = lifecycles
        .iter()
        .flat_map(|l| l.steps.iter().enumerate().map(|(k, s)| (s.command_id, k)))
        .collect();
    let stored: Vec<(Uuid, usize, Option<Outcome>)> = futures_util::stream::iter(ids)
        .map(|(id, step)| async move {
            let outcome = client
                .stored_outcome(id)
                .await
                .expect("reading SAOMA_REPLY");
            (id, step, outcome)
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut duplicates = 0;
    for (id, step, outcome) in stored {
        match outcome {
            Some(Outcome::Accepted(a))
                if a.events.len() == 1
                    && a.events[0].event_type == STEPS[step]
                    && Some(&a.events[0].hash) == hashes.get(&id) =>
            {
                duplicates += usize::from(a.duplicate);
            }
            other => panic!("the stored reply to {id} (step {step}): {other:?}"),
        }
    }
    duplicates
}

async fn fault_under_load(fault: Fault) {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let servers = tokio::task::spawn_blocking(move || -> Option<Servers> {
        let pg = PgServer::start_or_skip()?;
        let nats = NatsServer::start_or_skip()?;
        let work = tempfile::tempdir().unwrap();
        // One origin for the log's checkpoints whatever port a process listens on: the two
        // processes of `KillOneOfTwo` sign the same log, and `saoma audit` holds them to it.
        let command = || {
            SaomaCommand::new(work.path())
                .env("SAOMA_NATS_URL", nats.url())
                .env("SAOMA_LOG_ORIGIN", LOG_ORIGIN)
                .database_url(pg.url())
        };
        let saoma = command().spawn().expect("saoma serve starts");
        // Started after the first, so it finds the notary key the first created.
        let second = matches!(fault, Fault::KillOneOfTwo)
            .then(|| command().spawn().expect("a second saoma serve starts"));
        Some(Servers {
            pg,
            nats,
            saoma,
            second,
            _work: work,
        })
    })
    .await
    .expect("start-up task");
    let Some(servers) = servers else { return };
    let phase = |what: &str| {
        eprintln!(
            "{fault:?}: {what} at {:.1} s",
            started.elapsed().as_secs_f64()
        )
    };
    phase("servers up");
    let (db_url, nats_url) = (servers.pg.url(), servers.nats.url());
    let log = servers.saoma.log_path();
    let app = TestApp::at(&servers.saoma.base_url(), servers.saoma.admin_token());
    let w = populate(&app).await;
    let client = NatsClient::new(connect(&nats_url, "faults checks", 1024).await);
    ingest_ready(client.nats()).await;
    let lifecycles = sign_lifecycles(&w, LIFECYCLES);
    phase("populated and signed");

    let (mut servers, at_fault) =
        run_load(&lifecycles, &nats_url, log.clone(), servers, fault).await;
    assert!(
        servers.saoma.is_running(),
        "saoma serve died:\n{}",
        tail(&log, 60)
    );

    phase("load answered");
    let hashes = assert_store_holds_exactly_the_load(&db_url, &lifecycles).await;
    phase("store checked");

    // Every message settled: nothing left to deliver, nothing delivered and unacked (a reply
    // whose ack was lost is redelivered within the ack wait, answered and acked).
    let js = jetstream::new(client.nats().clone());
    within(
        "the ingest consumer drains",
        Duration::from_secs(45),
        &log,
        || {
            let js = js.clone();
            async move {
                let stream = js
                    .get_stream("SAOMA_CMD")
                    .await
                    .map_err(|e| e.to_string())?;
                let mut consumer = stream
                    .get_consumer::<jetstream::consumer::pull::Config>("saoma-ingest")
                    .await
                    .map_err(|e| e.to_string())?;
                let info = consumer.info().await.map_err(|e| e.to_string())?;
                if info.num_pending == 0 && info.num_ack_pending == 0 {
                    Ok(())
                } else {
                    Err(format!(
                        "{} undelivered, {} unacked",
                        info.num_pending, info.num_ack_pending
                    ))
                }
            }
        },
    )
    .await;

    let mut commands = js.get_stream("SAOMA_CMD").await.unwrap();
    let stored = commands.info().await.unwrap().state.messages;
    phase(&format!(
        "consumer drained; SAOMA_CMD holds {stored} messages for {} commands",
        LIFECYCLES * STEPS.len()
    ));
    // After the drain, so the answers to redeliveries are checked too.
    let duplicates = assert_every_reply_is_stored(&client, &lifecycles, &hashes).await;
    phase(&format!(
        "replies checked ({duplicates} marked as duplicates)"
    ));
    // Only a command published again as a new message (past the duplicate window) may be
    // answered as a duplicate; a redelivery answers as the first execution did, even when a
    // NATS crash lost the consumer's delivery counts.
    let republished = stored.saturating_sub((LIFECYCLES * STEPS.len()) as u64);
    assert!(
        duplicates as u64 <= republished,
        "{duplicates} replies marked as duplicates, but only {republished} commands were \
         stored twice in SAOMA_CMD"
    );
    // Every committed event (the registry's too) goes out on SAOMA_EVT once.
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    let out = || {
        let js = js.clone();
        async move {
            let mut stream = js
                .get_stream("SAOMA_EVT")
                .await
                .map_err(|e| e.to_string())?;
            let info = stream.info().await.map_err(|e| e.to_string())?;
            Ok::<u64, String>(info.state.messages)
        }
    };
    within(
        "every event out on SAOMA_EVT",
        Duration::from_secs(30),
        &log,
        || async {
            match out().await? {
                n if n >= events as u64 => Ok(()),
                n => Err(format!("{n} of {events} events out")),
            }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        within("reading SAOMA_EVT", Duration::from_secs(10), &log, out).await,
        events as u64,
        "every committed event out once, none twice"
    );
    // And in the global log once each: positions 1 to the number of events, no gaps.
    let pool = sqlx::PgPool::connect(&db_url).await.unwrap();
    let (positioned, first, last): (i64, Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT count(position), min(position), max(position) FROM events")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(
        (positioned, first, last),
        (events, Some(1), Some(events)),
        "every event has a position, from 1, without gaps"
    );

    phase("events out checked");
    // Every stream's hash chain, links and notary signatures, as the admin trace checks them;
    // and, checked here too, every signature in the inspections the fault caught and a few more.
    let unverified: Vec<String> = futures_util::stream::iter(&lifecycles)
        .map(|l| {
            let app = &app;
            async move {
                let path = format!("/api/v1/admin/inspections/{}/events", l.inspection_id);
                let trace = app.client.get(&path).await.unwrap();
                (trace.status != 200 || trace.body["verified"] != serde_json::json!(true))
                    .then(|| format!("{}: {} {}", l.inspection_id, trace.status, trace.body))
            }
        })
        .buffer_unordered(8)
        .filter_map(|bad| async move { bad })
        .collect()
        .await;
    assert!(
        unverified.is_empty(),
        "{} traces do not verify, e.g. {}",
        unverified.len(),
        unverified[0]
    );
    let sample: Vec<usize> = at_fault
        .iter()
        .copied()
        .take(12)
        .chain([0, LIFECYCLES / 2, LIFECYCLES - 1])
        .collect();
    for i in sample {
        let trace = assert_trace_verifies(&app, lifecycles[i].inspection_id).await;
        assert_eq!(types(&trace), STEPS, "inspection {i}");
    }
    phase("traces verified");
    // The whole log as an auditor checks it: a checkpoint of everything signed on demand, then
    // `saoma audit` (every hash, chain link and signature, the rows against the Merkle tree and
    // the checkpoint), exit 0.
    let signed = app
        .client
        .post_json("/api/v1/admin/log/checkpoint", &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(signed.status, 200, "{:?}", signed.body);
    assert_eq!(signed.body["tree_size"], serde_json::json!(events));
    let audit = std::process::Command::new(saoma_tests::saoma_binary().unwrap())
        .arg("audit")
        .env("SAOMA_DATABASE_URL", &db_url)
        .env("SAOMA_DATA_DIR", servers._work.path().join("data"))
        .env("SAOMA_LOG_ORIGIN", LOG_ORIGIN)
        .output()
        .unwrap();
    let audited = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.status.success() && audited.contains("events hold"),
        "saoma audit after {fault:?}:\n{audited}\n{}",
        String::from_utf8_lossy(&audit.stderr)
    );
    phase("audited");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    eprintln!(
        "{fault:?}: whole test {:.1} s; the service logged {} warnings and errors, e.g.\n{}",
        started.elapsed().as_secs_f64(),
        warnings.len(),
        warnings
            .iter()
            .step_by(warnings.len() / 8 + 1)
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_one_killed_mid_load_lose_and_duplicate_no_event() {
    fault_under_load(Fault::KillOneOfTwo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_of_saoma_serve_mid_load_loses_and_duplicates_no_event() {
    fault_under_load(Fault::KillSaoma).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_crash_mid_load_loses_and_duplicates_no_event() {
    fault_under_load(Fault::CrashNats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_crash_mid_load_loses_and_duplicates_no_event() {
    fault_under_load(Fault::CrashPostgres).await;
}
