//! The command service: authenticates signed envelopes, looks up the registry facts a rule
//! needs, executes commands on the aggregates and answers with an outcome or a refusal.
//! HTTP (and later NATS) handlers are thin wrappers around this.

use crate::config::Settings;
use crate::log::tree::LogTree;
use crate::registry_follow::RegistryFollower;
use crate::registry_view::RegistryView;
use crate::store::{Store, StoreError};
use crate::token::{TokenCheck, TokenKey};
use crate::writer::{
    track_plan_usage, Outcome as WriteOutcome, PlanUsage, WriteError, Writer, Written,
};
use chrono::{DateTime, Utc};
use cqrs_es::{AggregateError, DomainEvent as _};
use saoma_domain::envelope::{authenticate, AuthError, SignedEnvelope, TimePolicy};
use saoma_domain::ids::OfficerRef;
use saoma_domain::inspection::{
    InspectionCommand, InspectionError, InspectionEvent, InspectionKind, InspectionRequest,
    IssueCode, IssueFacts, OfficerCommand, OfficerFact, PlanUse, ScanRefusal,
    TokenCheck as DomainToken,
};
use saoma_domain::keys::{KeyId, Notary, PublicKey};
use saoma_domain::registry::{
    Registry, RegistryCommand, RegistryError, RegistryEvent, RegistryRequest,
};
use saoma_domain::seal::{parse_stored, verify_stored, Actor, Chain, EventMeta, SealError, Sealed};
use saoma_projections::code_view::CodeView;
use saoma_projections::rules::RuleBook;
use serde::{Deserialize as _, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// One committed event, as reported back to whoever caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Committed {
    pub sequence: u64,
    pub event_type: String,
    pub hash: String,
}

impl<E: cqrs_es::DomainEvent> From<&Sealed<E>> for Committed {
    fn from(s: &Sealed<E>) -> Self {
        Committed {
            sequence: s.sequence,
            event_type: s.event.event_type(),
            hash: s.hash.to_hex(),
        }
    }
}

/// An accepted officer command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub inspection_id: Uuid,
    pub events: Vec<Committed>,
    /// Accepted, but later than the policy's "late" threshold.
    pub late: bool,
    /// For issued codes: the token and the URL the QR code encodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Why something was not done. Each carries a stable machine-readable code.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{message}: {detail}")]
    Invalid {
        code: &'static str,
        message: &'static str,
        detail: String,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Inspection(#[from] InspectionError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The scan was refused and the attempt recorded as `committed`.
    #[error("{}", reason.message())]
    ScanRefused {
        reason: ScanRefusal,
        committed: Committed,
    },
    /// The command id was already executed on this inspection; nothing new was stored.
    /// `original`: the events its first execution stored.
    #[error("重复提交的指令")]
    Duplicate {
        inspection_id: Uuid,
        original: Vec<Sealed<InspectionEvent>>,
    },
    #[error("检查码无效")]
    UnknownCode,
    #[error("检查不存在")]
    UnknownInspection,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Invalid { code, .. } => code,
            Refusal::Auth(e) => e.code(),
            Refusal::Inspection(e) => e.code(),
            Refusal::Registry(e) => e.code(),
            Refusal::ScanRefused { reason, .. } => reason.code(),
            Refusal::Duplicate { .. } => "duplicate_command",
            Refusal::UnknownCode => "unknown_code",
            Refusal::UnknownInspection => "unknown_inspection",
            Refusal::Internal(_) => "internal",
        }
    }

    pub fn invalid(detail: impl ToString) -> Self {
        Refusal::Invalid {
            code: "invalid_command",
            message: "指令格式错误",
            detail: detail.to_string(),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Internal(e.to_string())
    }
}

fn from_aggregate<E: std::error::Error + Into<Refusal>>(e: AggregateError<E>) -> Refusal {
    match e {
        AggregateError::UserError(e) => e.into(),
        other => Refusal::Internal(other.to_string()),
    }
}

/// A checked batch queued at the writer: [`App::enqueue_batch`] makes it,
/// [`App::finish_batch`] answers it.
pub struct PendingBatch {
    /// Per envelope: its refusal, or what the request it became needs for its answer.
    answers: Vec<Result<Pending, Refusal>>,
    written: Written,
}

struct Pending {
    inspection_id: Uuid,
    command_id: Option<Uuid>,
    late: bool,
}

pub struct App {
    store: Store,
    notary: Arc<dyn Notary>,
    notary_public: PublicKey,
    tokens: TokenKey,
    registry: Arc<RwLock<RegistryView>>,
    /// The log position before the registries were loaded at start: changes made by other
    /// processes after it are followed (`registry_follow`).
    registry_loaded_at: u64,
    writer: Writer,
    /// The warning rule book; its rule sets also give each region's code validity.
    rules: RuleBook,
    policy: TimePolicy,
    public_base_url: String,
    log_tree: LogTree,
}

impl App {
    /// Builds the service over an opened store: loads the registries and plan usage from it and
    /// starts the writer (so it must run inside a tokio runtime).
    pub async fn new(
        store: Store,
        notary: ed25519_dalek::SigningKey,
        tokens: TokenKey,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let notary_public = PublicKey(notary.verifying_key());
        let notary: Arc<dyn Notary> = Arc::new(notary);
        // Read first: a change committed while the registries load is then followed again,
        // never missed.
        let registry_loaded_at = store.max_position().await?;
        let mut registry = RegistryView::default();
        for row in store
            .all_of_type(<Registry as cqrs_es::Aggregate>::TYPE)
            .await?
        {
            let event: Sealed<RegistryEvent> = parse_stored(&row.payload)?;
            registry.apply(&row.aggregate_id, &event);
        }
        let mut usage = PlanUsage::new();
        for row in store
            .of_event_types("Inspection", ["CodeIssued", "CodeRevoked"])
            .await?
        {
            let event: Sealed<InspectionEvent> = parse_stored(&row.payload)?;
            track_plan_usage(&mut usage, &event.event, row.aggregate_id.parse()?);
        }
        Ok(App {
            writer: Writer::spawn(store.clone(), notary.clone(), usage),
            log_tree: LogTree::new(
                store.clone(),
                notary.clone(),
                notary_public,
                settings.log_origin(),
            ),
            store,
            notary,
            notary_public,
            tokens,
            registry: Arc::new(RwLock::new(registry)),
            registry_loaded_at,
            rules: crate::rules::load(settings)?,
            policy: settings.time_policy(),
            public_base_url: settings.public_base_url(),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The global log's Merkle tree and the signer of its checkpoints.
    pub fn log_tree(&self) -> &LogTree {
        &self.log_tree
    }

    pub fn notary_key(&self) -> (KeyId, PublicKey) {
        (self.notary_public.key_id(), self.notary_public)
    }

    pub fn registry(&self) -> std::sync::RwLockReadGuard<'_, RegistryView> {
        self.registry.read().expect("registry lock")
    }

    /// What reads other processes' registry changes into this one's view, from
    /// [`App::registry_loaded_at`] on.
    pub fn registry_follower(&self) -> RegistryFollower {
        RegistryFollower {
            store: self.store.clone(),
            view: self.registry.clone(),
        }
    }

    /// The log position before the registries were loaded at start.
    pub fn registry_loaded_at(&self) -> u64 {
        self.registry_loaded_at
    }

    /// The base of the URLs the QR codes encode (no trailing slash).
    pub fn public_base_url(&self) -> &str {
        &self.public_base_url
    }

    pub fn code_url(&self, id: &Uuid) -> (String, String) {
        let token = self.tokens.token_for(id);
        let url = format!("{}/c/{}", self.public_base_url, token);
        (token, url)
    }

    /// Executes a batch of signed envelopes (as received, with their receive times) and answers
    /// each, in order. Commands on the same inspection are executed in the order given; the
    /// batch is checked here and written by the writer in as few transactions as it can.
    pub async fn submit_batch(
        &self,
        batch: Vec<(Value, DateTime<Utc>)>,
    ) -> Vec<Result<Accepted, Refusal>> {
        let pending = self.enqueue_batch(batch).await;
        self.finish_batch(pending).await
    }

    /// The first half of [`App::submit_batch`]: checks every envelope and queues the good ones
    /// at the writer, which executes queued batches in the order they were queued. The caller
    /// may check and queue the next batch while this one is written, then [`finish_batch`]
    /// each in turn.
    ///
    /// [`finish_batch`]: App::finish_batch
    pub async fn enqueue_batch(&self, batch: Vec<(Value, DateTime<Utc>)>) -> PendingBatch {
        // An officer registered through another process sharing the store is not in this
        // process's view yet: look for it before refusing.
        let unknown: BTreeSet<String> = batch
            .iter()
            .filter_map(|(raw, _)| {
                serde_json::from_value::<OfficerRef>(raw.get("officer")?.clone()).ok()
            })
            .map(|officer| officer.key())
            .filter(|key| self.registry().officer(key).is_none())
            .collect();
        for key in unknown {
            if let Err(e) = self.refresh_entity(&format!("officer:{key}")).await {
                tracing::warn!(%key, error = %e, "could not refresh an officer from the store");
            }
        }
        let prepared = self.prepare_all(batch);
        let mut requests = Vec::with_capacity(prepared.len());
        let mut answers = Vec::with_capacity(prepared.len());
        for p in prepared {
            answers.push(p.map(|(request, late)| {
                let key = Pending {
                    inspection_id: request.inspection_id,
                    command_id: request.meta.command_id,
                    late,
                };
                requests.push(request);
                key
            }));
        }
        let written = self.writer.enqueue(requests).await;
        PendingBatch { answers, written }
    }

    /// The second half of [`App::submit_batch`]: waits for the writer and answers every
    /// envelope of the batch, in order.
    pub async fn finish_batch(&self, pending: PendingBatch) -> Vec<Result<Accepted, Refusal>> {
        let PendingBatch { answers, written } = pending;
        let keys: Vec<(Uuid, Option<Uuid>)> = answers
            .iter()
            .flatten()
            .map(|p| (p.inspection_id, p.command_id))
            .collect();
        let mut written = self.answer(keys, written.wait().await).await.into_iter();
        answers
            .into_iter()
            .map(|answer| {
                let pending = answer?;
                written
                    .next()
                    .expect("one outcome per request")
                    .map(|events| self.accepted(pending.inspection_id, &events, pending.late))
            })
            .collect()
    }

    /// Parses and authenticates every envelope of a batch, in order. Signature checks are most
    /// of the work, so a batch of more than a few is spread over all cores (rayon's pool).
    fn prepare_all(
        &self,
        batch: Vec<(Value, DateTime<Utc>)>,
    ) -> Vec<Result<(InspectionRequest, bool), Refusal>> {
        use rayon::prelude::*;
        const PARALLEL_FROM: usize = 8;
        if batch.len() < PARALLEL_FROM {
            return batch
                .into_iter()
                .map(|(raw, received_at)| self.prepare(raw, received_at))
                .collect();
        }
        crate::parallel::run(|| {
            batch
                .into_par_iter()
                .with_min_len(PARALLEL_FROM / 2)
                .map(|(raw, received_at)| self.prepare(raw, received_at))
                .collect()
        })
    }

    /// Executes one officer's signed envelope, exactly as received.
    pub async fn submit_signed(
        &self,
        raw: Value,
        received_at: DateTime<Utc>,
    ) -> Result<Accepted, Refusal> {
        self.submit_batch(vec![(raw, received_at)])
            .await
            .pop()
            .expect("one outcome")
    }

    /// Parses and authenticates an envelope and gathers the facts its command needs.
    fn prepare(
        &self,
        raw: Value,
        received_at: DateTime<Utc>,
    ) -> Result<(InspectionRequest, bool), Refusal> {
        let envelope =
            SignedEnvelope::<OfficerCommand>::deserialize(&raw).map_err(Refusal::invalid)?;
        let auth = {
            let registry = self.registry();
            let officer = registry.officer(&envelope.officer.key());
            authenticate(&envelope, &raw, officer, received_at, &self.policy)?
        };
        let meta = EventMeta {
            recorded_at: received_at,
            device_time: Some(auth.device_time),
            late: auth.late,
            actor: Actor::Officer {
                officer: auth.officer,
                key_id: auth.key_id,
            },
            command_id: Some(envelope.command_id),
        };
        let inspection_id = envelope.command.inspection_id();
        let command = match envelope.command {
            OfficerCommand::IssueCode(issue) => {
                let facts = self.issue_facts(&issue);
                InspectionCommand::IssueCode {
                    command: issue,
                    facts,
                }
            }
            OfficerCommand::ShowCode { .. } => InspectionCommand::ShowCode,
            OfficerCommand::ScanEnterpriseCode { enterprise, .. } => {
                InspectionCommand::ScanEnterpriseCode { enterprise }
            }
            OfficerCommand::ReportResult { outcome, .. } => {
                InspectionCommand::ReportResult { outcome }
            }
            OfficerCommand::RevokeCode { reason, .. } => InspectionCommand::RevokeCode { reason },
        };
        Ok((
            InspectionRequest {
                inspection_id,
                command,
                meta,
                signed: Some(raw),
            },
            auth.late,
        ))
    }

    fn accepted(
        &self,
        inspection_id: Uuid,
        events: &[Sealed<InspectionEvent>],
        late: bool,
    ) -> Accepted {
        let issued = events
            .iter()
            .any(|e| matches!(e.event, InspectionEvent::CodeIssued { .. }));
        let (token, url) = if issued {
            let (t, u) = self.code_url(&inspection_id);
            (Some(t), Some(u))
        } else {
            (None, None)
        };
        Accepted {
            inspection_id,
            events: events.iter().map(Committed::from).collect(),
            late,
            token,
            url,
        }
    }

    fn issue_facts(&self, issue: &IssueCode) -> IssueFacts {
        let registry = self.registry();
        let plan = match &issue.kind {
            // The writer fills in the visits used, which only it knows for certain.
            InspectionKind::Planned { plan } => registry.plan(plan).map(|p| PlanUse {
                plan: p.clone(),
                used: 0,
            }),
            _ => None,
        };
        let enterprise = registry.enterprise(&issue.enterprise).cloned();
        // The enterprise's region's rule set says how long its codes are valid (Qinghai: 24 h
        // from 00:00); an unknown enterprise is refused whatever the window.
        let validity = match &enterprise {
            Some(e) => self.rules.for_region(e.region.as_str()).validity_rule(),
            None => self.rules.default_set().validity_rule(),
        };
        IssueFacts {
            agency: registry.agency(&issue.agency).cloned(),
            enterprise,
            items: issue
                .items
                .iter()
                .map(|i| registry.item(i).cloned())
                .collect(),
            officers: issue
                .officers
                .iter()
                .map(|r| {
                    registry.officer(&r.key()).map(|o| OfficerFact {
                        key: o.key(),
                        name: o.profile.name.clone(),
                        agency: o.profile.agency.clone(),
                        status: o.status,
                    })
                })
                .collect(),
            partners: issue
                .joint_partners
                .iter()
                .map(|a| registry.agency(a).cloned())
                .collect(),
            plan,
            validity,
        }
    }

    /// Executes requests through the writer and turns each outcome into the committed events
    /// or a refusal.
    async fn execute_many(
        &self,
        requests: Vec<InspectionRequest>,
    ) -> Vec<Result<Vec<Sealed<InspectionEvent>>, Refusal>> {
        let keys: Vec<(Uuid, Option<Uuid>)> = requests
            .iter()
            .map(|r| (r.inspection_id, r.meta.command_id))
            .collect();
        let outcomes = self.writer.execute(requests).await;
        self.answer(keys, outcomes).await
    }

    /// Turns the writer's outcomes for (inspection id, command id) into the committed events or
    /// a refusal: a duplicate command id answers with the original events, a refused scan with
    /// the recorded refusal.
    async fn answer(
        &self,
        keys: Vec<(Uuid, Option<Uuid>)>,
        outcomes: Vec<WriteOutcome>,
    ) -> Vec<Result<Vec<Sealed<InspectionEvent>>, Refusal>> {
        let mut answers = Vec::with_capacity(outcomes.len());
        for ((id, command_id), outcome) in keys.into_iter().zip(outcomes) {
            answers.push(match outcome {
                Err(WriteError::Refused(InspectionError::DuplicateCommand)) => match self.events(id).await {
                    Ok(events) => Err(Refusal::Duplicate {
                        inspection_id: id,
                        original: events.into_iter().filter(|e| e.meta.command_id == command_id).collect(),
                    }),
                    Err(e) => Err(e),
                },
                Err(WriteError::Refused(e)) => Err(e.into()),
                Err(WriteError::Internal(e)) => Err(Refusal::Internal(e)),
                Ok(events) => {
                    for e in &events {
                        metrics::counter!("saoma_events_committed_total", "type" => e.event.event_type()).increment(1);
                    }
                    match events.iter().find_map(|e| match &e.event {
                        InspectionEvent::ScanRefused { reason, .. } => Some((*reason, Committed::from(e))),
                        _ => None,
                    }) {
                        Some((reason, committed)) => Err(Refusal::ScanRefused { reason, committed }),
                        None => Ok(events),
                    }
                }
            });
        }
        answers
    }

    async fn execute_inspection(
        &self,
        request: InspectionRequest,
    ) -> Result<Vec<Sealed<InspectionEvent>>, Refusal> {
        self.execute_many(vec![request])
            .await
            .pop()
            .expect("one outcome")
    }

    /// The enterprise opens a code: records the scan (or the refused attempt) and shows the code.
    pub async fn scan(&self, token: &str, at: DateTime<Utc>) -> Result<CodeView, Refusal> {
        let (id, check) = match self.tokens.check(token) {
            TokenCheck::Malformed => return Err(Refusal::UnknownCode),
            TokenCheck::Genuine(id) => (id, DomainToken::Genuine),
            TokenCheck::Forged(id) => (id, DomainToken::Forged),
        };
        // A token naming no issued code is refused by the aggregate (`not_issued`).
        let request = self.public_request(id, InspectionCommand::ScanCode { token: check }, at);
        self.execute_inspection(request)
            .await
            .map_err(|e| match e {
                Refusal::Inspection(InspectionError::NotIssued) => Refusal::UnknownCode,
                e => e,
            })?;
        self.view(id, at).await
    }

    /// Shows a code without recording a scan.
    pub async fn code_view(&self, token: &str, now: DateTime<Utc>) -> Result<CodeView, Refusal> {
        let id = self.genuine(token)?;
        self.view(id, now).await
    }

    pub async fn rate(
        &self,
        token: &str,
        level: u8,
        comment: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<CodeView, Refusal> {
        let id = self.genuine(token)?;
        let request = self.public_request(id, InspectionCommand::GiveRating { level, comment }, at);
        self.execute_inspection(request).await?;
        self.view(id, at).await
    }

    pub async fn feedback(
        &self,
        token: &str,
        text: String,
        at: DateTime<Utc>,
    ) -> Result<CodeView, Refusal> {
        let id = self.genuine(token)?;
        let request = self.public_request(id, InspectionCommand::GiveFeedback { text }, at);
        self.execute_inspection(request).await?;
        self.view(id, at).await
    }

    fn genuine(&self, token: &str) -> Result<Uuid, Refusal> {
        match self.tokens.check(token) {
            TokenCheck::Genuine(id) => Ok(id),
            _ => Err(Refusal::UnknownCode),
        }
    }

    fn public_request(
        &self,
        id: Uuid,
        command: InspectionCommand,
        at: DateTime<Utc>,
    ) -> InspectionRequest {
        InspectionRequest {
            inspection_id: id,
            command,
            meta: EventMeta {
                recorded_at: at,
                device_time: None,
                late: false,
                actor: Actor::TokenHolder,
                command_id: None,
            },
            signed: None,
        }
    }

    async fn view(&self, id: Uuid, now: DateTime<Utc>) -> Result<CodeView, Refusal> {
        CodeView::fold(&self.events(id).await?, now).ok_or(Refusal::UnknownCode)
    }

    /// An inspection's events, typed.
    pub async fn events(&self, id: Uuid) -> Result<Vec<Sealed<InspectionEvent>>, Refusal> {
        self.store
            .stream("Inspection", &id.to_string())
            .await?
            .iter()
            .map(|row| parse_stored(&row.payload).map_err(|e| Refusal::Internal(e.to_string())))
            .collect()
    }

    /// An inspection's full stored trace with the result of checking every hash, link and
    /// signature.
    pub async fn trace(&self, id: Uuid) -> Result<Trace, Refusal> {
        let rows = self.store.stream("Inspection", &id.to_string()).await?;
        if rows.is_empty() {
            return Err(Refusal::UnknownInspection);
        }
        let (key_id, key) = self.notary_key();
        let mut chain = Chain::default();
        let mut broken = None;
        for row in &rows {
            match verify_stored(&row.payload, &chain, |k| (k == &key_id).then_some(key)) {
                Ok(hash) => chain.advance(chain.version + 1, hash),
                Err(e) => {
                    broken = Some(TraceBreak {
                        sequence: row.sequence,
                        error: e,
                    });
                    break;
                }
            }
        }
        Ok(Trace {
            inspection_id: id,
            verified: broken.is_none(),
            first_broken: broken,
            events: rows.into_iter().map(|r| r.payload).collect(),
        })
    }

    /// Reloads one registry entity (`officer:…`, `agency:…`, …) from the store.
    async fn refresh_entity(&self, entity: &str) -> Result<(), Refusal> {
        Ok(self.registry_follower().reload(entity).await?)
    }

    /// Executes one registry change by an administrator.
    pub async fn register(
        &self,
        command: RegistryCommand,
        admin: &str,
        at: DateTime<Utc>,
    ) -> Result<Vec<Committed>, Refusal> {
        let entity = command.entity();
        let request = RegistryRequest {
            command,
            meta: EventMeta {
                recorded_at: at,
                device_time: None,
                late: false,
                actor: Actor::Admin {
                    name: admin.to_string(),
                },
                command_id: None,
            },
        };
        let committed = self
            .store
            .execute::<Registry>(&entity, request, &self.notary)
            .await
            .map_err(from_aggregate)?;
        // Re-read the entity rather than apply only what this process committed: another
        // process sharing the store may have changed it.
        self.refresh_entity(&entity).await?;
        Ok(committed
            .iter()
            .map(|e| Committed::from(&e.payload))
            .collect())
    }
}

#[derive(Debug, Serialize)]
pub struct TraceBreak {
    pub sequence: i64,
    #[serde(serialize_with = "display")]
    pub error: SealError,
}

fn display<S: serde::Serializer>(e: &SealError, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&e.to_string())
}

#[derive(Debug, Serialize)]
pub struct Trace {
    pub inspection_id: Uuid,
    pub verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<TraceBreak>,
    pub events: Vec<Value>,
}
