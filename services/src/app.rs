//! The command service: authenticates signed envelopes, looks up the registry facts a rule
//! needs, executes commands on the aggregates and answers with an outcome or a refusal.
//! HTTP (and later NATS) handlers are thin wrappers around this.

use crate::config::Settings;
use crate::registry_view::RegistryView;
use crate::store::{Store, StoreError};
use crate::token::{TokenCheck, TokenKey};
use chrono::{DateTime, Utc};
use cqrs_es::{AggregateError, DomainEvent as _, EventEnvelope};
use saoma_domain::envelope::{authenticate, AuthError, SignedEnvelope, TimePolicy};
use saoma_domain::ids::{CreditCode, PlanId};
use saoma_domain::inspection::{
    Inspection, InspectionCommand, InspectionError, InspectionEvent, InspectionKind,
    InspectionRequest, IssueCode, IssueFacts, OfficerCommand, OfficerFact, PlanUse, ScanRefusal,
    TokenCheck as DomainToken, ValidityRule,
};
use saoma_domain::keys::{KeyId, Notary, PublicKey};
use saoma_domain::registry::{
    Registry, RegistryCommand, RegistryError, RegistryEvent, RegistryRequest,
};
use saoma_domain::seal::{parse_stored, verify_stored, Actor, Chain, EventMeta, SealError, Sealed};
use saoma_projections::code_view::CodeView;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
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
    #[error("重复提交的指令")]
    Duplicate {
        inspection_id: Uuid,
        original: Vec<Committed>,
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

/// Active planned inspections per plan and enterprise, to judge plan frequency.
type PlanUsage = HashMap<(PlanId, CreditCode), BTreeSet<Uuid>>;

pub struct App {
    store: Store,
    notary: Arc<dyn Notary>,
    notary_public: PublicKey,
    tokens: TokenKey,
    registry: RwLock<RegistryView>,
    plan_usage: Mutex<PlanUsage>,
    /// Serialises planned issuance so two codes cannot both take a plan's last visit.
    issue_lock: tokio::sync::Mutex<()>,
    validity: ValidityRule,
    policy: TimePolicy,
    public_base_url: String,
}

impl App {
    /// Builds the service over an opened store, loading the registries and plan usage from it.
    pub async fn new(
        store: Store,
        notary: ed25519_dalek::SigningKey,
        tokens: TokenKey,
        settings: &Settings,
    ) -> anyhow::Result<Self> {
        let notary_public = PublicKey(notary.verifying_key());
        let app = App {
            store,
            notary: Arc::new(notary),
            notary_public,
            tokens,
            registry: RwLock::new(RegistryView::default()),
            plan_usage: Mutex::new(HashMap::new()),
            issue_lock: tokio::sync::Mutex::new(()),
            validity: settings.validity()?,
            policy: settings.time_policy(),
            public_base_url: settings.public_base_url(),
        };
        app.reload().await?;
        Ok(app)
    }

    /// Rebuilds the in-memory registry and plan usage from the store.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let mut view = RegistryView::default();
        for row in self
            .store
            .all_of_type(<Registry as cqrs_es::Aggregate>::TYPE)
            .await?
        {
            let event: Sealed<RegistryEvent> = parse_stored(&row.payload)?;
            view.apply(&row.aggregate_id, &event);
        }
        let mut usage = PlanUsage::new();
        for row in self
            .store
            .of_event_types("Inspection", ["CodeIssued", "CodeRevoked"])
            .await?
        {
            let event: Sealed<InspectionEvent> = parse_stored(&row.payload)?;
            track_plan_usage(&mut usage, &event.event, row.aggregate_id.parse()?);
        }
        *self.registry.write().expect("registry lock") = view;
        *self.plan_usage.lock().expect("plan lock") = usage;
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn notary_key(&self) -> (KeyId, PublicKey) {
        (self.notary_public.key_id(), self.notary_public)
    }

    pub fn registry(&self) -> std::sync::RwLockReadGuard<'_, RegistryView> {
        self.registry.read().expect("registry lock")
    }

    pub fn code_url(&self, id: &Uuid) -> (String, String) {
        let token = self.tokens.token_for(id);
        let url = format!("{}/c/{}", self.public_base_url, token);
        (token, url)
    }

    /// Executes a batch of signed envelopes (as received, with their receive times) and answers
    /// each, in order. Commands on the same inspection are executed in the order given.
    pub async fn submit_batch(&self, batch: Vec<(Value, DateTime<Utc>)>) -> Vec<Result<Accepted, Refusal>> {
        let mut outcomes = Vec::with_capacity(batch.len());
        for (raw, received_at) in batch {
            outcomes.push(self.submit_signed(raw, received_at).await);
        }
        outcomes
    }

    /// Executes an officer's signed envelope, exactly as received.
    pub async fn submit_signed(
        &self,
        raw: Value,
        received_at: DateTime<Utc>,
    ) -> Result<Accepted, Refusal> {
        let envelope: SignedEnvelope<OfficerCommand> =
            serde_json::from_value(raw.clone()).map_err(Refusal::invalid)?;
        let auth = {
            let registry = self.registry();
            let officer = registry.officer(&envelope.officer.key());
            authenticate(&envelope, &raw, officer, received_at, &self.policy)?
        };
        let inspection_id = envelope.command.inspection_id();
        let meta = EventMeta {
            recorded_at: received_at,
            device_time: Some(auth.device_time),
            late: auth.late,
            actor: Actor::Officer {
                officer: auth.officer.clone(),
                key_id: auth.key_id.clone(),
            },
            command_id: Some(envelope.command_id),
        };
        let (command, _guard) = match envelope.command {
            OfficerCommand::IssueCode(issue) => {
                let guard = match issue.kind {
                    InspectionKind::Planned { .. } => Some(self.issue_lock.lock().await),
                    _ => None,
                };
                let facts = self.issue_facts(&issue);
                (
                    InspectionCommand::IssueCode {
                        command: issue,
                        facts,
                    },
                    guard,
                )
            }
            OfficerCommand::ShowCode { .. } => (InspectionCommand::ShowCode, None),
            OfficerCommand::ScanEnterpriseCode { enterprise, .. } => {
                (InspectionCommand::ScanEnterpriseCode { enterprise }, None)
            }
            OfficerCommand::ReportResult { outcome, .. } => {
                (InspectionCommand::ReportResult { outcome }, None)
            }
            OfficerCommand::RevokeCode { reason, .. } => {
                (InspectionCommand::RevokeCode { reason }, None)
            }
        };
        let request = InspectionRequest {
            inspection_id,
            command,
            meta,
            signed: Some(raw),
        };
        let committed = self.execute_inspection(request).await?;
        let issued = committed
            .iter()
            .any(|e| matches!(e.payload.event, InspectionEvent::CodeIssued { .. }));
        let (token, url) = if issued {
            let (t, u) = self.code_url(&inspection_id);
            (Some(t), Some(u))
        } else {
            (None, None)
        };
        Ok(Accepted {
            inspection_id,
            events: committed
                .iter()
                .map(|e| Committed::from(&e.payload))
                .collect(),
            late: auth.late,
            token,
            url,
        })
    }

    fn issue_facts(&self, issue: &IssueCode) -> IssueFacts {
        let registry = self.registry();
        let plan = match &issue.kind {
            InspectionKind::Planned { plan } => registry.plan(plan).map(|p| PlanUse {
                plan: p.clone(),
                used: self
                    .plan_usage
                    .lock()
                    .expect("plan lock")
                    .get(&(plan.clone(), issue.enterprise.clone()))
                    .map_or(0, |s| s.len() as u32),
            }),
            _ => None,
        };
        IssueFacts {
            agency: registry.agency(&issue.agency).cloned(),
            enterprise: registry.enterprise(&issue.enterprise).cloned(),
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
            validity: self.validity,
        }
    }

    /// Executes a request on its inspection; a duplicate command id answers with the original
    /// outcome, a refused scan with the recorded refusal.
    async fn execute_inspection(
        &self,
        request: InspectionRequest,
    ) -> Result<Vec<EventEnvelope<Inspection>>, Refusal> {
        let id = request.inspection_id;
        let command_id = request.meta.command_id;
        let result = self
            .store
            .execute::<Inspection>(&id.to_string(), request, &self.notary)
            .await;
        let committed = match result {
            Err(AggregateError::UserError(InspectionError::DuplicateCommand)) => {
                let original = self
                    .events(id)
                    .await?
                    .iter()
                    .filter(|e| e.meta.command_id == command_id)
                    .map(Committed::from)
                    .collect();
                return Err(Refusal::Duplicate {
                    inspection_id: id,
                    original,
                });
            }
            other => other.map_err(from_aggregate)?,
        };
        {
            let mut usage = self.plan_usage.lock().expect("plan lock");
            for e in &committed {
                track_plan_usage(&mut usage, &e.payload.event, id);
            }
        }
        for e in &committed {
            metrics::counter!("saoma_events_committed_total", "type" => e.payload.event.event_type()).increment(1);
            if let InspectionEvent::ScanRefused { reason, .. } = &e.payload.event {
                return Err(Refusal::ScanRefused {
                    reason: *reason,
                    committed: Committed::from(&e.payload),
                });
            }
        }
        Ok(committed)
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
        let mut view = self.registry.write().expect("registry lock");
        for e in &committed {
            view.apply(&entity, &e.payload);
        }
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

fn track_plan_usage(usage: &mut PlanUsage, event: &InspectionEvent, id: Uuid) {
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
