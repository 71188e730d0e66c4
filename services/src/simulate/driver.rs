//! Sends the traffic to a running `saoma serve`: a bounded number of scenarios at once, each
//! inspection's steps in order, and tallies every answer against the expected one.

use super::traffic::{Action, Expect, Scenario, SimInspection};
use crate::client::{Client, Device, Reply};
use crate::nats::{NatsClient, Outcome};
use anyhow::Context as _;
use chrono::{DateTime, Timelike as _, Utc};
use saoma_domain::inspection::{shanghai_date, OfficerCommand};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// How many unexpected answers are described in full.
const EXAMPLES: usize = 10;

/// What came back, summed over all workers.
#[derive(Debug, Default)]
pub struct Tally {
    pub inspections: usize,
    pub codes_issued: usize,
    /// Codes an earlier run with the same seed already issued (their lifecycle is skipped).
    pub already_recorded: usize,
    pub officer_commands: usize,
    pub enterprise_calls: usize,
    pub accepted: usize,
    pub refused_as_intended: BTreeMap<String, usize>,
    pub unexpected: BTreeMap<String, usize>,
    pub examples: Vec<String>,
    pub events: usize,
}

impl Tally {
    fn merge(&mut self, o: Tally) {
        self.inspections += o.inspections;
        self.codes_issued += o.codes_issued;
        self.already_recorded += o.already_recorded;
        self.officer_commands += o.officer_commands;
        self.enterprise_calls += o.enterprise_calls;
        self.accepted += o.accepted;
        for (k, v) in o.refused_as_intended {
            *self.refused_as_intended.entry(k).or_default() += v;
        }
        for (k, v) in o.unexpected {
            *self.unexpected.entry(k).or_default() += v;
        }
        self.examples.extend(o.examples);
        self.examples.truncate(EXAMPLES);
        self.events += o.events;
    }
}

pub struct Driver {
    pub client: Client,
    /// Officers' signed commands go over NATS when set (enterprise calls stay on HTTP).
    pub nats: Option<NatsClient>,
    pub devices: Vec<Device>,
    /// Added to the local clock for device times (see `clock_offset` in the module root).
    pub offset: chrono::Duration,
    pub scenarios: Vec<Scenario>,
    next: AtomicUsize,
    stop: AtomicBool,
}

impl Driver {
    pub fn new(
        client: Client,
        devices: Vec<Device>,
        offset: chrono::Duration,
        scenarios: Vec<Scenario>,
    ) -> Self {
        Driver {
            client,
            nats: None,
            devices,
            offset,
            scenarios,
            next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// Sends the officers' signed commands over NATS.
    pub fn with_nats(mut self, nats: NatsClient) -> Self {
        self.nats = Some(nats);
        self
    }

    /// Submits a signed envelope over NATS or HTTP; a NATS outcome reads as the HTTP answer
    /// would, so both are tallied alike.
    ///
    /// Over NATS, an earlier execution of the same command id can also come from a fault (a
    /// reply lost when NATS or the service died, the message redelivered): past the first
    /// step, a command sent once that reads as executed before counts as accepted. The first
    /// step keeps the duplicate, which says that an earlier run recorded the whole lifecycle,
    /// and a deliberate resend expects it.
    async fn submit(&self, envelope: &Value, sent_once: bool) -> anyhow::Result<Reply> {
        match &self.nats {
            Some(nats) => {
                let mut outcome = nats.submit(envelope).await?;
                if sent_once {
                    if let Outcome::Accepted(a) = &mut outcome {
                        a.duplicate = false;
                    }
                }
                Ok(http_like(outcome))
            }
            None => self.client.submit(envelope).await,
        }
    }

    /// Runs every scenario with at most `concurrency` at a time. An error means the service
    /// could not be reached; refusals are in the tally.
    pub async fn run(self: Arc<Self>, concurrency: usize) -> anyhow::Result<Tally> {
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let d = self.clone();
            workers.spawn(async move { d.worker().await });
        }
        let mut total = Tally::default();
        let mut failure = None;
        while let Some(joined) = workers.join_next().await {
            match joined {
                Ok(Ok(t)) => total.merge(t),
                Ok(Err(e)) => {
                    failure.get_or_insert(e);
                }
                Err(e) => {
                    failure
                        .get_or_insert(anyhow::Error::new(e).context("a simulation task failed"));
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    async fn worker(&self) -> anyhow::Result<Tally> {
        let mut tally = Tally::default();
        while !self.stop.load(Ordering::Relaxed) {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(scenario) = self.scenarios.get(i) else {
                break;
            };
            for inspection in &scenario.inspections {
                if let Err(e) = self.inspection(inspection, &mut tally).await {
                    self.stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(tally)
    }

    fn device_time(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }

    /// Codes are valid for their date in Asia/Shanghai: a lifecycle is not started in the last
    /// two minutes of a day, so that it does not straddle midnight.
    async fn not_at_midnight(&self) {
        let local = self.device_time().with_timezone(&chrono_tz::Asia::Shanghai);
        let seconds = local.num_seconds_from_midnight();
        if seconds >= 86_400 - 120 {
            tokio::time::sleep(std::time::Duration::from_secs(u64::from(
                86_400 - seconds + 2,
            )))
            .await;
        }
    }

    async fn inspection(
        &self,
        inspection: &SimInspection,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        self.not_at_midnight().await;
        tally.inspections += 1;
        let mut token: Option<String> = None;
        let mut last: Option<Value> = None;
        for (n, step) in inspection.steps.iter().enumerate() {
            let (reply, by_officer, what) = match &step.action {
                Action::Officer {
                    officer,
                    command_id,
                    command,
                } => {
                    let device_time = self.device_time();
                    let mut command = command.as_ref().clone();
                    if let OfficerCommand::IssueCode(issue) = &mut command {
                        issue.date = shanghai_date(device_time)
                            + chrono::Duration::days(inspection.date_offset);
                    }
                    let what = command_name(&command);
                    let envelope = self.devices[*officer].sign(&command, device_time, *command_id);
                    let reply = self
                        .submit(&envelope, n > 0)
                        .await
                        .with_context(|| unreachable(what))?;
                    last = Some(envelope);
                    (reply, true, what)
                }
                Action::Resend => {
                    let envelope = last.as_ref().expect("a resend follows an officer command");
                    (
                        self.submit(envelope, false)
                            .await
                            .with_context(|| unreachable("a resent command"))?,
                        true,
                        "resend",
                    )
                }
                Action::Scan { forged } => {
                    let token = token
                        .as_deref()
                        .expect("public calls follow an issued code");
                    let token = if *forged {
                        forge(token)
                    } else {
                        token.to_string()
                    };
                    let path = format!("/api/v1/codes/{token}/scan");
                    (
                        self.client
                            .post_json(&path, &json!({}))
                            .await
                            .with_context(|| unreachable("a scan"))?,
                        false,
                        "scan",
                    )
                }
                Action::Rate { level, comment } => {
                    let token = token
                        .as_deref()
                        .expect("public calls follow an issued code");
                    let mut body = json!({ "level": level });
                    if let Some(c) = comment {
                        body["comment"] = json!(c);
                    }
                    let path = format!("/api/v1/codes/{token}/rating");
                    (
                        self.client
                            .post_json(&path, &body)
                            .await
                            .with_context(|| unreachable("a rating"))?,
                        false,
                        "rating",
                    )
                }
                Action::Feedback { text } => {
                    let token = token
                        .as_deref()
                        .expect("public calls follow an issued code");
                    let path = format!("/api/v1/codes/{token}/feedback");
                    let reply = self.client.post_json(&path, &json!({ "text": text })).await;
                    (
                        reply.with_context(|| unreachable("feedback"))?,
                        false,
                        "feedback",
                    )
                }
            };
            if by_officer {
                tally.officer_commands += 1;
            } else {
                tally.enterprise_calls += 1;
            }
            tally.events += events(&reply, by_officer);
            let code = reply.error_code().map(str::to_string);
            match (&step.expect, reply.ok(), code.as_deref()) {
                (Expect::Accepted, true, _) => {
                    tally.accepted += 1;
                    if n == 0 {
                        tally.codes_issued += 1;
                        token = reply
                            .body
                            .get("token")
                            .and_then(Value::as_str)
                            .map(str::to_string);
                        if token.is_none() {
                            *tally.unexpected.entry("missing_token".into()).or_default() += 1;
                            return Ok(());
                        }
                    }
                }
                (Expect::Refused(want), false, Some(got)) if *want == got => {
                    *tally
                        .refused_as_intended
                        .entry(got.to_string())
                        .or_default() += 1;
                }
                // The same seed ran before: this code and its lifecycle are already recorded.
                (Expect::Accepted, false, Some("duplicate_command")) if n == 0 => {
                    tally.already_recorded += 1;
                    return Ok(());
                }
                _ => {
                    let got = code.unwrap_or_else(|| format!("http_{}", reply.status));
                    *tally.unexpected.entry(got.clone()).or_default() += 1;
                    if tally.examples.len() < EXAMPLES {
                        let want = match &step.expect {
                            Expect::Accepted => "accepted".to_string(),
                            Expect::Refused(c) => format!("refused with {c}"),
                        };
                        let message = reply
                            .body
                            .get("error")
                            .map_or_else(|| reply.body.to_string(), Value::to_string);
                        tally.examples.push(format!(
                            "{} inspection {}, step {} ({what}): expected {want}, got HTTP {} {got}: {message}",
                            inspection.kind, inspection.inspection_id, n + 1, reply.status
                        ));
                    }
                    // The rest of this lifecycle would fail for the same reason.
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// A NATS outcome in the shape of the HTTP answer: 201 with the accepted body; 409
/// `duplicate_command` for a command whose events were recorded before (accepted, or a recorded
/// refused scan); else the refusal, which an unrecorded refusal repeats as over HTTP.
fn http_like(outcome: Outcome) -> Reply {
    let recorded_before = match &outcome {
        Outcome::Accepted(a) => a.duplicate,
        Outcome::Refused(r) => {
            r.code == "duplicate_command" || (r.duplicate && r.recorded.is_some())
        }
    };
    if recorded_before {
        return Reply {
            status: 409,
            body: json!({"error": {
                "code": "duplicate_command",
                "message": "重复提交的指令，未重复记录",
                "original": outcome,
            }}),
        };
    }
    match outcome {
        Outcome::Accepted(a) => Reply {
            status: 201,
            body: serde_json::to_value(a).expect("outcomes serialise"),
        },
        Outcome::Refused(r) => {
            let mut error = json!({"code": r.code, "message": r.message_zh});
            if let Some(recorded) = r.recorded {
                error["recorded"] = json!(recorded);
            }
            Reply {
                status: 422,
                body: json!({ "error": error }),
            }
        }
    }
}

fn unreachable(what: &str) -> String {
    format!("sending {what}: the service did not answer")
}

fn command_name(c: &OfficerCommand) -> &'static str {
    match c {
        OfficerCommand::IssueCode(_) => "IssueCode",
        OfficerCommand::ShowCode { .. } => "ShowCode",
        OfficerCommand::ScanEnterpriseCode { .. } => "ScanEnterpriseCode",
        OfficerCommand::ReportResult { .. } => "ReportResult",
        OfficerCommand::RevokeCode { .. } => "RevokeCode",
    }
}

/// Events the service committed for one answer: the accepted command's events, one for an
/// enterprise call, one for a refused scan (the attempt is recorded), none otherwise.
fn events(reply: &Reply, by_officer: bool) -> usize {
    if reply.ok() {
        if by_officer {
            reply
                .body
                .get("events")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        } else {
            1
        }
    } else {
        usize::from(
            reply
                .body
                .get("error")
                .and_then(|e| e.get("recorded"))
                .is_some(),
        )
    }
}

/// The token with one character of its tag changed: well-formed, naming the same inspection,
/// but not issued by the service.
fn forge(token: &str) -> String {
    const AT: usize = 30;
    token
        .char_indices()
        .map(|(i, c)| {
            if i == AT {
                if c == 'A' {
                    'B'
                } else {
                    'A'
                }
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forged_token_differs_only_in_its_tag() {
        let token = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let forged = forge(token);
        assert_eq!(forged.len(), token.len());
        assert_eq!(&forged[..22], &token[..22]);
        assert_ne!(forged, token);
    }
}
