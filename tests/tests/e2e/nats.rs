//! Officers' commands over NATS JetStream against a real `nats-server -js`: a whole lifecycle
//! with accepted replies, a command published ten times committing once with the same
//! outcome, poison messages refused without stalling the ones behind them, and `saoma serve`
//! waiting for a NATS that is down at its start.

use crate::lifecycle::{assert_trace_verifies, issue, pair};
use crate::support::*;
use async_nats::jetstream;
use futures_util::StreamExt as _;
use saoma_domain::inspection::{
    InspectionKind, OfficerCommand, Outcome as ResultOutcome, VisitPurpose,
};
use saoma_services::nats::{NatsClient, Outcome, ReplyAccepted, SubmitError};
use saoma_tests::{NatsServer, SaomaCommand};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A NATS server, the service in this process with its ingest on, a population, and a client.
struct Rig {
    nats: NatsServer,
    app: TestApp,
    w: World,
    client: NatsClient,
}

async fn start_nats() -> Option<NatsServer> {
    tokio::task::spawn_blocking(NatsServer::start_or_skip)
        .await
        .expect("nats start-up task")
}

async fn rig() -> Option<Rig> {
    let nats = start_nats().await?;
    let app = spawn_app_with(Backend::Sqlite, Some(nats.url())).await;
    let w = populate(&app).await;
    let client = NatsClient::connect(&nats.url())
        .await
        .expect("client connects")
        .reply_timeout(Duration::from_secs(20));
    ingest_ready(client.nats()).await;
    Some(Rig {
        nats,
        app,
        w,
        client,
    })
}

/// Waits (20 s at most) until the service has created its streams and durable consumer.
pub(crate) async fn ingest_ready(nats: &async_nats::Client) {
    let js = jetstream::new(nats.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let consumer = async {
            let stream = js.get_stream("SAOMA_CMD").await.ok()?;
            js.get_stream("SAOMA_REPLY").await.ok()?;
            stream
                .get_consumer::<jetstream::consumer::pull::Config>("saoma-ingest")
                .await
                .ok()
        };
        if consumer.await.is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the NATS ingest did not set up its streams"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `f` (20 s at most) until it yields something.
async fn eventually<T, Fut: std::future::Future<Output = Option<T>>>(
    what: &str,
    f: impl Fn() -> Fut,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: nothing within 20 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn accepted(outcome: Outcome) -> ReplyAccepted {
    match outcome {
        Outcome::Accepted(a) => a,
        Outcome::Refused(r) => panic!("refused: {r:?}"),
    }
}

fn refusal_code(outcome: &Outcome) -> &str {
    outcome
        .code()
        .unwrap_or_else(|| panic!("accepted: {outcome:?}"))
}

fn event_types(a: &ReplyAccepted) -> Vec<&str> {
    a.events.iter().map(|e| e.event_type.as_str()).collect()
}

fn visit(w: &World) -> saoma_domain::inspection::IssueCode {
    issue(
        w,
        InspectionKind::NonInspection {
            purpose: VisitPurpose::Service,
        },
        pair(w),
    )
}

#[tokio::test]
async fn a_whole_lifecycle_over_nats_gets_an_accepted_reply_for_every_step() {
    let Some(Rig {
        nats: _nats,
        app,
        w,
        client,
    }) = rig().await
    else {
        return;
    };
    let cmd = issue(
        &w,
        InspectionKind::Planned {
            plan: w.plan.clone(),
        },
        pair(&w),
    );
    let id = cmd.inspection_id;
    let envelope = signed(&w.wang, &OfficerCommand::IssueCode(cmd));
    let issued = accepted(client.submit(&envelope).await.unwrap());
    assert_eq!(issued.inspection_id, id);
    assert_eq!(issued.command_id.to_string(), envelope["command_id"]);
    assert_eq!(event_types(&issued), ["CodeIssued"]);
    assert_eq!(issued.events[0].sequence, 1);
    assert_eq!(issued.events[0].hash.len(), 64);
    assert!(!issued.duplicate && !issued.late);
    let token = issued.token.clone().expect("an issued code has a token");
    assert!(issued
        .url
        .as_deref()
        .unwrap()
        .ends_with(&format!("/c/{token}")));

    // Request-reply: the outcome also goes to the subject named by `Saoma-Reply-To`.
    let inbox = client.nats().new_inbox();
    let mut answers = client.nats().subscribe(inbox.clone()).await.unwrap();
    let show = signed(&w.li, &OfficerCommand::ShowCode { inspection_id: id });
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", show["command_id"].as_str().unwrap());
    headers.insert("Saoma-Reply-To", inbox.as_str());
    jetstream::new(client.nats().clone())
        .publish_with_headers(
            "saoma.cmd.v1",
            headers,
            serde_json::to_vec(&show).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(20), answers.next())
        .await
        .expect("a request-reply answer")
        .unwrap();
    let shown: Outcome = serde_json::from_slice(&answer.payload).unwrap();
    assert_eq!(event_types(&accepted(shown.clone())), ["CodeShown"]);
    let command_id = show["command_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        client.stored_outcome(command_id).await.unwrap(),
        Some(shown),
        "the stored reply is the one the requester heard"
    );

    let view = app
        .public
        .post_json(&format!("/api/v1/codes/{token}/scan"), &json!({}))
        .await
        .unwrap();
    assert_eq!(view.status, 200, "{:?}", view.body);

    let mutual = OfficerCommand::ScanEnterpriseCode {
        inspection_id: id,
        enterprise: w.enterprise.clone(),
    };
    let scanned = accepted(client.submit(&signed(&w.wang, &mutual)).await.unwrap());
    assert_eq!(event_types(&scanned), ["CodeScanned"]);
    assert_eq!(scanned.events[0].sequence, 4);

    let report = OfficerCommand::ReportResult {
        inspection_id: id,
        outcome: ResultOutcome::NoProblems,
    };
    let reported = accepted(client.submit(&signed(&w.wang, &report)).await.unwrap());
    assert_eq!(event_types(&reported), ["ResultReported"]);

    // A refusal comes back the same way, with its reason in both languages.
    let again = client.submit(&signed(&w.wang, &report)).await.unwrap();
    let Outcome::Refused(r) = &again else {
        panic!("{again:?}")
    };
    assert_eq!(r.code, "already_reported");
    assert_eq!(r.message_zh, "结果已反馈，不能重复反馈");
    assert_eq!(r.message_en, "the result was already reported");

    let rated = app
        .public
        .post_json(
            &format!("/api/v1/codes/{token}/rating"),
            &json!({"level": 5}),
        )
        .await
        .unwrap();
    assert_eq!(rated.status, 200, "{:?}", rated.body);
    let trace = assert_trace_verifies(&app, id).await;
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
    // The stored officer commands are the envelopes as published.
    assert_eq!(trace["events"][0]["command"], envelope);
}

#[tokio::test]
async fn a_command_published_ten_times_commits_once_and_gets_the_same_outcome_each_time() {
    let Some(Rig {
        nats: _nats,
        app,
        w,
        client,
    }) = rig().await
    else {
        return;
    };
    let before = app.event_count().await;
    let envelope = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    let first = client.submit(&envelope).await.unwrap();
    let a = accepted(first.clone());
    assert_eq!(event_types(&a), ["CodeIssued"]);
    assert_eq!(app.event_count().await, before + 1);
    // Within JetStream's duplicate window the stream drops the copies; the client reads the
    // stored outcome of the first, marked as a duplicate.
    for attempt in 2..=10 {
        let again = client.submit(&envelope).await.unwrap();
        assert!(again.is_duplicate(), "attempt {attempt}: {again:?}");
        assert_eq!(
            again,
            first.clone().as_duplicate(),
            "attempt {attempt}: the same outcome"
        );
    }
    assert_eq!(app.event_count().await, before + 1);

    // Past JetStream's duplicate window (here: another message id), the service's own record
    // of executed command ids answers with the original outcome, marked as a duplicate.
    let command_id: Uuid = envelope["command_id"].as_str().unwrap().parse().unwrap();
    let mut replies = client
        .nats()
        .subscribe(format!("saoma.reply.{command_id}"))
        .await
        .unwrap();
    client
        .publish(
            "saoma.cmd.v1",
            &format!("{command_id}-late"),
            serde_json::to_vec(&envelope).unwrap(),
        )
        .await
        .unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(20), replies.next())
        .await
        .expect("a reply to the redelivered command")
        .unwrap();
    let late = accepted(serde_json::from_slice(&reply.payload).unwrap());
    assert!(late.duplicate);
    assert_eq!(
        ReplyAccepted {
            duplicate: false,
            ..late
        },
        a,
        "the same events, token and URL as the first time"
    );
    assert_eq!(app.event_count().await, before + 1);
}

#[tokio::test]
async fn poison_messages_are_refused_with_a_reason_and_do_not_stall_the_ones_behind_them() {
    let Some(Rig {
        nats: _nats,
        app,
        w,
        client,
    }) = rig().await
    else {
        return;
    };
    let before = app.event_count().await;
    let js = jetstream::new(client.nats().clone());
    let publish = |subject: &'static str, payload: Vec<u8>| {
        let js = js.clone();
        async move {
            js.publish(subject, payload.into())
                .await
                .unwrap()
                .await
                .unwrap()
                .sequence
        }
    };

    // Published back to back, so that they share batches with the good command after them.
    let not_json = publish("saoma.cmd.v1", b"{\"command\": ".to_vec()).await;
    let not_object = publish("saoma.cmd.v1", b"[1,2,3]".to_vec()).await;
    let wrong_schema_id = Uuid::new_v4();
    publish(
        "saoma.cmd.v1",
        serde_json::to_vec(&json!({"command_id": wrong_schema_id, "command": {"type": "Nope"}}))
            .unwrap(),
    )
    .await;
    let mut forged = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    forged["signature"] =
        signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)))["signature"].clone();
    let forged_id: Uuid = forged["command_id"].as_str().unwrap().parse().unwrap();
    publish("saoma.cmd.v1", serde_json::to_vec(&forged).unwrap()).await;
    let elsewhere = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    let elsewhere_id: Uuid = elsewhere["command_id"].as_str().unwrap().parse().unwrap();
    publish("saoma.cmd.v2", serde_json::to_vec(&elsewhere).unwrap()).await;

    // Larger than the stream's 64 KiB limit: JetStream itself refuses to store it.
    let mut oversized = signed(&w.wang, &OfficerCommand::IssueCode(visit(&w)));
    oversized["padding"] = Value::String("扫".repeat(30_000));
    let refused = client.submit(&oversized).await.unwrap_err();
    assert!(
        matches!(&refused, SubmitError::Rejected(m) if m.contains("maximum")),
        "{refused:?}"
    );

    let good = client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(visit(&w))))
        .await
        .unwrap();
    assert_eq!(event_types(&accepted(good)), ["CodeIssued"]);

    let stored = |id: Uuid| {
        let client = client.clone();
        async move { client.stored_outcome(id).await.unwrap() }
    };
    let by_sequence = |seq: u64| {
        let client = client.clone();
        async move { client.stored_refusal(seq).await.unwrap() }
    };
    let r = eventually("not JSON", || by_sequence(not_json)).await;
    assert_eq!(refusal_code(&r), "malformed_json");
    let Outcome::Refused(detail) = &r else {
        unreachable!()
    };
    assert_eq!(detail.stream_sequence, Some(not_json));
    assert_eq!(detail.message_en, "the message is not valid JSON");
    let r = eventually("not an object", || by_sequence(not_object)).await;
    assert_eq!(refusal_code(&r), "invalid_command");
    let r = eventually("wrong schema", || stored(wrong_schema_id)).await;
    assert_eq!(refusal_code(&r), "invalid_command");
    let r = eventually("bad signature", || stored(forged_id)).await;
    assert_eq!(refusal_code(&r), "bad_signature");
    let r = eventually("unknown subject", || stored(elsewhere_id)).await;
    assert_eq!(refusal_code(&r), "unknown_subject");

    assert_eq!(
        app.event_count().await,
        before + 1,
        "only the good command changed the store"
    );
    // The same envelope on the right subject is executed: the refusal changed nothing.
    let moved = client.submit(&elsewhere).await.unwrap();
    assert_eq!(event_types(&accepted(moved)), ["CodeIssued"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn saoma_serve_waits_for_nats_that_is_down_at_start_and_ingests_once_it_is_up() {
    let Some(mut nats) = start_nats().await else {
        return;
    };
    tokio::task::block_in_place(|| nats.stop()).expect("stopping nats");
    let dir = tempfile::tempdir().unwrap();
    let mut saoma = tokio::task::block_in_place(|| {
        SaomaCommand::new(dir.path())
            .env("SAOMA_NATS_URL", nats.url())
            .spawn()
    })
    .expect("saoma serve starts while NATS is down");
    let app = TestApp::at(&saoma.base_url(), saoma.admin_token());
    let w = populate(&app).await;
    eventually("a failed NATS connection attempt", || async {
        saoma.log().contains("cannot connect to NATS").then_some(())
    })
    .await;

    tokio::task::block_in_place(|| nats.restart()).expect("starting nats again");
    let client = eventually("a NATS connection", || async {
        NatsClient::connect(&nats.url()).await.ok()
    })
    .await
    .reply_timeout(Duration::from_secs(20));
    ingest_ready(client.nats()).await;
    let issued = client
        .submit(&signed(&w.wang, &OfficerCommand::IssueCode(visit(&w))))
        .await
        .unwrap();
    assert_eq!(event_types(&accepted(issued)), ["CodeIssued"]);

    let status = tokio::task::block_in_place(|| saoma.terminate()).expect("SIGTERM");
    assert!(status.success(), "graceful shutdown exit status {status:?}");
    let log = saoma.log();
    assert!(log.contains("NATS ingest stopped"), "{log}");
}
