//! Every kind of code through its whole lifecycle over HTTP, against each store; the stored
//! trace chains, and every notary and officer signature in it verifies.

use crate::support::*;
use saoma_domain::envelope::signing_bytes;
use saoma_domain::ids::OfficerRef;
use saoma_domain::inspection::{
    InspectionKind, IssueCode, OfficerCommand, Outcome, SupplementReason, Trigger, VisitPurpose,
    STANDARD_SUPPLEMENT_REASON,
};
use saoma_domain::keys::{PublicKey, SignatureBytes};
use saoma_domain::seal::{verify_stored, Chain};
use serde_json::{json, Value};
use uuid::Uuid;

pub fn issue(w: &World, kind: InspectionKind, officers: Vec<OfficerRef>) -> IssueCode {
    IssueCode {
        inspection_id: Uuid::new_v4(),
        kind,
        agency: w.market.clone(),
        enterprise: w.enterprise.clone(),
        items: vec![w.food_item.clone()],
        officers,
        date: today(),
        joint_partners: vec![],
    }
}

pub fn pair(w: &World) -> Vec<OfficerRef> {
    vec![w.wang.officer.clone(), w.li.officer.clone()]
}

/// Checks every event's hash, chain link and notary signature, and every embedded officer
/// envelope's signature against the officer's registered key.
pub async fn assert_trace_verifies(app: &TestApp, id: Uuid) -> Value {
    let trace = app
        .client
        .get(&format!("/api/v1/admin/inspections/{id}/events"))
        .await
        .unwrap();
    assert_eq!(trace.status, 200, "{:?}", trace.body);
    assert_eq!(
        trace.body["verified"],
        json!(true),
        "{:?}",
        trace.body["first_broken"]
    );
    let notary = app.client.get("/api/v1/admin/notary").await.unwrap().body;
    let notary_key = PublicKey::from_base64(notary["public_key"].as_str().unwrap()).unwrap();
    let mut chain = Chain::default();
    for event in trace.body["events"].as_array().unwrap() {
        let hash = verify_stored(event, &chain, |k| {
            (k.0 == notary["key_id"]).then_some(notary_key)
        })
        .unwrap();
        chain.advance(chain.version + 1, hash);
        if let Some(envelope) = event.get("command") {
            let officer = envelope["officer"].as_str().unwrap();
            let record = app
                .client
                .get(&format!("/api/v1/admin/registry/officers/{officer}"))
                .await
                .unwrap();
            let key = record.body["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["key_id"] == envelope["key_id"])
                .expect("signing key is registered");
            let public = PublicKey::from_base64(key["public_key"].as_str().unwrap()).unwrap();
            let sig = SignatureBytes::from_base64(envelope["signature"].as_str().unwrap()).unwrap();
            assert!(
                public.verify(&signing_bytes(envelope).unwrap(), &sig),
                "officer signature of {event}"
            );
        }
    }
    assert!(chain.version >= 1);
    trace.body
}

async fn full_lifecycle(app: &TestApp, w: &World, kind: InspectionKind) {
    let cmd = issue(w, kind, pair(w));
    let id = cmd.inspection_id;
    let issued = app
        .client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(cmd)))
        .await
        .unwrap();
    assert_eq!(issued.status, 201, "{:?}", issued.body);
    let token = issued.body["token"].as_str().unwrap().to_string();
    assert!(issued.body["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/c/{token}")));

    let shown = app
        .client
        .submit(&signed(
            &w.li,
            &OfficerCommand::ShowCode { inspection_id: id },
        ))
        .await
        .unwrap();
    assert_eq!(shown.status, 201, "{:?}", shown.body);

    let view = app
        .public
        .post_json(&format!("/api/v1/codes/{token}/scan"), &json!({}))
        .await
        .unwrap();
    assert_eq!(view.status, 200, "{:?}", view.body);
    assert_eq!(view.body["enterprise"]["name"], "西宁华创食品有限公司");
    assert_eq!(view.body["agency"]["name"], "青海省市场监督管理局");
    assert_eq!(
        view.body["items"][0]["legal_basis"],
        "《中华人民共和国食品安全法》第一百一十条"
    );
    assert_eq!(view.body["validity"], "valid");
    assert_eq!(view.body["scanned"], true);

    let mutual = OfficerCommand::ScanEnterpriseCode {
        inspection_id: id,
        enterprise: w.enterprise.clone(),
    };
    let scanned = app.client.submit(&signed(&w.wang, &mutual)).await.unwrap();
    assert_eq!(scanned.status, 201, "{:?}", scanned.body);

    let report = OfficerCommand::ReportResult {
        inspection_id: id,
        outcome: Outcome::ProblemsFound {
            feedback: "后厨消防通道堆放杂物，已责令当场整改".into(),
        },
    };
    assert_eq!(
        app.client
            .submit(&signed(&w.wang, &report))
            .await
            .unwrap()
            .status,
        201
    );

    let rated = app
        .public
        .post_json(
            &format!("/api/v1/codes/{token}/rating"),
            &json!({"level": 5, "comment": "检查规范，态度很好"}),
        )
        .await
        .unwrap();
    assert_eq!(rated.status, 200, "{:?}", rated.body);
    assert_eq!(rated.body["rating"]["level"], 5);
    assert_eq!(rated.body["result"]["problems_found"], true);
    assert_eq!(rated.body["mutual_verified"], true);

    let trace = assert_trace_verifies(app, id).await;
    assert_eq!(
        types(&trace),
        [
            "CodeIssued",
            "CodeShown",
            "CodeScanned",
            "CodeScanned",
            "ResultReported",
            "RatingGiven"
        ]
    );
}

pub async fn every_kind_of_code_completes_its_lifecycle(app: TestApp) {
    let w = populate(&app).await;
    full_lifecycle(
        &app,
        &w,
        InspectionKind::Planned {
            plan: w.plan.clone(),
        },
    )
    .await;
    full_lifecycle(
        &app,
        &w,
        InspectionKind::Supplementary {
            reason: SupplementReason::parse(STANDARD_SUPPLEMENT_REASON).unwrap(),
        },
    )
    .await;
    full_lifecycle(
        &app,
        &w,
        InspectionKind::Unplanned {
            trigger: Trigger::Complaint,
            basis: "12315平台投诉：销售过期食品".into(),
        },
    )
    .await;
    full_lifecycle(
        &app,
        &w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::LegalEducation,
        },
    )
    .await;
}

pub async fn a_second_planned_code_over_the_plan_frequency_is_refused(app: TestApp) {
    let w = populate(&app).await;
    let first = issue(
        &w,
        InspectionKind::Planned {
            plan: w.plan.clone(),
        },
        pair(&w),
    );
    assert_eq!(
        app.client
            .submit(&signed(&w.wang, &OfficerCommand::IssueCode(first)))
            .await
            .unwrap()
            .status,
        201
    );
    let before = app.event_count().await;
    let second = issue(
        &w,
        InspectionKind::Planned {
            plan: w.plan.clone(),
        },
        pair(&w),
    );
    let reply = app
        .client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(second)))
        .await
        .unwrap();
    assert_eq!(reply.status, 409);
    assert_eq!(reply.error_code(), Some("plan_frequency_exceeded"));
    assert_eq!(reply.body["error"]["message"], "检查计划超出频次");
    assert_eq!(app.event_count().await, before);
}

pub async fn a_revoked_code_frees_its_plan_visit_and_its_scan_is_refused_and_recorded(
    app: TestApp,
) {
    let w = populate(&app).await;
    let first = issue(
        &w,
        InspectionKind::Planned {
            plan: w.plan.clone(),
        },
        pair(&w),
    );
    let id = first.inspection_id;
    let issued = app
        .client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(first)))
        .await
        .unwrap();
    let token = issued.body["token"].as_str().unwrap().to_string();
    let revoke = OfficerCommand::RevokeCode {
        inspection_id: id,
        reason: "企业临时停产，改期检查".into(),
    };
    assert_eq!(
        app.client
            .submit(&signed(&w.wang, &revoke))
            .await
            .unwrap()
            .status,
        201
    );
    let scan = app
        .public
        .post_json(&format!("/api/v1/codes/{token}/scan"), &json!({}))
        .await
        .unwrap();
    assert_eq!(scan.status, 409);
    assert_eq!(scan.error_code(), Some("code_revoked"));
    assert_eq!(
        types(&assert_trace_verifies(&app, id).await),
        ["CodeIssued", "CodeRevoked", "ScanRefused"]
    );
    let again = issue(
        &w,
        InspectionKind::Planned {
            plan: w.plan.clone(),
        },
        pair(&w),
    );
    assert_eq!(
        app.client
            .submit(&signed(&w.wang, &OfficerCommand::IssueCode(again)))
            .await
            .unwrap()
            .status,
        201
    );
}

pub async fn a_code_for_tomorrow_is_not_yet_valid_and_the_refused_scan_is_recorded(app: TestApp) {
    let w = populate(&app).await;
    let mut cmd = issue(
        &w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::Service,
        },
        pair(&w),
    );
    cmd.date = today().succ_opt().unwrap();
    let id = cmd.inspection_id;
    let issued = app
        .client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(cmd)))
        .await
        .unwrap();
    let token = issued.body["token"].as_str().unwrap().to_string();
    let view = app
        .public
        .get(&format!("/api/v1/codes/{token}"))
        .await
        .unwrap();
    assert_eq!(view.body["validity"], "not_yet_valid");
    let scan = app
        .public
        .post_json(&format!("/api/v1/codes/{token}/scan"), &json!({}))
        .await
        .unwrap();
    assert_eq!(scan.error_code(), Some("code_not_yet_valid"));
    let show = app
        .client
        .submit(&signed(
            &w.wang,
            &OfficerCommand::ShowCode { inspection_id: id },
        ))
        .await
        .unwrap();
    assert_eq!(show.error_code(), Some("outside_validity"));
    assert_eq!(
        types(&assert_trace_verifies(&app, id).await),
        ["CodeIssued", "ScanRefused"]
    );
}

pub async fn an_enterprise_rates_once_and_only_after_scanning(app: TestApp) {
    let w = populate(&app).await;
    let cmd = issue(
        &w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::LegalCheckup,
        },
        pair(&w),
    );
    let issued = app
        .client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(cmd)))
        .await
        .unwrap();
    let token = issued.body["token"].as_str().unwrap().to_string();
    let rate = |level: u8| {
        let public = app.public.clone();
        let token = token.clone();
        async move {
            public
                .post_json(
                    &format!("/api/v1/codes/{token}/rating"),
                    &json!({"level": level}),
                )
                .await
                .unwrap()
        }
    };
    assert_eq!(rate(4).await.error_code(), Some("not_scanned"));
    app.public
        .post_json(&format!("/api/v1/codes/{token}/scan"), &json!({}))
        .await
        .unwrap();
    assert_eq!(rate(6).await.error_code(), Some("rating_invalid"));
    assert_eq!(rate(4).await.status, 200);
    let second = rate(1).await;
    assert_eq!(second.status, 409);
    assert_eq!(second.error_code(), Some("already_rated"));
    assert_eq!(second.body["error"]["message"], "已评价，不能重复评价");
}

pub async fn an_officer_not_on_the_code_cannot_act_on_it(app: TestApp) {
    let w = populate(&app).await;
    let cmd = issue(
        &w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::Study,
        },
        pair(&w),
    );
    let id = cmd.inspection_id;
    app.client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(cmd)))
        .await
        .unwrap();
    let before = app.event_count().await;
    let reply = app
        .client
        .submit(&signed(
            &w.zhao,
            &OfficerCommand::ShowCode { inspection_id: id },
        ))
        .await
        .unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(reply.error_code(), Some("not_assigned"));
    assert_eq!(app.event_count().await, before);
}
