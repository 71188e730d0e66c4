//! The `Inspection` aggregate, one per code: `decide` applies every lifecycle rule to a request
//! and returns event bodies; `evolve` folds an event into the state. Both are pure and
//! synchronous; the cqrs-es `Aggregate` impl only seals what `decide` returns.

use crate::ids::CreditCode;
use crate::inspection::command::{
    InspectionCommand, InspectionKind, InspectionRequest, IssueCode, IssueFacts, Outcome,
    TokenCheck,
};
use crate::inspection::error::InspectionError;
use crate::inspection::event::{
    EnterpriseOnCode, InspectionEvent, OfficerOnCode, ScanRefusal, Scanner,
};
use crate::inspection::validity::{shanghai_date, ValidityState, ValidityWindow};
use crate::keys::Notary;
use crate::registry::{EnterpriseStatus, OfficerStatus};
use crate::seal::{Actor, Chain, Sealed};
use chrono::{DateTime, Datelike, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;
use uuid::Uuid;

/// Longest free text accepted for comments, feedback and results.
pub const MAX_TEXT_CHARS: usize = 2000;

/// The issued code as the aggregate needs it to judge later commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    pub enterprise: CreditCode,
    pub officers: Vec<String>,
    pub validity: ValidityWindow,
    pub kind: InspectionKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inspection {
    pub chain: Chain,
    pub code: Option<IssuedCode>,
    pub shown: bool,
    pub scanned_by_enterprise: bool,
    pub scanned_by_officer: bool,
    pub rated: bool,
    pub reported: bool,
    pub revoked: bool,
    /// Command ids already executed on this stream: a re-sent command is recognised exactly,
    /// whatever time has passed.
    pub command_ids: BTreeSet<Uuid>,
}

fn text(s: &str, max: usize) -> Result<String, InspectionError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(InspectionError::TextRequired);
    }
    if s.chars().count() > max {
        return Err(InspectionError::TextTooLong);
    }
    Ok(s.to_string())
}

impl Inspection {
    pub fn decide(
        &self,
        request: &InspectionRequest,
    ) -> Result<Vec<InspectionEvent>, InspectionError> {
        if let Some(id) = request.meta.command_id {
            if self.command_ids.contains(&id) {
                return Err(InspectionError::DuplicateCommand);
            }
        }
        let at = request.meta.effective_time();
        if let InspectionCommand::IssueCode { command, facts } = &request.command {
            if self.code.is_some() {
                return Err(InspectionError::AlreadyIssued);
            }
            if command.inspection_id != request.inspection_id {
                return Err(InspectionError::InspectionIdMismatch);
            }
            return issue(command, facts, &request.meta.actor, at);
        }
        let code = self.code.as_ref().ok_or(InspectionError::NotIssued)?;
        if let Actor::Officer { officer, .. } = &request.meta.actor {
            if !code.officers.contains(officer) {
                return Err(InspectionError::NotAssigned);
            }
        }
        // Officers act through signed commands and the enterprise through the code's token;
        // neither may take the other's part (an officer rating or scanning for the enterprise
        // would forge its voice, a token holder could revoke or close someone else's visit).
        let officers_part = matches!(
            request.command,
            InspectionCommand::ShowCode
                | InspectionCommand::ScanEnterpriseCode { .. }
                | InspectionCommand::ReportResult { .. }
                | InspectionCommand::RevokeCode { .. }
        );
        match (&request.meta.actor, officers_part) {
            (Actor::TokenHolder, true) | (Actor::Officer { .. }, false) => {
                return Err(InspectionError::NotAssigned)
            }
            _ => {}
        }
        use InspectionCommand as C;
        use InspectionEvent as E;
        let event = match &request.command {
            C::IssueCode { .. } => unreachable!("handled above"),
            C::ShowCode => {
                self.usable(code, at)?;
                E::CodeShown { at }
            }
            C::ScanEnterpriseCode { enterprise } => {
                match self.scan_refusal(code, at, TokenCheck::Genuine) {
                    Some(reason) => E::ScanRefused {
                        by: Scanner::Officer,
                        at,
                        reason,
                    },
                    None if enterprise != &code.enterprise => E::ScanRefused {
                        by: Scanner::Officer,
                        at,
                        reason: ScanRefusal::WrongEnterprise,
                    },
                    None => E::CodeScanned {
                        by: Scanner::Officer,
                        at,
                        mutual: self.scanned_by_enterprise,
                    },
                }
            }
            C::ScanCode { token } => match self.scan_refusal(code, at, *token) {
                Some(reason) => E::ScanRefused {
                    by: Scanner::Enterprise,
                    at,
                    reason,
                },
                None => E::CodeScanned {
                    by: Scanner::Enterprise,
                    at,
                    mutual: self.scanned_by_officer,
                },
            },
            C::GiveRating { level, comment } => {
                if self.revoked {
                    return Err(InspectionError::CodeRevoked);
                }
                if !self.scanned_by_enterprise {
                    return Err(InspectionError::NotScanned);
                }
                if self.rated {
                    return Err(InspectionError::AlreadyRated);
                }
                if !(1..=5).contains(level) {
                    return Err(InspectionError::RatingInvalid);
                }
                let comment = match comment.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(c) => Some(text(c, MAX_TEXT_CHARS)?),
                };
                E::RatingGiven {
                    level: *level,
                    comment,
                    at,
                }
            }
            C::ReportResult { outcome } => {
                if self.revoked {
                    return Err(InspectionError::CodeRevoked);
                }
                if self.reported {
                    return Err(InspectionError::AlreadyReported);
                }
                let outcome = match outcome {
                    Outcome::NoProblems => Outcome::NoProblems,
                    Outcome::ProblemsFound { feedback } => Outcome::ProblemsFound {
                        feedback: text(feedback, MAX_TEXT_CHARS).map_err(|e| match e {
                            InspectionError::TextRequired => InspectionError::ResultTextRequired,
                            e => e,
                        })?,
                    },
                };
                E::ResultReported { outcome, at }
            }
            C::RevokeCode { reason } => {
                if self.revoked {
                    return Err(InspectionError::CodeRevoked);
                }
                if self.shown
                    || self.scanned_by_enterprise
                    || self.scanned_by_officer
                    || self.reported
                {
                    return Err(InspectionError::AlreadyUsed);
                }
                let reason = text(reason, 200).map_err(|e| match e {
                    InspectionError::TextRequired => InspectionError::RevokeReasonRequired,
                    e => e,
                })?;
                E::CodeRevoked { reason, at }
            }
            C::GiveFeedback { text: t } => E::FeedbackGiven {
                text: text(t, MAX_TEXT_CHARS)?,
                at,
            },
        };
        Ok(vec![event])
    }

    fn usable(&self, code: &IssuedCode, at: DateTime<Utc>) -> Result<(), InspectionError> {
        if self.revoked {
            return Err(InspectionError::CodeRevoked);
        }
        if code.validity.state_at(at) != ValidityState::Valid {
            return Err(InspectionError::OutsideValidity);
        }
        Ok(())
    }

    fn scan_refusal(
        &self,
        code: &IssuedCode,
        at: DateTime<Utc>,
        token: TokenCheck,
    ) -> Option<ScanRefusal> {
        if token == TokenCheck::Forged {
            return Some(ScanRefusal::ForgedToken);
        }
        if self.revoked {
            return Some(ScanRefusal::Revoked);
        }
        match code.validity.state_at(at) {
            ValidityState::NotYetValid => Some(ScanRefusal::NotYetValid),
            ValidityState::Expired => Some(ScanRefusal::Expired),
            ValidityState::Valid => None,
        }
    }

    pub fn evolve(&mut self, event: &InspectionEvent, command_id: Option<Uuid>) {
        use InspectionEvent as E;
        if let Some(id) = command_id {
            self.command_ids.insert(id);
        }
        match event {
            E::CodeIssued {
                enterprise,
                officers,
                validity,
                kind,
                ..
            } => {
                self.code = Some(IssuedCode {
                    enterprise: enterprise.credit_code.clone(),
                    officers: officers.iter().map(|o| o.id.key()).collect(),
                    validity: *validity,
                    kind: kind.clone(),
                })
            }
            E::CodeShown { .. } => self.shown = true,
            E::CodeScanned {
                by: Scanner::Enterprise,
                ..
            } => self.scanned_by_enterprise = true,
            E::CodeScanned {
                by: Scanner::Officer,
                ..
            } => self.scanned_by_officer = true,
            E::ScanRefused { .. } | E::FeedbackGiven { .. } => {}
            E::RatingGiven { .. } => self.rated = true,
            E::ResultReported { .. } => self.reported = true,
            E::CodeRevoked { .. } => self.revoked = true,
        }
    }
}

fn issue(
    cmd: &IssueCode,
    facts: &IssueFacts,
    actor: &Actor,
    at: DateTime<Utc>,
) -> Result<Vec<InspectionEvent>, InspectionError> {
    let agency = facts.agency.clone().ok_or(InspectionError::UnknownAgency)?;
    match &cmd.kind {
        InspectionKind::Planned { plan: named } => {
            let plan = facts
                .plan
                .as_ref()
                .ok_or(InspectionError::PlanNotIncluded)?;
            if &plan.plan.id != named || !plan.plan.covers(&cmd.agency, &cmd.enterprise, &cmd.items)
            {
                return Err(InspectionError::PlanNotIncluded);
            }
            if plan.plan.year != cmd.date.year() {
                return Err(InspectionError::PlanYearMismatch);
            }
            if plan.used >= plan.plan.allowed_visits {
                return Err(InspectionError::PlanFrequencyExceeded);
            }
        }
        InspectionKind::Supplementary { .. } => {}
        InspectionKind::Unplanned { basis, .. } => {
            if basis.trim().is_empty() {
                return Err(InspectionError::BasisRequired);
            }
            if basis.chars().count() > MAX_TEXT_CHARS {
                return Err(InspectionError::TextTooLong);
            }
        }
        InspectionKind::NonInspection { .. } => {}
    }
    let enterprise = facts
        .enterprise
        .as_ref()
        .ok_or(InspectionError::UnknownEnterprise)?;
    if enterprise.status != EnterpriseStatus::Active {
        return Err(InspectionError::EnterpriseNotActive);
    }
    if cmd.items.is_empty() {
        return Err(InspectionError::NoItems);
    }
    let items = facts
        .items
        .iter()
        .cloned()
        .collect::<Option<Vec<_>>>()
        .filter(|v| v.len() == cmd.items.len())
        .ok_or(InspectionError::UnknownItem)?;
    if cmd.officers.is_empty() {
        return Err(InspectionError::NoOfficers);
    }
    // One officer listed twice would pass for the two officers the rules ask for.
    if cmd
        .officers
        .iter()
        .map(|o| o.key())
        .collect::<BTreeSet<_>>()
        .len()
        != cmd.officers.len()
    {
        return Err(InspectionError::DuplicateOfficerOnCode);
    }
    if facts.officers.len() != cmd.officers.len() {
        return Err(InspectionError::UnknownOfficerOnCode);
    }
    let mut officers = Vec::with_capacity(cmd.officers.len());
    for (id, fact) in cmd.officers.iter().zip(&facts.officers) {
        let fact = fact.as_ref().ok_or(InspectionError::UnknownOfficerOnCode)?;
        if fact.status != OfficerStatus::Active {
            return Err(InspectionError::OfficerOnCodeNotActive);
        }
        officers.push(OfficerOnCode {
            id: id.clone(),
            name: fact.name.clone(),
        });
    }
    if actor == &Actor::TokenHolder {
        return Err(InspectionError::IssuerNotListed);
    }
    if let Actor::Officer { officer, .. } = actor {
        let issuer = cmd
            .officers
            .iter()
            .zip(&facts.officers)
            .find(|(id, _)| &id.key() == officer)
            .ok_or(InspectionError::IssuerNotListed)?;
        if issuer.1.as_ref().map(|f| &f.agency) != Some(&cmd.agency) {
            return Err(InspectionError::OfficerNotInAgency);
        }
    }
    let partners = facts
        .partners
        .iter()
        .cloned()
        .collect::<Option<Vec<_>>>()
        .filter(|v| v.len() == cmd.joint_partners.len())
        .ok_or(InspectionError::PartnerInvalid)?;
    if cmd.joint_partners.contains(&cmd.agency)
        || cmd.joint_partners.iter().collect::<BTreeSet<_>>().len() != cmd.joint_partners.len()
    {
        return Err(InspectionError::PartnerInvalid);
    }
    let today = shanghai_date(at);
    match cmd.kind {
        InspectionKind::Supplementary { .. } if cmd.date > today => {
            return Err(InspectionError::SupplementInFuture)
        }
        InspectionKind::Supplementary { .. } => {}
        _ if cmd.date < today => return Err(InspectionError::DateInPast),
        _ => {}
    }
    Ok(vec![InspectionEvent::CodeIssued {
        inspection_id: cmd.inspection_id,
        kind: cmd.kind.clone(),
        agency,
        enterprise: EnterpriseOnCode {
            credit_code: enterprise.credit_code.clone(),
            name: enterprise.name.clone(),
            region: enterprise.region.as_str().to_string(),
        },
        items,
        officers,
        date: cmd.date,
        joint_partners: partners,
        validity: facts.validity.window(cmd.date),
    }])
}

impl Inspection {
    /// What `handle` does, synchronously: decides `request`, seals each resulting event after
    /// the previous one and applies it to this state; returns the sealed events. On a refusal
    /// the state is unchanged.
    pub fn execute(
        &mut self,
        request: InspectionRequest,
        notary: &dyn Notary,
    ) -> Result<Vec<Sealed<InspectionEvent>>, InspectionError> {
        let stored = self.execute_stored(request, notary)?;
        Ok(stored.into_iter().map(|(event, _)| event).collect())
    }

    /// [`Inspection::execute`], with each event's stored text (see [`Sealed::seal_stored`]).
    pub fn execute_stored(
        &mut self,
        request: InspectionRequest,
        notary: &dyn Notary,
    ) -> Result<Vec<(Sealed<InspectionEvent>, String)>, InspectionError> {
        let stream = format!("{}/{}", Self::TYPE, request.inspection_id);
        let bodies = self.decide(&request)?;
        let mut sealed = Vec::with_capacity(bodies.len());
        let last = bodies.len().saturating_sub(1);
        let mut command = request.signed;
        for (i, body) in bodies.into_iter().enumerate() {
            let signed = if i == last {
                command.take()
            } else {
                command.clone()
            };
            let (event, text) = Sealed::seal_stored(
                stream.clone(),
                &self.chain,
                request.meta.clone(),
                signed,
                body,
                notary,
            );
            self.record(&event);
            sealed.push((event, text));
        }
        Ok(sealed)
    }

    /// Takes a sealed event into the state: its body, its command id and the chain's head.
    fn record(&mut self, event: &Sealed<InspectionEvent>) {
        self.evolve(&event.event, event.meta.command_id);
        self.chain.advance(event.sequence, event.hash);
    }
}

impl Aggregate for Inspection {
    const TYPE: &'static str = "Inspection";
    type Command = InspectionRequest;
    type Event = Sealed<InspectionEvent>;
    type Error = InspectionError;
    type Services = Arc<dyn Notary>;

    async fn handle(
        &mut self,
        request: InspectionRequest,
        notary: &Arc<dyn Notary>,
        sink: &EventSink<Self>,
    ) -> Result<(), InspectionError> {
        // The sink applies what it is given: seal on a scratch copy, then hand the events over.
        let events = self.clone().execute(request, notary.as_ref())?;
        for sealed in events {
            sink.write(sealed, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Sealed<InspectionEvent>) {
        self.record(&event);
    }
}
