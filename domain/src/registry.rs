//! Registries every rule depends on: agencies, officers and their device keys, enterprises,
//! inspection items and approved plans. Each entity is one `Registry` stream, and every change
//! to it is a sealed event, so the trail shows who registered which officer key when.

use crate::ids::{AgencyCode, CreditCode, ItemCode, OfficerRef, PlanId, RegionCode};
use crate::keys::{KeyId, Notary, PublicKey};
use crate::seal::{Chain, EventMeta, Sealed};
use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use thiserror::Error;

/// Administrative level of an agency (检查主体层级).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AgencyLevel {
    Province,
    City,
    County,
    Township,
}

/// Administrative domain (执法领域). The first six are exempt from the annual cap in most rule sets.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EnforcementDomain {
    NationalSecurity,
    PublicSafety,
    FoodDrug,
    WorkSafety,
    EcologyEnvironment,
    PublicHealth,
    MarketRegulation,
    Taxation,
    HumanResources,
    Transport,
    CultureTourism,
    FireSafety,
    NaturalResources,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Agency {
    pub code: AgencyCode,
    pub name: String,
    pub level: AgencyLevel,
    pub region: RegionCode,
    pub domain: EnforcementDomain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfficerStatus {
    Active,
    Suspended,
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeviceKey {
    pub key_id: KeyId,
    pub public_key: PublicKey,
    /// When the registration was recorded: the key cannot sign anything dated earlier.
    pub registered_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An officer as registered (执法人员).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OfficerProfile {
    #[serde(rename = "id")]
    pub credential: OfficerRef,
    pub name: String,
    pub agency: AgencyCode,
    /// Contact phone, never shown in full to the public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Officer {
    pub profile: OfficerProfile,
    pub status: OfficerStatus,
    pub keys: Vec<DeviceKey>,
}

impl Officer {
    pub fn key(&self) -> String {
        self.profile.credential.key()
    }

    pub fn device_key(&self, id: &KeyId) -> Option<&DeviceKey> {
        self.keys.iter().find(|k| &k.key_id == id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CreditGrade {
    A,
    B,
    C,
    D,
    E,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnterpriseStatus {
    Active,
    Suspended,
    Deregistered,
}

/// An enterprise that may be inspected (检查对象).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Enterprise {
    pub credit_code: CreditCode,
    pub name: String,
    pub region: RegionCode,
    pub credit_grade: CreditGrade,
    pub status: EnterpriseStatus,
}

/// An inspection item (检查事项) with its legal basis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub code: ItemCode,
    pub name: String,
    pub legal_basis: String,
    pub domain: EnforcementDomain,
}

/// An approved annual inspection plan (检查计划).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: PlanId,
    pub agency: AgencyCode,
    pub year: i32,
    pub enterprises: Vec<CreditCode>,
    pub items: Vec<ItemCode>,
    /// Visits allowed per enterprise in the plan's year.
    pub allowed_visits: u32,
}

impl Plan {
    pub fn covers(&self, agency: &AgencyCode, enterprise: &CreditCode, items: &[ItemCode]) -> bool {
        &self.agency == agency
            && self.enterprises.contains(enterprise)
            && items.iter().all(|i| self.items.contains(i))
    }
}

/// A registry change requested by an administrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum RegistryCommand {
    RegisterAgency {
        agency: Agency,
    },
    RegisterOfficer {
        officer: OfficerProfile,
    },
    SetOfficerStatus {
        officer: OfficerRef,
        status: OfficerStatus,
    },
    RegisterDeviceKey {
        officer: OfficerRef,
        public_key: PublicKey,
    },
    RevokeDeviceKey {
        officer: OfficerRef,
        key_id: KeyId,
    },
    RegisterEnterprise {
        enterprise: Enterprise,
    },
    RegisterItem {
        item: Item,
    },
    ApprovePlan {
        plan: Plan,
    },
}

impl RegistryCommand {
    /// The stream this command belongs to: `{kind}:{key}`.
    pub fn entity(&self) -> String {
        match self {
            RegistryCommand::RegisterAgency { agency } => format!("agency:{}", agency.code),
            RegistryCommand::RegisterOfficer { officer } => {
                format!("officer:{}", officer.credential.key())
            }
            RegistryCommand::SetOfficerStatus { officer, .. }
            | RegistryCommand::RegisterDeviceKey { officer, .. }
            | RegistryCommand::RevokeDeviceKey { officer, .. } => {
                format!("officer:{}", officer.key())
            }
            RegistryCommand::RegisterEnterprise { enterprise } => {
                format!("enterprise:{}", enterprise.credit_code)
            }
            RegistryCommand::RegisterItem { item } => format!("item:{}", item.code),
            RegistryCommand::ApprovePlan { plan } => format!("plan:{}", plan.id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type")]
pub enum RegistryEvent {
    AgencyRegistered {
        agency: Agency,
    },
    AgencyUpdated {
        agency: Agency,
    },
    OfficerRegistered {
        officer: OfficerProfile,
    },
    OfficerUpdated {
        officer: OfficerProfile,
    },
    OfficerStatusChanged {
        status: OfficerStatus,
    },
    DeviceKeyRegistered {
        key_id: KeyId,
        public_key: PublicKey,
    },
    DeviceKeyRevoked {
        key_id: KeyId,
    },
    EnterpriseRegistered {
        enterprise: Enterprise,
    },
    EnterpriseUpdated {
        enterprise: Enterprise,
    },
    ItemRegistered {
        item: Item,
    },
    ItemUpdated {
        item: Item,
    },
    PlanApproved {
        plan: Plan,
    },
    PlanAmended {
        plan: Plan,
    },
}

impl DomainEvent for RegistryEvent {
    fn event_type(&self) -> String {
        let s = match self {
            RegistryEvent::AgencyRegistered { .. } => "AgencyRegistered",
            RegistryEvent::AgencyUpdated { .. } => "AgencyUpdated",
            RegistryEvent::OfficerRegistered { .. } => "OfficerRegistered",
            RegistryEvent::OfficerUpdated { .. } => "OfficerUpdated",
            RegistryEvent::OfficerStatusChanged { .. } => "OfficerStatusChanged",
            RegistryEvent::DeviceKeyRegistered { .. } => "DeviceKeyRegistered",
            RegistryEvent::DeviceKeyRevoked { .. } => "DeviceKeyRevoked",
            RegistryEvent::EnterpriseRegistered { .. } => "EnterpriseRegistered",
            RegistryEvent::EnterpriseUpdated { .. } => "EnterpriseUpdated",
            RegistryEvent::ItemRegistered { .. } => "ItemRegistered",
            RegistryEvent::ItemUpdated { .. } => "ItemUpdated",
            RegistryEvent::PlanApproved { .. } => "PlanApproved",
            RegistryEvent::PlanAmended { .. } => "PlanAmended",
        };
        s.to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    #[error("执法人员未登记")]
    UnknownOfficer,
    #[error("该设备密钥已吊销，不能重新登记")]
    KeyAlreadyRegistered,
    #[error("该设备密钥不存在")]
    UnknownKey,
    #[error("该设备密钥已吊销")]
    KeyAlreadyRevoked,
    #[error("名称不能为空且不超过100字")]
    Name,
    #[error("法律依据不能为空")]
    LegalBasisRequired,
    #[error("检查计划应至少包含一家企业和一个检查事项，且允许次数不少于1")]
    PlanIncomplete,
    #[error("登记对象类型不一致")]
    EntityMismatch,
}

impl RegistryError {
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::UnknownOfficer => "unknown_officer",
            RegistryError::KeyAlreadyRegistered => "key_already_registered",
            RegistryError::UnknownKey => "unknown_key",
            RegistryError::KeyAlreadyRevoked => "key_already_revoked",
            RegistryError::Name => "name_invalid",
            RegistryError::LegalBasisRequired => "legal_basis_required",
            RegistryError::PlanIncomplete => "plan_incomplete",
            RegistryError::EntityMismatch => "entity_mismatch",
        }
    }
}

/// What the registry aggregate receives: the change plus the context the service resolved.
#[derive(Debug, Clone)]
pub struct RegistryRequest {
    pub command: RegistryCommand,
    pub meta: EventMeta,
}

/// The current state of one registry entity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub enum Entry {
    #[default]
    Empty,
    Agency(Agency),
    Officer(Officer),
    Enterprise(Enterprise),
    Item(Item),
    Plan(Plan),
}

/// One registry entity's stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub entry: Entry,
    pub chain: Chain,
}

fn check_name(name: &str) -> Result<(), RegistryError> {
    let n = name.trim().chars().count();
    if n == 0 || n > 100 {
        return Err(RegistryError::Name);
    }
    Ok(())
}

impl Registry {
    /// Decides which events a command produces. Re-registering an identical record produces none,
    /// so imports can be repeated safely.
    pub fn decide(&self, request: &RegistryRequest) -> Result<Vec<RegistryEvent>, RegistryError> {
        use RegistryCommand as C;
        use RegistryEvent as E;
        let at = request.meta.recorded_at;
        let events = match (&request.command, &self.entry) {
            (C::RegisterAgency { agency }, Entry::Empty) => {
                check_name(&agency.name)?;
                vec![E::AgencyRegistered {
                    agency: agency.clone(),
                }]
            }
            (C::RegisterAgency { agency }, Entry::Agency(old)) => {
                check_name(&agency.name)?;
                changed(old, agency, || E::AgencyUpdated {
                    agency: agency.clone(),
                })
            }
            (C::RegisterOfficer { officer }, Entry::Empty) => {
                check_name(&officer.name)?;
                vec![E::OfficerRegistered {
                    officer: officer.clone(),
                }]
            }
            (C::RegisterOfficer { officer }, Entry::Officer(old)) => {
                check_name(&officer.name)?;
                changed(&old.profile, officer, || E::OfficerUpdated {
                    officer: officer.clone(),
                })
            }
            (C::SetOfficerStatus { status, .. }, Entry::Officer(old)) => {
                changed(&old.status, status, || E::OfficerStatusChanged {
                    status: *status,
                })
            }
            (C::RegisterDeviceKey { public_key, .. }, Entry::Officer(old)) => {
                let key_id = public_key.key_id();
                match old.device_key(&key_id) {
                    // Registering an active key again changes nothing, so imports can repeat.
                    Some(k) if k.revoked_at.is_none() => vec![],
                    // A revoked key stays revoked: it cannot be registered again.
                    Some(_) => return Err(RegistryError::KeyAlreadyRegistered),
                    None => vec![E::DeviceKeyRegistered {
                        key_id,
                        public_key: *public_key,
                    }],
                }
            }
            (C::RevokeDeviceKey { key_id, .. }, Entry::Officer(old)) => {
                match old.device_key(key_id) {
                    None => return Err(RegistryError::UnknownKey),
                    Some(k) if k.revoked_at.is_some() => {
                        return Err(RegistryError::KeyAlreadyRevoked)
                    }
                    Some(_) => vec![E::DeviceKeyRevoked {
                        key_id: key_id.clone(),
                    }],
                }
            }
            (
                C::SetOfficerStatus { .. }
                | C::RegisterDeviceKey { .. }
                | C::RevokeDeviceKey { .. },
                Entry::Empty,
            ) => return Err(RegistryError::UnknownOfficer),
            (C::RegisterEnterprise { enterprise }, Entry::Empty) => {
                check_name(&enterprise.name)?;
                vec![E::EnterpriseRegistered {
                    enterprise: enterprise.clone(),
                }]
            }
            (C::RegisterEnterprise { enterprise }, Entry::Enterprise(old)) => {
                check_name(&enterprise.name)?;
                changed(old, enterprise, || E::EnterpriseUpdated {
                    enterprise: enterprise.clone(),
                })
            }
            (C::RegisterItem { item }, entry @ (Entry::Empty | Entry::Item(_))) => {
                check_name(&item.name)?;
                if item.legal_basis.trim().is_empty() {
                    return Err(RegistryError::LegalBasisRequired);
                }
                match entry {
                    Entry::Item(old) => {
                        changed(old, item, || E::ItemUpdated { item: item.clone() })
                    }
                    _ => vec![E::ItemRegistered { item: item.clone() }],
                }
            }
            (C::ApprovePlan { plan }, entry @ (Entry::Empty | Entry::Plan(_))) => {
                if plan.enterprises.is_empty() || plan.items.is_empty() || plan.allowed_visits == 0
                {
                    return Err(RegistryError::PlanIncomplete);
                }
                match entry {
                    Entry::Plan(old) => {
                        changed(old, plan, || E::PlanAmended { plan: plan.clone() })
                    }
                    _ => vec![E::PlanApproved { plan: plan.clone() }],
                }
            }
            _ => return Err(RegistryError::EntityMismatch),
        };
        let _ = at;
        Ok(events)
    }

    /// Applies one event body; `at` is the event's recorded time (key registration time).
    pub fn evolve(&mut self, event: &RegistryEvent, at: DateTime<Utc>) {
        use RegistryEvent as E;
        match (event, &mut self.entry) {
            (E::AgencyRegistered { agency } | E::AgencyUpdated { agency }, entry) => {
                *entry = Entry::Agency(agency.clone())
            }
            (E::OfficerRegistered { officer }, entry) => {
                *entry = Entry::Officer(Officer {
                    profile: officer.clone(),
                    status: OfficerStatus::Active,
                    keys: vec![],
                })
            }
            (E::OfficerUpdated { officer }, Entry::Officer(o)) => o.profile = officer.clone(),
            (E::OfficerStatusChanged { status }, Entry::Officer(o)) => o.status = *status,
            (E::DeviceKeyRegistered { key_id, public_key }, Entry::Officer(o)) => {
                o.keys.push(DeviceKey {
                    key_id: key_id.clone(),
                    public_key: *public_key,
                    registered_at: at,
                    revoked_at: None,
                })
            }
            (E::DeviceKeyRevoked { key_id }, Entry::Officer(o)) => {
                if let Some(k) = o.keys.iter_mut().find(|k| &k.key_id == key_id) {
                    k.revoked_at = Some(at);
                }
            }
            (
                E::EnterpriseRegistered { enterprise } | E::EnterpriseUpdated { enterprise },
                entry,
            ) => *entry = Entry::Enterprise(enterprise.clone()),
            (E::ItemRegistered { item } | E::ItemUpdated { item }, entry) => {
                *entry = Entry::Item(item.clone())
            }
            (E::PlanApproved { plan } | E::PlanAmended { plan }, entry) => {
                *entry = Entry::Plan(plan.clone())
            }
            // Officer events on a non-officer entry cannot be produced by `decide`.
            _ => {}
        }
    }
}

fn changed<T: PartialEq>(
    old: &T,
    new: &T,
    event: impl FnOnce() -> RegistryEvent,
) -> Vec<RegistryEvent> {
    if old == new {
        vec![]
    } else {
        vec![event()]
    }
}

impl Aggregate for Registry {
    const TYPE: &'static str = "Registry";
    type Command = RegistryRequest;
    type Event = Sealed<RegistryEvent>;
    type Error = RegistryError;
    type Services = Arc<dyn Notary>;

    async fn handle(
        &mut self,
        request: RegistryRequest,
        notary: &Arc<dyn Notary>,
        sink: &EventSink<Self>,
    ) -> Result<(), RegistryError> {
        let stream = format!("{}/{}", Self::TYPE, request.command.entity());
        for body in self.decide(&request)? {
            let sealed = Sealed::seal(
                stream.clone(),
                &self.chain,
                request.meta.clone(),
                None,
                body,
                notary.as_ref(),
            );
            sink.write(sealed, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Sealed<RegistryEvent>) {
        self.evolve(&event.event, event.meta.recorded_at);
        self.chain.advance(event.sequence, event.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CertificateNo, RegionCode};
    use crate::seal::Actor;
    use ed25519_dalek::SigningKey;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn request(command: RegistryCommand, time: &str) -> RegistryRequest {
        RegistryRequest {
            command,
            meta: EventMeta {
                recorded_at: at(time),
                device_time: None,
                late: false,
                actor: Actor::Admin {
                    name: "测试".into(),
                },
                command_id: None,
            },
        }
    }

    fn officer_ref() -> OfficerRef {
        OfficerRef::Certificate(CertificateNo::parse("ZF630100001").unwrap())
    }

    fn register_officer() -> RegistryCommand {
        RegistryCommand::RegisterOfficer {
            officer: OfficerProfile {
                credential: officer_ref(),
                name: "王五".into(),
                agency: AgencyCode::parse("QH-SCJ").unwrap(),
                phone: None,
            },
        }
    }

    fn key() -> PublicKey {
        PublicKey(SigningKey::from_bytes(&[4; 32]).verifying_key())
    }

    /// Runs commands in order, applying what each decides; returns the state and the events.
    fn run(
        commands: Vec<(RegistryCommand, &str)>,
    ) -> (Registry, Vec<Result<Vec<RegistryEvent>, RegistryError>>) {
        let mut state = Registry::default();
        let mut results = vec![];
        for (command, time) in commands {
            let r = request(command, time);
            let decided = state.decide(&r);
            if let Ok(events) = &decided {
                for e in events {
                    state.evolve(e, r.meta.recorded_at);
                }
            }
            results.push(decided);
        }
        (state, results)
    }

    #[test]
    fn registering_the_same_record_twice_records_it_once() {
        let (_, results) = run(vec![
            (register_officer(), "2026-01-01T00:00:00Z"),
            (register_officer(), "2026-01-02T00:00:00Z"),
        ]);
        assert_eq!(results[0].as_ref().unwrap().len(), 1);
        assert_eq!(results[1], Ok(vec![]));
    }

    #[test]
    fn a_changed_record_is_recorded_as_an_update() {
        let mut changed = register_officer();
        if let RegistryCommand::RegisterOfficer { officer } = &mut changed {
            officer.name = "王五一".into();
        }
        let (state, results) = run(vec![
            (register_officer(), "2026-01-01T00:00:00Z"),
            (changed, "2026-01-02T00:00:00Z"),
        ]);
        assert!(matches!(
            results[1].as_deref(),
            Ok([RegistryEvent::OfficerUpdated { .. }])
        ));
        assert!(matches!(state.entry, Entry::Officer(ref o) if o.profile.name == "王五一"));
    }

    #[test]
    fn a_device_key_is_valid_from_its_recorded_registration_time() {
        let (state, _) = run(vec![
            (register_officer(), "2026-01-01T00:00:00Z"),
            (
                RegistryCommand::RegisterDeviceKey {
                    officer: officer_ref(),
                    public_key: key(),
                },
                "2026-02-01T08:00:00Z",
            ),
        ]);
        let Entry::Officer(o) = state.entry else {
            panic!("officer expected")
        };
        assert_eq!(
            o.device_key(&key().key_id()).unwrap().registered_at,
            at("2026-02-01T08:00:00Z")
        );
    }

    #[test]
    fn an_active_key_registered_again_changes_nothing_but_a_revoked_key_cannot_return() {
        let register = || RegistryCommand::RegisterDeviceKey {
            officer: officer_ref(),
            public_key: key(),
        };
        let (_, results) = run(vec![
            (register_officer(), "2026-01-01T00:00:00Z"),
            (register(), "2026-01-02T00:00:00Z"),
            (register(), "2026-01-03T00:00:00Z"),
            (
                RegistryCommand::RevokeDeviceKey {
                    officer: officer_ref(),
                    key_id: key().key_id(),
                },
                "2026-01-04T00:00:00Z",
            ),
            (register(), "2026-01-05T00:00:00Z"),
            (
                RegistryCommand::RevokeDeviceKey {
                    officer: officer_ref(),
                    key_id: key().key_id(),
                },
                "2026-01-06T00:00:00Z",
            ),
        ]);
        assert_eq!(results[2], Ok(vec![]));
        assert!(matches!(
            results[3].as_deref(),
            Ok([RegistryEvent::DeviceKeyRevoked { .. }])
        ));
        assert_eq!(results[4], Err(RegistryError::KeyAlreadyRegistered));
        assert_eq!(results[5], Err(RegistryError::KeyAlreadyRevoked));
    }

    #[test]
    fn keys_and_status_need_a_registered_officer() {
        let (_, results) = run(vec![
            (
                RegistryCommand::RegisterDeviceKey {
                    officer: officer_ref(),
                    public_key: key(),
                },
                "2026-01-01T00:00:00Z",
            ),
            (
                RegistryCommand::SetOfficerStatus {
                    officer: officer_ref(),
                    status: OfficerStatus::Suspended,
                },
                "2026-01-01T00:00:00Z",
            ),
        ]);
        assert_eq!(results[0], Err(RegistryError::UnknownOfficer));
        assert_eq!(results[1].as_ref().unwrap_err().code(), "unknown_officer");
    }

    #[test]
    fn revoking_an_unknown_key_is_refused() {
        let (_, results) = run(vec![
            (register_officer(), "2026-01-01T00:00:00Z"),
            (
                RegistryCommand::RevokeDeviceKey {
                    officer: officer_ref(),
                    key_id: key().key_id(),
                },
                "2026-01-02T00:00:00Z",
            ),
        ]);
        assert_eq!(results[1], Err(RegistryError::UnknownKey));
    }

    #[test]
    fn empty_names_missing_legal_bases_and_incomplete_plans_are_refused() {
        let item = |name: &str, basis: &str| RegistryCommand::RegisterItem {
            item: Item {
                code: ItemCode::parse("SC-001").unwrap(),
                name: name.into(),
                legal_basis: basis.into(),
                domain: EnforcementDomain::FoodDrug,
            },
        };
        let plan = RegistryCommand::ApprovePlan {
            plan: Plan {
                id: PlanId::parse("P-1").unwrap(),
                agency: AgencyCode::parse("QH-SCJ").unwrap(),
                year: 2026,
                enterprises: vec![],
                items: vec![ItemCode::parse("SC-001").unwrap()],
                allowed_visits: 1,
            },
        };
        let agency = RegistryCommand::RegisterAgency {
            agency: Agency {
                code: AgencyCode::parse("QH-SCJ").unwrap(),
                name: "名".repeat(101),
                level: AgencyLevel::Province,
                region: RegionCode::parse("630000").unwrap(),
                domain: EnforcementDomain::MarketRegulation,
            },
        };
        let (_, results) = run(vec![
            (item(" ", "《食品安全法》"), "2026-01-01T00:00:00Z"),
            (item("食品检查", " "), "2026-01-01T00:00:00Z"),
            (plan, "2026-01-01T00:00:00Z"),
            (agency, "2026-01-01T00:00:00Z"),
        ]);
        assert_eq!(results[0], Err(RegistryError::Name));
        assert_eq!(results[1], Err(RegistryError::LegalBasisRequired));
        assert_eq!(results[2], Err(RegistryError::PlanIncomplete));
        assert_eq!(results[3], Err(RegistryError::Name));
    }

    #[test]
    fn a_command_for_another_kind_of_entity_is_refused() {
        let (_, results) = run(vec![
            (register_officer(), "2026-01-01T00:00:00Z"),
            (
                RegistryCommand::RegisterItem {
                    item: Item {
                        code: ItemCode::parse("SC-001").unwrap(),
                        name: "食品检查".into(),
                        legal_basis: "《食品安全法》".into(),
                        domain: EnforcementDomain::FoodDrug,
                    },
                },
                "2026-01-02T00:00:00Z",
            ),
        ]);
        assert_eq!(results[1], Err(RegistryError::EntityMismatch));
    }
}
