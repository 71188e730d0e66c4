//! The published contract in `schemas/`: JSON Schemas generated from the wire types (the
//! checked-in files must equal them), real envelopes and events validated against them, and
//! `openapi.yaml` checked against the routes the HTTP API registers.
//!
//! Regenerate the JSON Schemas after changing a wire type:
//! `SAOMA_UPDATE_SCHEMAS=1 cargo test -p saoma-domain --test schemas`

use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::SigningKey;
use saoma_domain::envelope::{sign_envelope, SignedEnvelope};
use saoma_domain::ids::{
    AgencyCode, BadgeNo, CertificateNo, CreditCode, ItemCode, OfficerRef, PlanId, RegionCode,
};
use saoma_domain::inspection::{
    EnterpriseOnCode, InspectionEvent, InspectionKind, IssueCode, OfficerCommand, OfficerOnCode,
    Outcome, ScanRefusal, Scanner, SupplementReason, Trigger, ValidityRule, VisitPurpose,
};
use saoma_domain::keys::{KeyId, PublicKey};
use saoma_domain::registry::{
    Agency, AgencyLevel, CreditGrade, DeviceKey, EnforcementDomain, Enterprise, EnterpriseStatus,
    Item, Officer, OfficerProfile, OfficerStatus, Plan, RegistryCommand, RegistryEvent,
};
use saoma_domain::seal::{Actor, Chain, EventMeta, Sealed};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use uuid::Uuid;

const UPDATE_VAR: &str = "SAOMA_UPDATE_SCHEMAS";

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

// ---------------------------------------------------------------------------------------------
// Generation and drift
// ---------------------------------------------------------------------------------------------

/// One published schema: its file under `schemas/json/`, generated from `T`.
fn schema_of<T: JsonSchema>(title: &str) -> Value {
    let mut schema = schemars::schema_for!(T).to_value();
    schema["title"] = json!(title);
    schema["$comment"] = json!(format!(
        "Generated from the Rust wire types by domain/tests/schemas.rs; do not edit. \
         Regenerate with `{UPDATE_VAR}=1 cargo test -p saoma-domain --test schemas`."
    ));
    // Sorted keys, so the text does not depend on serde_json's `preserve_order` feature.
    schema.sort_all_objects();
    schema
}

/// Every published JSON Schema, by file name.
fn generated() -> Vec<(&'static str, Value)> {
    vec![
        (
            "officer-command.schema.json",
            schema_of::<SignedEnvelope<OfficerCommand>>(
                "Saoma officer command: a signed envelope (HTTP POST /api/v1/commands, NATS)",
            ),
        ),
        (
            "registry-command.schema.json",
            schema_of::<RegistryCommand>(
                "Saoma registry command (HTTP POST /api/v1/admin/registry, JSON imports)",
            ),
        ),
        (
            "inspection-event.schema.json",
            schema_of::<Sealed<InspectionEvent>>(
                "Saoma stored inspection event: an event body sealed into its stream's hash chain",
            ),
        ),
        (
            "registry-event.schema.json",
            schema_of::<Sealed<RegistryEvent>>(
                "Saoma stored registry event: an event body sealed into its entity's hash chain",
            ),
        ),
        (
            "registry-officer.schema.json",
            schema_of::<Officer>(
                "Saoma officer record (HTTP GET /api/v1/admin/registry/officers/{key})",
            ),
        ),
    ]
}

fn pretty(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).expect("a schema serialises");
    text.push('\n');
    text
}

fn schema_named(name: &str) -> Value {
    generated()
        .into_iter()
        .find(|(file, _)| *file == name)
        .map(|(_, schema)| schema)
        .unwrap_or_else(|| panic!("no schema named {name}"))
}

#[test]
fn the_checked_in_json_schemas_match_the_rust_wire_types() {
    let dir = schemas_dir().join("json");
    let update = std::env::var(UPDATE_VAR).is_ok_and(|v| v == "1");
    let mut drifted = Vec::new();
    for (file, schema) in generated() {
        let path = dir.join(file);
        let want = pretty(&schema);
        let have = std::fs::read_to_string(&path).ok();
        if have.as_deref() == Some(want.as_str()) {
            continue;
        }
        if update {
            // Write and rename, so tests reading the files meanwhile never see half of one.
            std::fs::create_dir_all(&dir).expect("create schemas/json");
            let partial = path.with_extension("json.partial");
            std::fs::write(&partial, want).expect("write a schema file");
            std::fs::rename(&partial, &path).expect("replace a schema file");
        } else {
            drifted.push(file);
        }
    }
    assert!(
        drifted.is_empty(),
        "schemas/json/ has drifted from the Rust wire types: {drifted:?}. If the change to the \
         contract is intended, regenerate with `{UPDATE_VAR}=1 cargo test -p saoma-domain --test \
         schemas`, review the diff and commit it"
    );
}

#[test]
fn the_schemas_directory_holds_no_stale_json_schema() {
    let names: BTreeSet<String> = generated().iter().map(|(f, _)| f.to_string()).collect();
    let Ok(entries) = std::fs::read_dir(schemas_dir().join("json")) else {
        return; // nothing checked in yet; the drift test reports that
    };
    for entry in entries {
        let name = entry.expect("read schemas/json").file_name();
        let name = name.to_string_lossy();
        assert!(
            names.contains(name.as_ref()),
            "schemas/json/{name} is not generated from any wire type"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Examples validated against the schemas
// ---------------------------------------------------------------------------------------------

fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema_named(name))
        .unwrap_or_else(|e| panic!("{name} is not a valid JSON Schema: {e}"))
}

fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value) {
    let errors = errors(validator, instance);
    assert!(errors.is_empty(), "{errors:#?}\nin {instance:#}");
}

fn assert_invalid(validator: &jsonschema::Validator, instance: &Value, why: &str) {
    assert!(
        !validator.is_valid(instance),
        "{why}: the schema accepted {instance:#}"
    );
}

fn time(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn device_key() -> SigningKey {
    SigningKey::from_bytes(&[5; 32])
}

fn notary() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn certificate() -> OfficerRef {
    OfficerRef::Certificate(CertificateNo::parse("ZF630100001").unwrap())
}

fn police() -> OfficerRef {
    OfficerRef::Police {
        badge_no: BadgeNo::parse("012345").unwrap(),
        name: "张三".into(),
    }
}

fn inspection_id() -> Uuid {
    Uuid::from_u128(0x6f1c1f36_3a5e_4c55_8f43_0a4c1d9b5b10)
}

fn enterprise_code() -> CreditCode {
    CreditCode::parse("91350100M000100Y43").unwrap()
}

fn issue(kind: InspectionKind) -> OfficerCommand {
    OfficerCommand::IssueCode(IssueCode {
        inspection_id: inspection_id(),
        kind,
        agency: AgencyCode::parse("QH-SCJ").unwrap(),
        enterprise: enterprise_code(),
        items: vec![ItemCode::parse("SC-001").unwrap()],
        officers: vec![certificate(), police()],
        date: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
        joint_partners: vec![AgencyCode::parse("QH-GA").unwrap()],
    })
}

/// One command of every variant (and of every kind of code).
fn officer_commands() -> Vec<OfficerCommand> {
    let id = inspection_id();
    vec![
        issue(InspectionKind::Planned {
            plan: PlanId::parse("P-2026-1").unwrap(),
        }),
        issue(InspectionKind::Supplementary {
            reason: SupplementReason::parse("未报送涉企行政检查计划").unwrap(),
        }),
        issue(InspectionKind::Unplanned {
            trigger: Trigger::Complaint,
            basis: "12345热线投诉".into(),
        }),
        issue(InspectionKind::NonInspection {
            purpose: VisitPurpose::LegalCheckup,
        }),
        OfficerCommand::ShowCode { inspection_id: id },
        OfficerCommand::ScanEnterpriseCode {
            inspection_id: id,
            enterprise: enterprise_code(),
        },
        OfficerCommand::ReportResult {
            inspection_id: id,
            outcome: Outcome::NoProblems,
        },
        OfficerCommand::ReportResult {
            inspection_id: id,
            outcome: Outcome::ProblemsFound {
                feedback: "消防通道堵塞".into(),
            },
        },
        OfficerCommand::RevokeCode {
            inspection_id: id,
            reason: "企业停业".into(),
        },
    ]
}

fn signed(command: &impl Serialize, officer: &OfficerRef) -> Value {
    sign_envelope(
        command,
        officer,
        time("2026-03-02T02:00:00Z"),
        Uuid::from_u128(42),
        &device_key(),
    )
}

/// A signed supplementary `IssueCode`, for mutation.
fn supplementary_envelope() -> Value {
    signed(&officer_commands()[1], &certificate())
}

#[test]
fn a_signed_envelope_of_every_officer_command_validates() {
    let v = validator("officer-command.schema.json");
    for command in officer_commands() {
        for officer in [certificate(), police()] {
            let envelope = signed(&command, &officer);
            assert_valid(&v, &envelope);
            // The schema describes what the parser accepts, not more.
            serde_json::from_value::<SignedEnvelope<OfficerCommand>>(envelope).unwrap();
        }
    }
}

#[test]
fn an_issue_code_without_joint_partners_validates() {
    let mut envelope = supplementary_envelope();
    envelope["command"]
        .as_object_mut()
        .unwrap()
        .remove("joint_partners");
    assert_valid(&validator("officer-command.schema.json"), &envelope);
}

#[test]
fn an_unknown_field_is_refused_at_every_level_of_an_envelope() {
    let v = validator("officer-command.schema.json");
    for pointer in ["", "/command", "/command/kind"] {
        let mut envelope = supplementary_envelope();
        envelope.pointer_mut(pointer).unwrap()["extra"] = json!(1);
        assert_invalid(&v, &envelope, &format!("unknown field at '{pointer}'"));
    }
    let mut envelope = signed(&officer_commands()[4], &certificate());
    envelope["command"]["extra"] = json!(1);
    assert_invalid(&v, &envelope, "unknown field in ShowCode");
}

#[test]
fn a_bad_credit_code_is_refused_by_the_schema() {
    let v = validator("officer-command.schema.json");
    for bad in ["91350100M000100I43", "9135010", "91350100M000100Y433"] {
        let mut envelope = supplementary_envelope();
        envelope["command"]["enterprise"] = json!(bad);
        assert_invalid(&v, &envelope, bad);
    }
}

#[test]
fn a_wrong_check_digit_passes_the_schema_and_is_refused_by_the_parser() {
    // The GB 32100 check digit is a weighted sum modulo 31: beyond what a pattern can say.
    let mut envelope = supplementary_envelope();
    envelope["command"]["enterprise"] = json!("91350100M000100Y44");
    assert_valid(&validator("officer-command.schema.json"), &envelope);
    let e = serde_json::from_value::<SignedEnvelope<OfficerCommand>>(envelope).unwrap_err();
    assert!(e.to_string().contains("校验位"), "{e}");
}

#[test]
fn a_201_character_reason_is_refused_and_200_are_accepted() {
    let v = validator("officer-command.schema.json");
    let mut envelope = supplementary_envelope();
    envelope["command"]["kind"]["reason"] = json!("检".repeat(201));
    assert_invalid(&v, &envelope, "201-character reason");
    envelope["command"]["kind"]["reason"] = json!("检".repeat(200));
    assert_valid(&v, &envelope);
    envelope["command"]["kind"]["reason"] = json!("");
    assert_invalid(&v, &envelope, "empty reason");
}

#[test]
fn malformed_envelope_values_are_refused() {
    let v = validator("officer-command.schema.json");
    let cases: [(&str, Value); 7] = [
        ("/signature", json!("not base64")),
        ("/key_id", json!("XYZ")),
        ("/device_time", json!("yesterday")),
        ("/command_id", json!("42")),
        ("/officer", json!({"badge_no": "12a456", "name": "张三"})),
        ("/command/type", json!("LaunchRocket")),
        ("/command/date", json!("2026-13-01")),
    ];
    for (pointer, value) in cases {
        let mut envelope = supplementary_envelope();
        *envelope.pointer_mut(pointer).unwrap() = value;
        assert_invalid(&v, &envelope, pointer);
    }
    let mut envelope = supplementary_envelope();
    envelope.as_object_mut().unwrap().remove("signature");
    assert_invalid(&v, &envelope, "missing signature");
}

fn agency(code: &str) -> Agency {
    Agency {
        code: AgencyCode::parse(code).unwrap(),
        name: "青海省市场监督管理局".into(),
        level: AgencyLevel::Province,
        region: RegionCode::parse("630000").unwrap(),
        domain: EnforcementDomain::MarketRegulation,
    }
}

fn enterprise() -> Enterprise {
    Enterprise {
        credit_code: enterprise_code(),
        name: "甲公司".into(),
        region: RegionCode::parse("350100").unwrap(),
        credit_grade: CreditGrade::A,
        status: EnterpriseStatus::Active,
    }
}

fn item() -> Item {
    Item {
        code: ItemCode::parse("SC-001").unwrap(),
        name: "食品生产许可检查".into(),
        legal_basis: "《食品安全法》第一百一十条".into(),
        domain: EnforcementDomain::FoodDrug,
    }
}

fn plan() -> Plan {
    Plan {
        id: PlanId::parse("P-2026-1").unwrap(),
        agency: AgencyCode::parse("QH-SCJ").unwrap(),
        year: 2026,
        enterprises: vec![enterprise_code()],
        items: vec![ItemCode::parse("SC-001").unwrap()],
        allowed_visits: 1,
    }
}

fn profile(credential: OfficerRef) -> OfficerProfile {
    OfficerProfile {
        credential,
        name: "王五".into(),
        agency: AgencyCode::parse("QH-SCJ").unwrap(),
        phone: Some("13800000000".into()),
    }
}

fn public_key() -> PublicKey {
    PublicKey(device_key().verifying_key())
}

#[test]
fn every_registry_command_validates() {
    let v = validator("registry-command.schema.json");
    let commands = [
        RegistryCommand::RegisterAgency {
            agency: agency("QH-SCJ"),
        },
        RegistryCommand::RegisterOfficer {
            officer: profile(certificate()),
        },
        RegistryCommand::RegisterOfficer {
            officer: OfficerProfile {
                phone: None,
                ..profile(police())
            },
        },
        RegistryCommand::SetOfficerStatus {
            officer: certificate(),
            status: OfficerStatus::Suspended,
        },
        RegistryCommand::RegisterDeviceKey {
            officer: police(),
            public_key: public_key(),
        },
        RegistryCommand::RevokeDeviceKey {
            officer: certificate(),
            key_id: public_key().key_id(),
        },
        RegistryCommand::RegisterEnterprise {
            enterprise: enterprise(),
        },
        RegistryCommand::RegisterItem { item: item() },
        RegistryCommand::ApprovePlan { plan: plan() },
    ];
    for command in commands {
        let value = serde_json::to_value(&command).unwrap();
        assert_valid(&v, &value);
        assert_eq!(
            serde_json::from_value::<RegistryCommand>(value).unwrap(),
            command
        );
    }
    let mut value = serde_json::to_value(RegistryCommand::RegisterItem { item: item() }).unwrap();
    value["item"]["extra"] = json!(1);
    assert_invalid(&v, &value, "unknown field in a registry record");
}

fn meta(actor: Actor, signed: bool) -> EventMeta {
    EventMeta {
        recorded_at: time("2026-03-02T02:00:01Z"),
        device_time: signed.then(|| time("2026-03-02T02:00:00Z")),
        late: false,
        actor,
        command_id: signed.then(|| Uuid::from_u128(42)),
    }
}

/// Seals `bodies` into one chain, as the store holds them.
fn sealed_chain<E: Serialize + Clone>(
    stream: &str,
    bodies: &[(EventMeta, Option<Value>, E)],
) -> Vec<Value> {
    let mut chain = Chain::default();
    bodies
        .iter()
        .map(|(meta, command, body)| {
            let sealed = Sealed::seal(
                stream.to_string(),
                &chain,
                meta.clone(),
                command.clone(),
                body.clone(),
                &notary(),
            );
            chain.advance(sealed.sequence, sealed.hash);
            serde_json::to_value(&sealed).unwrap()
        })
        .collect()
}

#[test]
fn a_sealed_inspection_event_of_every_kind_validates() {
    let at = time("2026-03-02T02:00:00Z");
    let officer = || Actor::Officer {
        officer: "ZF630100001".into(),
        key_id: public_key().key_id(),
    };
    let envelope = supplementary_envelope();
    let bodies = vec![
        (
            meta(officer(), true),
            Some(envelope),
            InspectionEvent::CodeIssued {
                inspection_id: inspection_id(),
                kind: InspectionKind::Supplementary {
                    reason: SupplementReason::parse("未报送涉企行政检查计划").unwrap(),
                },
                agency: agency("QH-SCJ"),
                enterprise: EnterpriseOnCode {
                    credit_code: enterprise_code(),
                    name: "甲公司".into(),
                    region: "350100".into(),
                },
                items: vec![item()],
                officers: vec![
                    OfficerOnCode {
                        id: certificate(),
                        name: "王五".into(),
                    },
                    OfficerOnCode {
                        id: police(),
                        name: "张三".into(),
                    },
                ],
                date: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
                joint_partners: vec![agency("QH-GA")],
                validity: ValidityRule::default()
                    .window(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()),
            },
        ),
        (
            meta(officer(), true),
            None,
            InspectionEvent::CodeShown { at },
        ),
        (
            meta(Actor::TokenHolder, false),
            None,
            InspectionEvent::ScanRefused {
                by: Scanner::Enterprise,
                at,
                reason: ScanRefusal::ForgedToken,
            },
        ),
        (
            meta(Actor::TokenHolder, false),
            None,
            InspectionEvent::CodeScanned {
                by: Scanner::Enterprise,
                at,
                mutual: false,
            },
        ),
        (
            meta(Actor::TokenHolder, false),
            None,
            InspectionEvent::RatingGiven {
                level: 5,
                comment: None,
                at,
            },
        ),
        (
            meta(Actor::TokenHolder, false),
            None,
            InspectionEvent::RatingGiven {
                level: 4,
                comment: Some("态度很好".into()),
                at,
            },
        ),
        (
            meta(officer(), true),
            None,
            InspectionEvent::ResultReported {
                outcome: Outcome::NoProblems,
                at,
            },
        ),
        (
            meta(Actor::TokenHolder, false),
            None,
            InspectionEvent::FeedbackGiven {
                text: "检查时间过长".into(),
                at,
            },
        ),
        (
            meta(Actor::System, false),
            None,
            InspectionEvent::CodeRevoked {
                reason: "到期未使用".into(),
                at,
            },
        ),
    ];
    let v = validator("inspection-event.schema.json");
    let stream = format!("Inspection/{}", inspection_id());
    for event in sealed_chain(&stream, &bodies) {
        assert_valid(&v, &event);
    }
}

#[test]
fn a_sealed_registry_event_of_every_kind_validates() {
    let admin = || {
        meta(
            Actor::Admin {
                name: "admin".into(),
            },
            false,
        )
    };
    let bodies = [
        RegistryEvent::AgencyRegistered {
            agency: agency("QH-SCJ"),
        },
        RegistryEvent::AgencyUpdated {
            agency: agency("QH-SCJ"),
        },
        RegistryEvent::OfficerRegistered {
            officer: profile(certificate()),
        },
        RegistryEvent::OfficerUpdated {
            officer: profile(certificate()),
        },
        RegistryEvent::OfficerStatusChanged {
            status: OfficerStatus::Revoked,
        },
        RegistryEvent::DeviceKeyRegistered {
            key_id: public_key().key_id(),
            public_key: public_key(),
        },
        RegistryEvent::DeviceKeyRevoked {
            key_id: public_key().key_id(),
        },
        RegistryEvent::EnterpriseRegistered {
            enterprise: enterprise(),
        },
        RegistryEvent::EnterpriseUpdated {
            enterprise: enterprise(),
        },
        RegistryEvent::ItemRegistered { item: item() },
        RegistryEvent::ItemUpdated { item: item() },
        RegistryEvent::PlanApproved { plan: plan() },
        RegistryEvent::PlanAmended { plan: plan() },
    ]
    .map(|body| (admin(), None, body));
    let v = validator("registry-event.schema.json");
    for event in sealed_chain("Registry/officer:ZF630100001", &bodies) {
        assert_valid(&v, &event);
    }
    let mut event = sealed_chain("Registry/item:SC-001", &bodies[9..10]).remove(0);
    event["hash"] = json!("not a digest");
    assert_invalid(&v, &event, "a hash that is not 64 hex characters");
}

#[test]
fn an_officer_record_validates() {
    let officer = Officer {
        profile: profile(certificate()),
        status: OfficerStatus::Active,
        keys: vec![
            DeviceKey {
                key_id: public_key().key_id(),
                public_key: public_key(),
                registered_at: time("2026-01-01T00:00:00Z"),
                revoked_at: Some(time("2026-02-01T00:00:00Z")),
            },
            DeviceKey {
                key_id: KeyId::of(&notary().verifying_key()),
                public_key: PublicKey(notary().verifying_key()),
                registered_at: time("2026-02-01T00:00:00Z"),
                revoked_at: None,
            },
        ],
    };
    assert_valid(
        &validator("registry-officer.schema.json"),
        &serde_json::to_value(officer).unwrap(),
    );
}

// ---------------------------------------------------------------------------------------------
// openapi.yaml
// ---------------------------------------------------------------------------------------------

fn openapi() -> serde_json::Value {
    let text = std::fs::read_to_string(schemas_dir().join("openapi.yaml")).expect("read openapi");
    serde_norway::from_str(&text).expect("openapi.yaml is YAML with string keys")
}

/// The full paths the HTTP router registers, read from `services/src/http/mod.rs`: every
/// `.route("…")` of a `let NAME = Router::new()…;` builder, under the prefixes its `.nest`
/// calls give it.
fn router_paths() -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../services/src/http/mod.rs");
    let source = std::fs::read_to_string(&path).expect("read services/src/http/mod.rs");
    let start = source
        .find("pub fn router(")
        .expect("mod.rs defines `pub fn router(`");
    let body = &source[start..];
    let body = &body[..body.find("\n}\n").unwrap_or(body.len())];

    // Each statement of the function is one builder; the last one (no `let`) is the root.
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut nests: Vec<(String, String, String)> = Vec::new(); // (parent, prefix, child)
    for statement in body.split(';') {
        if !statement.contains("Router::new()") {
            continue;
        }
        let name = statement
            .split("let ")
            .nth(1)
            .and_then(|s| s.split('=').next())
            .map_or_else(String::new, |s| s.trim().to_string());
        // `.route("…"` or, where rustfmt breaks a long call, `.route(\n    "…"`.
        for call in statement.split(".route(").skip(1) {
            let Some(call) = call.trim_start().strip_prefix('"') else {
                continue;
            };
            let route = call.split('"').next().unwrap().to_string();
            routes.entry(name.clone()).or_default().push(route);
        }
        for call in statement.split(".nest(\"").skip(1) {
            let prefix = call.split('"').next().unwrap().to_string();
            let child = call.split(',').nth(1).unwrap_or("");
            let child = child.split(')').next().unwrap().trim().to_string();
            nests.push((name.clone(), prefix, child));
        }
    }
    let prefix_of = |mut name: String| {
        let mut prefix = String::new();
        while let Some((parent, p, _)) = nests.iter().find(|(_, _, child)| *child == name) {
            prefix = format!("{p}{prefix}");
            name = parent.clone();
        }
        assert!(
            name.is_empty(),
            "builder `{name}` is never nested into the root router"
        );
        prefix
    };
    let paths: BTreeSet<String> = routes
        .iter()
        .flat_map(|(name, rs)| {
            let prefix = prefix_of(name.clone());
            rs.iter()
                .map(move |r| format!("{prefix}{r}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        paths.len() >= 10,
        "found too few routes in mod.rs ({paths:?}): has the router's shape changed?"
    );
    paths
}

#[test]
fn openapi_documents_every_route_the_router_registers_and_no_other() {
    let doc = openapi();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "openapi.yaml is OpenAPI 3.1"
    );
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .expect("openapi.yaml has paths")
        .keys()
        .cloned()
        .collect();
    let registered = router_paths();
    let missing: Vec<_> = registered.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&registered).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "openapi.yaml and services/src/http/mod.rs disagree: undocumented routes {missing:?}, \
         documented but not routed {extra:?}"
    );
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_ref_in_openapi_resolves() {
    let doc = openapi();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(
        refs.iter().any(|r| r.starts_with("json/")),
        "openapi.yaml refers to the JSON Schemas"
    );
    for r in refs {
        let (file, pointer) = r.split_once('#').unwrap_or((&r, ""));
        let target = if file.is_empty() {
            doc.clone()
        } else {
            let text = std::fs::read_to_string(schemas_dir().join(file))
                .unwrap_or_else(|e| panic!("$ref {r}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("$ref {r}: {e}"))
        };
        assert!(
            target.pointer(pointer).is_some(),
            "$ref {r} points at nothing"
        );
    }
}
