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

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        while let Some(first) = rx.recv().await {
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
            let sizes: Vec<usize> = jobs.iter().map(|j| j.requests.len()).collect();
            let (requests, replies): (Vec<_>, Vec<_>) =
                jobs.into_iter().map(|j| (j.requests, j.reply)).unzip();
            let mut outcomes = self
                .execute_group(requests.into_iter().flatten().collect())
                .await
                .into_iter();
            for (size, reply) in sizes.into_iter().zip(replies) {
                // A caller that went away (timeout, shutdown) no longer needs its answer.
                let _ = reply.send(outcomes.by_ref().take(size).collect());
            }
        }
    }

    async fn execute_group(&mut self, requests: Vec<InspectionRequest>) -> Vec<Outcome> {
        match self.try_group(&requests).await {
            Ok(outcomes) => outcomes,
            Err(AppendError::Conflict) => {
                metrics::counter!("saoma_writer_conflicts_total").increment(1);
                let mut outcomes = Vec::with_capacity(requests.len());
                for request in requests {
                    outcomes.push(self.execute_alone(request).await);
                }
                outcomes
            }
            Err(AppendError::Store(e)) => {
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
    ///
    /// Streams are independent, so the inspections of a group are decided and sealed in
    /// parallel (hashing and signing are most of the work), each one's requests in order.
    /// Inspections with a planned code in the group go first, one request at a time in group
    /// order, since they share the plans' visit counts.
    async fn try_group(
        &mut self,
        requests: &[InspectionRequest],
    ) -> Result<Vec<Outcome>, AppendError> {
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
        let done: Vec<DecidedStream> = work
            .into_par_iter()
            .map(|(id, (mut state, indexes))| {
                let results = indexes
                    .into_iter()
                    .map(|i| (i, decide(&mut state, requests[i].clone(), notary)))
                    .collect();
                (id, state, results)
            })
            .collect();
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
                    self.forget(&ids);
                    return Err(AppendError::Store(crate::store::StoreError::Corrupt(
                        e.to_string(),
                    )));
                }
                Err(refused) => outcomes.push(Err(refused)),
            }
        }
        let sealed = std::time::Instant::now();
        metrics::histogram!("saoma_writer_seconds", "phase" => "decide")
            .record((sealed - loaded).as_secs_f64());
        let appended = self.store.append(&rows).await;
        metrics::histogram!("saoma_writer_seconds", "phase" => "append")
            .record(sealed.elapsed().as_secs_f64());
        if let Err(e) = appended {
            self.forget(&ids);
            return Err(e);
        }
        for (id, state) in states {
            self.cache.put(id, state);
        }
        for (request, outcome) in requests.iter().zip(&outcomes) {
            for e in outcome.iter().flatten() {
                track_plan_usage(&mut self.usage, &e.event, request.inspection_id);
            }
        }
        Ok(outcomes)
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
            match self.cache.get(id) {
                Some(state) => {
                    states.insert(*id, state.clone());
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

/// One request decided: its sealed events with their rows, or why not.
type Decided = Result<(Vec<Sealed<InspectionEvent>>, Vec<NewRow>), WriteError>;

/// One stream's requests decided: its new state, and each request's index and result.
type DecidedStream = (Uuid, Inspection, Vec<(usize, Decided)>);

/// Decides and seals `request` on `state` (which advances), and makes the rows to store.
fn decide(state: &mut Inspection, request: InspectionRequest, notary: &dyn Notary) -> Decided {
    let events = state.execute(request, notary)?;
    let rows = events
        .iter()
        .map(row)
        .collect::<Result<_, _>>()
        .map_err(|e| WriteError::Internal(format!("serialising an event: {e}")))?;
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

fn row(event: &Sealed<InspectionEvent>) -> Result<NewRow, serde_json::Error> {
    Ok(NewRow {
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
        payload: serde_json::to_string(event)?,
    })
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
