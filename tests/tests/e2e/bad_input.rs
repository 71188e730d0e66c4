//! Bad input gets a clear 4xx with a machine-readable reason and changes nothing.

use crate::lifecycle::{issue, pair};
use crate::support::*;
use saoma_domain::inspection::{InspectionKind, OfficerCommand, VisitPurpose};
use saoma_domain::registry::RegistryCommand;
use serde_json::{json, Value};
use uuid::Uuid;

fn visit(w: &World) -> saoma_domain::inspection::IssueCode {
    issue(
        w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::Service,
        },
        pair(w),
    )
}

async fn raw_post(app: &TestApp, path: &str, body: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{}", app.base, path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Submits `envelope` and checks the refusal and that the store is unchanged.
async fn refused(app: &TestApp, envelope: &Value, status: u16, code: &str) {
    let before = app.event_count().await;
    let reply = app.client.submit(envelope).await.unwrap();
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.error_code(), Some(code), "{:?}", reply.body);
    assert!(reply.body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert_eq!(
        app.event_count().await,
        before,
        "a refused command changed the store"
    );
}

pub async fn malformed_and_mistyped_bodies_are_refused(app: TestApp) {
    let w = populate(&app).await;
    let before = app.event_count().await;
    let (status, body) = raw_post(&app, "/api/v1/commands", b"{\"command\": ".to_vec()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );

    let mut envelope = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    envelope["device_time"] = json!(12345);
    refused(&app, &envelope, 422, "invalid_command").await;

    let mut envelope = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    envelope["command"]["items"] = json!("SC-SP-001");
    refused(&app, &envelope, 422, "invalid_command").await;

    let mut envelope = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    envelope["command"]["priority"] = json!("high");
    refused(&app, &envelope, 422, "invalid_command").await;

    let mut envelope = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    envelope["extra"] = json!(true);
    refused(&app, &envelope, 422, "invalid_command").await;

    let (status, body) = raw_post(&app, "/api/v1/commands", b"[1,2,3]".to_vec()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_request"))
    );
    assert_eq!(app.event_count().await, before);
}

pub async fn an_oversized_body_is_refused(app: TestApp) {
    let w = populate(&app).await;
    let before = app.event_count().await;
    let mut cmd = visit(&w);
    cmd.kind = InspectionKind::Unplanned {
        trigger: saoma_domain::inspection::Trigger::Report,
        basis: "举".repeat(40_000),
    };
    let envelope = signed(&w.wang, &OfficerCommand::IssueCode(cmd));
    let (status, _) = raw_post(
        &app,
        "/api/v1/commands",
        serde_json::to_vec(&envelope).unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(app.event_count().await, before);
}

pub async fn a_bad_credit_code_check_digit_is_refused(app: TestApp) {
    let w = populate(&app).await;
    let mut envelope = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    let code = envelope["command"]["enterprise"]
        .as_str()
        .unwrap()
        .to_string();
    let last = if code.ends_with('0') { "1" } else { "0" };
    envelope["command"]["enterprise"] = json!(format!("{}{last}", &code[..17]));
    refused(&app, &envelope, 422, "invalid_command").await;
    let reply = app.client.submit(&envelope).await.unwrap();
    assert!(reply.body["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("校验位"));

    let before = app.event_count().await;
    let mut bad = serde_json::to_value(RegistryCommand::RegisterEnterprise {
        enterprise: saoma_domain::registry::Enterprise {
            credit_code: w.enterprise.clone(),
            name: "某公司".into(),
            region: saoma_domain::ids::RegionCode::parse("630100").unwrap(),
            credit_grade: saoma_domain::registry::CreditGrade::A,
            status: saoma_domain::registry::EnterpriseStatus::Active,
        },
    })
    .unwrap();
    bad["enterprise"]["credit_code"] = json!(format!("{}{last}", &code[..17]));
    let reply = app
        .client
        .post_json("/api/v1/admin/registry", &bad)
        .await
        .unwrap();
    assert_eq!(reply.status, 422);
    assert_eq!(app.event_count().await, before);
}

pub async fn a_201_character_supplement_reason_is_refused(app: TestApp) {
    let w = populate(&app).await;
    let mut envelope = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    envelope["command"]["kind"] = json!({"kind": "supplementary", "reason": "补".repeat(201)});
    refused(&app, &envelope, 422, "invalid_command").await;
    let reply = app.client.submit(&envelope).await.unwrap();
    assert!(reply.body["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("reason_too_long"));
}

pub async fn bad_signatures_replays_and_unknown_or_suspended_officers_are_refused(app: TestApp) {
    let w = populate(&app).await;

    let mut envelope = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    envelope["command"]["date"] = json!(today().succ_opt().unwrap());
    refused(&app, &envelope, 401, "bad_signature").await;

    let stranger = saoma_services::client::Device::new(
        saoma_domain::ids::OfficerRef::Certificate(
            saoma_domain::ids::CertificateNo::parse("ZF999999999").unwrap(),
        ),
        ed25519_dalek::SigningKey::from_bytes(&[99; 32]),
    );
    refused(
        &app,
        &signed(&stranger, &OfficerCommand::IssueCode(visit(&w))),
        403,
        "unknown_officer",
    )
    .await;

    let mut cmd = visit(&w);
    cmd.officers = vec![w.suspended.officer.clone()];
    refused(
        &app,
        &signed(&w.suspended, &OfficerCommand::IssueCode(cmd)),
        403,
        "officer_suspended",
    )
    .await;

    // A key other than the registered one, in the officer's name.
    let impostor = saoma_services::client::Device::new(
        w.wang.officer.clone(),
        ed25519_dalek::SigningKey::from_bytes(&[98; 32]),
    );
    refused(
        &app,
        &signed(&impostor, &OfficerCommand::IssueCode(visit(&w))),
        403,
        "unknown_key",
    )
    .await;

    // A key revoked by an event of its own.
    let reply = app
        .register(RegistryCommand::RevokeDeviceKey {
            officer: w.li.officer.clone(),
            key_id: w.li.public_key().key_id(),
        })
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let mut cmd = visit(&w);
    cmd.officers = vec![w.li.officer.clone()];
    refused(
        &app,
        &signed(&w.li, &OfficerCommand::IssueCode(cmd)),
        403,
        "key_revoked",
    )
    .await;

    // A key cannot sign anything dated before its registration.
    let mut cmd = visit(&w);
    cmd.officers = vec![w.wang.officer.clone()];
    let early = w.wang.sign(
        &OfficerCommand::IssueCode(cmd),
        now() - chrono::Duration::hours(1),
        Uuid::new_v4(),
    );
    refused(&app, &early, 403, "key_not_yet_valid").await;

    // The same signed command twice: stored once, the replay refused with the original outcome.
    let envelope = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    let first = app.client.submit(&envelope).await.unwrap();
    assert_eq!(first.status, 201);
    refused(&app, &envelope, 409, "duplicate_command").await;
    let again = app.client.submit(&envelope).await.unwrap();
    assert_eq!(
        again.body["error"]["original"]["events"],
        first.body["events"]
    );
}

pub async fn admin_endpoints_need_the_admin_token(app: TestApp) {
    let before = app.event_count().await;
    let reply = app
        .public
        .post_json("/api/v1/admin/import/commands", &json!([]))
        .await
        .unwrap();
    assert_eq!(
        (reply.status, reply.error_code()),
        (401, Some("unauthorized"))
    );
    let wrong = saoma_services::client::Client::new(&app.base, Some("wrong".into()));
    let reply = wrong
        .get(&format!(
            "/api/v1/admin/inspections/{}/events",
            Uuid::new_v4()
        ))
        .await
        .unwrap();
    assert_eq!(reply.status, 401);
    assert_eq!(app.event_count().await, before);
}

pub async fn an_import_with_one_bad_row_changes_nothing(app: TestApp) {
    let before = app.event_count().await;
    let csv = "code,name,level,region,domain\n\
               QH-A,青海省生态环境厅,province,630000,ecology_environment\n\
               QH-B,青海省交通运输厅,galaxy,630000,transport\n";
    let reply = app.client.import_csv("agencies", csv.into()).await.unwrap();
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(reply.error_code(), Some("import_rows_invalid"));
    assert_eq!(reply.body["error"]["rows"][0]["row"], 2);
    assert_eq!(app.event_count().await, before);
}

pub async fn a_forged_token_is_refused_and_recorded(app: TestApp) {
    let w = populate(&app).await;
    let cmd = visit(&w);
    let id = cmd.inspection_id;
    let issued = app
        .client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(cmd)))
        .await
        .unwrap();
    let token = issued.body["token"].as_str().unwrap();
    // Same inspection id, tag altered: one character in the middle of the tag (the last one
    // carries two padding bits, which must stay zero for the token to decode at all, so
    // changing it made the token malformed one time in sixteen).
    let forged: String = token
        .char_indices()
        .map(|(i, c)| match (i, c) {
            (30, 'A') => 'B',
            (30, _) => 'A',
            _ => c,
        })
        .collect();
    assert_ne!(forged, token);
    let reply = app
        .public
        .post_json(&format!("/api/v1/codes/{forged}/scan"), &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (reply.status, reply.error_code()),
        (409, Some("forged_token"))
    );
    let view = app
        .public
        .get(&format!("/api/v1/codes/{forged}"))
        .await
        .unwrap();
    assert_eq!(
        (view.status, view.error_code()),
        (404, Some("unknown_code"))
    );
    let garbage = app
        .public
        .post_json("/api/v1/codes/not-a-token/scan", &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (garbage.status, garbage.error_code()),
        (404, Some("unknown_code"))
    );
    let trace = crate::lifecycle::assert_trace_verifies(&app, id).await;
    assert_eq!(types(&trace), ["CodeIssued", "ScanRefused"]);
}
