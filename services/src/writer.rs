//! The single writer of inspection streams in this process: commands from HTTP handlers and
//! NATS batches queue here and are executed in groups (group commit) — each group loads the
//! streams it lacks in one query, decides and seals every command in order with the aggregate's
//! own `handle`, and appends all resulting events in one statement. Aggregate states stay cached
//! between groups. Another process writing the same stream shows up as a conflict on append;
//! the group is then replayed command by command from fresh state, so nothing is lost or
//! written twice.

use crate::store::{AppendError, NewRow, Store};
use cqrs_es::{Aggregate as _, DomainEvent as _};
use lru::LruCache;
use rayon::prelude::*;
use saoma_domain::ids::{CreditCode, PlanId};
use saoma_domain::inspection::{
    Inspection, InspectionCommand, InspectionError, InspectionEvent, InspectionKind,
    InspectionRequest,
};
use saoma_domain::keys::Notary;
use saoma_domain::seal::{parse_stored, Sealed};
use std::collections::{BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// Active planned inspections per plan and enterprise, to judge plan frequency.
pub type PlanUsage = HashMap<(PlanId, CreditCode), BTreeSet<Uuid>>;

/// What one command came to.
pub type Outcome = Result<Vec<Sealed<InspectionEvent>>, WriteError>;

#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Refused(#[from] InspectionError),
    #[error("{0}")]
    Internal(String),
}

/// Most commands executed as one group.
const MAX_GROUP: usize = 1024;
/// Inspection states kept between groups.
const CACHE_SIZE: usize = 200_000;
/// Streams in a group from which they are decided on all cores rather than one by one.
const PARALLEL_FROM: usize = 8;
/// How often a single command is retried when other writers keep taking its position.
const CONFLICT_RETRIES: usize = 5;

struct Job {
    requests: Vec<InspectionRequest>,
    reply: oneshot::Sender<Vec<Outcome>>,
}

/// A handle to the writer task.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task over `store`, with the plan usage found in it.
    pub fn spawn(store: Store, notary: Arc<dyn Notary>, usage: PlanUsage) -> Self {
        // Bounded: when the store is slow, callers wait here instead of piling up memory.
        let (jobs, rx) = mpsc::channel(256);
        let task = Task {
            store,
            notary,
            usage,
            cache: LruCache::new(NonZeroUsize::new(CACHE_SIZE).expect("non-zero")),
        };
        tokio::spawn(task.run(rx));
        Writer { jobs }
    }

    /// Executes `requests` in order; returns one outcome per request.
    pub async fn execute(&self, requests: Vec<InspectionRequest>) -> Vec<Outcome> {
        self.enqueue(requests).await.wait().await
    }

    /// Queues `requests` (waiting while the queue is full: backpressure) and returns at once;
    /// queued requests are executed in the order they were queued.
    pub async fn enqueue(&self, requests: Vec<InspectionRequest>) -> Written {
        let n = requests.len();
        let (reply, answer) = oneshot::channel();
        let answer = match self.jobs.send(Job { requests, reply }).await {
            Ok(()) => Some(answer),
            Err(_) => None,
        };
        Written { n, answer }
    }
}

/// The outcomes of queued requests, once the writer has executed them.
pub struct Written {
    n: usize,
    answer: Option<oneshot::Receiver<Vec<Outcome>>>,
}

impl Written {
    pub async fn wait(self) -> Vec<Outcome> {
        let stopped = || vec![Err(WriteError::Internal("the writer has stopped".into())); self.n];
        match self.answer {
            Some(answer) => answer.await.unwrap_or_else(|_| stopped()),
            None => stopped(),
        }
    }
}

struct Task {
    store: Store,
    notary: Arc<dyn Notary>,
    usage: PlanUsage,
    cache: LruCache<Uuid, Inspection>,
}

/// A group whose events are being appended while the writer decides the next one.
struct InFlight {
    requests: Vec<InspectionRequest>,
    outcomes: Vec<Outcome>,
    ids: BTreeSet<Uuid>,
    replies: Vec<(usize, oneshot::Sender<Vec<Outcome>>)>,
    append: tokio::task::JoinHandle<Result<(), AppendError>>,
}

impl Task {
    /// Executes queued jobs group by group, pipelined: while one group's append is in flight
    /// the next group is decided and sealed on the states it will leave. Its states are cached
    /// at once; if the append fails, they are forgotten and the next group is decided again
    /// from the store, so nothing built on a failed append is ever stored. A group with a
    /// planned code waits for the append in flight, as plan usage counts only what is stored.
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut in_flight: Option<InFlight> = None;
        loop {
            let first = match in_flight.is_some() {
                false => rx.recv().await,
                true => match rx.try_recv() {
                    Ok(job) => Some(job),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        // Nothing to overlap with: finish the append in flight first.
                        if let Some(group) = in_flight.take() {
                            self.land(group).await;
                        }
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                },
            };
            let Some(first) = first else {
                if let Some(group) = in_flight.take() {
                    self.land(group).await;
                }
                return;
            };
            let mut jobs = vec![first];
            let mut count = jobs[0].requests.len();
            while count < MAX_GROUP {
                match rx.try_recv() {
                    Ok(job) => {
                        count += job.requests.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            let mut requests = Vec::with_capacity(count);
            let mut replies = Vec::with_capacity(jobs.len());
            for job in jobs {
                replies.push((job.requests.len(), job.reply));
                requests.extend(job.requests);
            }
            if requests.iter().any(is_planned_issue) {
                if let Some(group) = in_flight.take() {
                    self.land(group).await;
                }
            }
            let decided = self.decide_group(&requests).await;
            let previous_landed = match in_flight.take() {
                Some(group) => self.land(group).await,
                None => true,
            };
            match decided {
                Ok(decided) if previous_landed => {
                    let (ids, outcomes, rows) =
                        (decided.ids.clone(), decided.outcomes, decided.rows);
                    for (id, state) in decided.states {
                        self.cache.put(id, state);
                    }
                    let store = self.store.clone();
                    in_flight = Some(InFlight {
                        requests,
                        outcomes,
                        ids,
                        replies,
                        append: tokio::spawn(async move { timed_append(&store, rows).await }),
                    });
                }
                // Decided on the states of an append that failed, or loading failed: decide
                // again, from the store, without overlap.
                decided => {
                    if let Ok(d) = &decided {
                        self.forget(&d.ids);
                    }
                    let outcomes = self.execute_group(requests).await;
                    answer(replies, outcomes);
                }
            }
        }
    }

    /// Waits for a group's append and answers its jobs; `false` when it stored nothing (its
    /// cached states are then forgotten and its requests executed again, one by one on a
    /// conflict).
    async fn land(&mut self, group: InFlight) -> bool {
        let InFlight {
            requests,
            outcomes,
            ids,
            replies,
            append,
        } = group;
        let appended = append.await.unwrap_or_else(|e| {
            Err(AppendError::Store(crate::store::StoreError::Corrupt(
                format!("the append task failed: {e}"),
            )))
        });
        match appended {
            Ok(()) => {
                self.track(&requests, &outcomes);
                answer(replies, outcomes);
                true
            }
            Err(e) => {
                self.forget(&ids);
                let outcomes = self.after_failed_append(requests, e).await;
                answer(replies, outcomes);
                false
            }
        }
    }

    async fn execute_group(&mut self, requests: Vec<InspectionRequest>) -> Vec<Outcome> {
        match self.try_group(&requests).await {
            Ok(outcomes) => outcomes,
            Err(e) => self.after_failed_append(requests, e).await,
        }
    }

    /// The outcomes of a group whose append (or load) failed with `e`: on a conflict with
    /// another writer, each request executed alone from fresh state; else an internal error.
    async fn after_failed_append(
        &mut self,
        requests: Vec<InspectionRequest>,
        e: AppendError,
    ) -> Vec<Outcome> {
        match e {
            AppendError::Conflict => {
                metrics::counter!("saoma_writer_conflicts_total").increment(1);
                let mut outcomes = Vec::with_capacity(requests.len());
                for request in requests {
                    outcomes.push(self.execute_alone(request).await);
                }
                outcomes
            }
            AppendError::Store(e) => {
                tracing::error!(error = %e, "writing a group of commands failed");
                vec![Err(WriteError::Internal(e.to_string())); requests.len()]
            }
        }
    }

    async fn execute_alone(&mut self, request: InspectionRequest) -> Outcome {
        for _ in 0..CONFLICT_RETRIES {
            match self.try_group(std::slice::from_ref(&request)).await {
                Ok(mut outcome) => return outcome.pop().expect("one outcome"),
                Err(AppendError::Conflict) => continue,
                Err(AppendError::Store(e)) => return Err(WriteError::Internal(e.to_string())),
            }
        }
        Err(WriteError::Internal(
            "the stream kept changing under concurrent writers".into(),
        ))
    }

    /// Decides and seals every request on cached or freshly loaded state, then appends all
    /// events at once. On any error nothing is stored and the touched states leave the cache.
    async fn try_group(
        &mut self,
        requests: &[InspectionRequest],
    ) -> Result<Vec<Outcome>, AppendError> {
        let decided = self.decide_group(requests).await?;
        if let Err(e) = timed_append(&self.store, decided.rows).await {
            self.forget(&decided.ids);
            return Err(e);
        }
        for (id, state) in decided.states {
            self.cache.put(id, state);
        }
        self.track(requests, &decided.outcomes);
        Ok(decided.outcomes)
    }

    /// Plan usage after a group's events are stored.
    fn track(&mut self, requests: &[InspectionRequest], outcomes: &[Outcome]) {
        for (request, outcome) in requests.iter().zip(outcomes) {
            for e in outcome.iter().flatten() {
                track_plan_usage(&mut self.usage, &e.event, request.inspection_id);
            }
        }
    }

    /// Loads the states a group needs (taking them out of the cache, else from the store) and
    /// decides and seals every request on them; stores nothing and returns the states after
    /// the group, for the caller to cache once the group is stored.
    ///
    /// Streams are independent, so the inspections of a group are decided and sealed in
    /// parallel (hashing and signing are most of the work), each one's requests in order.
    /// Inspections with a planned code in the group go first, one request at a time in group
    /// order, since they share the plans' visit counts.
    async fn decide_group(
        &mut self,
        requests: &[InspectionRequest],
    ) -> Result<DecidedGroup, AppendError> {
        let started = std::time::Instant::now();
        let ids: BTreeSet<Uuid> = requests.iter().map(|r| r.inspection_id).collect();
        let mut states = self.states(&ids).await.inspect_err(|_| self.forget(&ids))?;
        let loaded = std::time::Instant::now();
        metrics::histogram!("saoma_writer_seconds", "phase" => "load")
            .record((loaded - started).as_secs_f64());

        let mut decided: Vec<Option<Decided>> = Vec::new();
        decided.resize_with(requests.len(), || None);
        let planned: BTreeSet<Uuid> = requests
            .iter()
            .filter(|r| is_planned_issue(r))
            .map(|r| r.inspection_id)
            .collect();
        // Planned visits taken by codes issued earlier in this same group.
        let mut taken: HashMap<(PlanId, CreditCode), u32> = HashMap::new();
        for (i, request) in requests.iter().enumerate() {
            if !planned.contains(&request.inspection_id) {
                continue;
            }
            let mut request = request.clone();
            let plan_key = self.judge_plan_use(&mut request, &taken);
            let state = states.entry(request.inspection_id).or_default();
            let result = decide(state, request, self.notary.as_ref());
            if let (Some(key), Ok((events, _))) = (plan_key, &result) {
                if issued(events) {
                    *taken.entry(key).or_default() += 1;
                }
            }
            decided[i] = Some(result);
        }
        let mut work: HashMap<Uuid, (Inspection, Vec<usize>)> = HashMap::new();
        for (i, request) in requests.iter().enumerate() {
            let id = request.inspection_id;
            if !planned.contains(&id) {
                let (_, indexes) = work
                    .entry(id)
                    .or_insert_with(|| (states.remove(&id).unwrap_or_default(), Vec::new()));
                indexes.push(i);
            }
        }
        let notary = self.notary.as_ref();
        let decide_stream = |(id, (mut state, indexes)): (Uuid, (Inspection, Vec<usize>))| {
            let results = indexes
                .into_iter()
                .map(|i| (i, decide(&mut state, requests[i].clone(), notary)))
                .collect();
            (id, state, results)
        };
        // A few streams are quicker decided here than handed to the pool.
        let done: Vec<DecidedStream> = if work.len() < PARALLEL_FROM {
            work.into_iter().map(decide_stream).collect()
        } else {
            crate::parallel::run(|| work.into_par_iter().map(decide_stream).collect())
        };
        for (id, state, results) in done {
            states.insert(id, state);
            for (i, result) in results {
                decided[i] = Some(result);
            }
        }

        let mut outcomes = Vec::with_capacity(requests.len());
        let mut rows = Vec::new();
        for result in decided {
            match result.expect("every request decided") {
                Ok((events, mut sealed_rows)) => {
                    rows.append(&mut sealed_rows);
                    outcomes.push(Ok(events));
                }
                Err(e @ WriteError::Internal(_)) => {
                    return Err(AppendError::Store(crate::store::StoreError::Corrupt(
                        e.to_string(),
                    )));
                }
                Err(refused) => outcomes.push(Err(refused)),
            }
        }
        metrics::histogram!("saoma_writer_seconds", "phase" => "decide")
            .record(loaded.elapsed().as_secs_f64());
        Ok(DecidedGroup {
            ids,
            states,
            outcomes,
            rows,
        })
    }

    /// For a planned code, fills in how many of the plan's visits this enterprise has used.
    fn judge_plan_use(
        &self,
        request: &mut InspectionRequest,
        taken: &HashMap<(PlanId, CreditCode), u32>,
    ) -> Option<(PlanId, CreditCode)> {
        let InspectionCommand::IssueCode { command, facts } = &mut request.command else {
            return None;
        };
        let InspectionKind::Planned { plan } = &command.kind else {
            return None;
        };
        let key = (plan.clone(), command.enterprise.clone());
        if let Some(plan_use) = &mut facts.plan {
            plan_use.used = self.usage.get(&key).map_or(0, |s| s.len() as u32)
                + taken.get(&key).copied().unwrap_or(0);
        }
        Some(key)
    }

    fn forget(&mut self, ids: &BTreeSet<Uuid>) {
        for id in ids {
            self.cache.pop(id);
        }
    }

    /// The current state of each stream: from the cache, else loaded (all missing ones in one
    /// query). Streams with no events start from the default state.
    async fn states(
        &mut self,
        ids: &BTreeSet<Uuid>,
    ) -> Result<HashMap<Uuid, Inspection>, AppendError> {
        let mut states = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            // Taken out, not copied: a group puts back what it stored, and what it did not
            // store must not stay cached anyway.
            match self.cache.pop(id) {
                Some(state) => {
                    states.insert(*id, state);
                }
                None => missing.push(id.to_string()),
            }
        }
        if missing.is_empty() {
            return Ok(states);
        }
        let loaded = self.store.load_streams(Inspection::TYPE, &missing).await?;
        for (id, rows) in loaded {
            let mut state = Inspection::default();
            for row in rows {
                let event: Sealed<InspectionEvent> = parse_stored(&row.payload).map_err(|e| {
                    AppendError::Store(crate::store::StoreError::Corrupt(e.to_string()))
                })?;
                state.apply(event);
            }
            let id: Uuid = id.parse().map_err(|_| {
                AppendError::Store(crate::store::StoreError::Corrupt(format!("stream id {id}")))
            })?;
            states.insert(id, state);
        }
        Ok(states)
    }
}

/// Appends `rows`, timing it for the `saoma_writer_seconds{phase="append"}` histogram.
async fn timed_append(store: &Store, rows: Vec<NewRow>) -> Result<(), AppendError> {
    let started = std::time::Instant::now();
    let appended = store.append(rows).await;
    metrics::histogram!("saoma_writer_seconds", "phase" => "append")
        .record(started.elapsed().as_secs_f64());
    appended
}

/// A group decided and sealed, not yet stored.
struct DecidedGroup {
    ids: BTreeSet<Uuid>,
    /// Every touched stream's state after the group.
    states: HashMap<Uuid, Inspection>,
    outcomes: Vec<Outcome>,
    rows: Vec<NewRow>,
}

/// Answers each job with its share of `outcomes`, in order.
fn answer(replies: Vec<(usize, oneshot::Sender<Vec<Outcome>>)>, outcomes: Vec<Outcome>) {
    let mut outcomes = outcomes.into_iter();
    for (size, reply) in replies {
        // A caller that went away (timeout, shutdown) no longer needs its answer.
        let _ = reply.send(outcomes.by_ref().take(size).collect());
    }
}

/// One request decided: its sealed events with their rows, or why not.
type Decided = Result<(Vec<Sealed<InspectionEvent>>, Vec<NewRow>), WriteError>;

/// One stream's requests decided: its new state, and each request's index and result.
type DecidedStream = (Uuid, Inspection, Vec<(usize, Decided)>);

/// Decides and seals `request` on `state` (which advances), and makes the rows to store.
fn decide(state: &mut Inspection, request: InspectionRequest, notary: &dyn Notary) -> Decided {
    let (events, rows) = state
        .execute_stored(request, notary)?
        .into_iter()
        .map(|(event, text)| {
            let row = row(&event, text);
            (event, row)
        })
        .unzip();
    Ok((events, rows))
}

fn is_planned_issue(request: &InspectionRequest) -> bool {
    matches!(
        &request.command,
        InspectionCommand::IssueCode { command, .. }
            if matches!(command.kind, InspectionKind::Planned { .. })
    )
}

fn issued(events: &[Sealed<InspectionEvent>]) -> bool {
    events
        .iter()
        .any(|e| matches!(e.event, InspectionEvent::CodeIssued { .. }))
}

/// The row that stores `event`, whose stored text is `text`.
fn row(event: &Sealed<InspectionEvent>, text: String) -> NewRow {
    NewRow {
        aggregate_type: Inspection::TYPE,
        aggregate_id: event
            .stream
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        sequence: event.sequence as i64,
        event_type: event.event_type(),
        event_version: event.event_version(),
        // Its RFC 8785 bytes, as registry events are stored too: a verifier then reads the
        // hash input straight off the text (`saoma_domain::raw`).
        payload: text,
    }
}

/// Keeps plan usage current: planned codes count until revoked.
pub fn track_plan_usage(usage: &mut PlanUsage, event: &InspectionEvent, id: Uuid) {
    match event {
        InspectionEvent::CodeIssued {
            kind: InspectionKind::Planned { plan },
            enterprise,
            ..
        } => {
            usage
                .entry((plan.clone(), enterprise.credit_code.clone()))
                .or_default()
                .insert(id);
        }
        InspectionEvent::CodeRevoked { .. } => {
            for set in usage.values_mut() {
                set.remove(&id);
            }
        }
        _ => {}
    }
}
