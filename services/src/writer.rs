//! The single writer of inspection streams in this process: commands from HTTP handlers and
//! NATS batches queue here and are executed in groups (group commit) — each group loads the
//! streams it lacks in one query, decides and seals every command in order with the aggregate's
//! own `handle`, and appends all resulting events in one statement. Aggregate states stay cached
//! between groups. Another process writing the same stream shows up as a conflict on append;
//! the group is then replayed command by command from fresh state, so nothing is lost or
//! written twice.

use crate::store::{AppendError, NewRow, Store};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate as _, DomainEvent as _};
use lru::LruCache;
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
        let n = requests.len();
        let (reply, answer) = oneshot::channel();
        let stopped = || vec![Err(WriteError::Internal("the writer has stopped".into())); n];
        if self.jobs.send(Job { requests, reply }).await.is_err() {
            return stopped();
        }
        answer.await.unwrap_or_else(|_| stopped())
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
    async fn try_group(
        &mut self,
        requests: &[InspectionRequest],
    ) -> Result<Vec<Outcome>, AppendError> {
        let ids: BTreeSet<Uuid> = requests.iter().map(|r| r.inspection_id).collect();
        let mut states = self.states(&ids).await.inspect_err(|_| self.forget(&ids))?;
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut rows = Vec::new();
        // Planned visits taken by codes issued earlier in this same group.
        let mut taken: HashMap<(PlanId, CreditCode), u32> = HashMap::new();
        for request in requests {
            let mut request = request.clone();
            let plan_key = self.judge_plan_use(&mut request, &taken);
            let state = states.entry(request.inspection_id).or_default();
            let sink = EventSink::default();
            match state.handle(request, &self.notary, &sink).await {
                Ok(()) => {
                    let events = sink.collect().await;
                    if let Some(key) = plan_key.filter(|_| issued(&events)) {
                        *taken.entry(key).or_default() += 1;
                    }
                    for e in &events {
                        rows.push(row(e)?);
                    }
                    outcomes.push(Ok(events));
                }
                Err(e) => outcomes.push(Err(WriteError::Refused(e))),
            }
        }
        if let Err(e) = self.store.append(&rows).await {
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

fn issued(events: &[Sealed<InspectionEvent>]) -> bool {
    events
        .iter()
        .any(|e| matches!(e.event, InspectionEvent::CodeIssued { .. }))
}

fn row(event: &Sealed<InspectionEvent>) -> Result<NewRow, AppendError> {
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
        payload: serde_json::to_string(event).map_err(|e| AppendError::Store(e.into()))?,
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
