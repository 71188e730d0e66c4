//! The writer groups commands and caches streams; with several writers on one store (two
//! processes), a stale cache shows up as a conflict and is resolved without a fork, a loss or a
//! duplicate.

use crate::lifecycle::{assert_trace_verifies, issue, pair};
use crate::support::*;
use saoma_domain::inspection::{InspectionKind, OfficerCommand, Outcome, VisitPurpose};

pub async fn two_writers_on_one_store_never_fork_a_stream(backend: Backend) {
    let (a, b) = spawn_twins(backend).await;
    // b loaded its registry before the population existed: it finds officers in the store.
    let w = populate(&a).await;
    let cmd = issue(
        &w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::Service,
        },
        pair(&w),
    );
    let id = cmd.inspection_id;
    let issued = a
        .client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(cmd)))
        .await
        .unwrap();
    assert_eq!(issued.status, 201, "{:?}", issued.body);
    // b writes the next event; a's cached state is now one event behind.
    let shown = b
        .client
        .submit(&signed(
            &w.li,
            &OfficerCommand::ShowCode { inspection_id: id },
        ))
        .await
        .unwrap();
    assert_eq!(shown.status, 201, "{:?}", shown.body);
    let report = OfficerCommand::ReportResult {
        inspection_id: id,
        outcome: Outcome::NoProblems,
    };
    let reported = a.client.submit(&signed(&w.wang, &report)).await.unwrap();
    assert_eq!(reported.status, 201, "{:?}", reported.body);
    assert_eq!(reported.body["events"][0]["sequence"], 3);
    // And the rule state is shared too: the second result is refused by either twin.
    let again = b.client.submit(&signed(&w.wang, &report)).await.unwrap();
    assert_eq!(again.error_code(), Some("already_reported"));
    let trace = assert_trace_verifies(&a, id).await;
    assert_eq!(types(&trace), ["CodeIssued", "CodeShown", "ResultReported"]);
}

pub async fn concurrent_commands_are_grouped_without_losing_or_repeating_any(backend: Backend) {
    let app = spawn_app(backend).await;
    let w = populate(&app).await;
    let mut ids = Vec::new();
    let mut envelopes = Vec::new();
    for _ in 0..40 {
        let cmd = issue(
            &w,
            InspectionKind::NonInspection {
                purpose: VisitPurpose::Study,
            },
            pair(&w),
        );
        ids.push(cmd.inspection_id);
        envelopes.push(signed(&w.wang, &OfficerCommand::IssueCode(cmd)));
    }
    let before = app.event_count().await;
    // Every envelope twice, all at once: each is stored once, the second answered as a duplicate.
    let mut tasks = tokio::task::JoinSet::new();
    for envelope in envelopes.iter().chain(envelopes.iter()) {
        let (client, envelope) = (app.client.clone(), envelope.clone());
        tasks.spawn(async move { client.submit(&envelope).await.unwrap() });
    }
    let mut created = 0;
    let mut duplicates = 0;
    while let Some(reply) = tasks.join_next().await {
        let reply = reply.unwrap();
        match (reply.status, reply.error_code()) {
            (201, None) => created += 1,
            (409, Some("duplicate_command")) => duplicates += 1,
            other => panic!("unexpected answer {other:?}: {:?}", reply.body),
        }
    }
    assert_eq!((created, duplicates), (40, 40));
    assert_eq!(app.event_count().await, before + 40);
    for id in ids.iter().take(3) {
        assert_eq!(
            types(&assert_trace_verifies(&app, *id).await),
            ["CodeIssued"]
        );
    }
}
