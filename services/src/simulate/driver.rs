//! Sends the traffic to a running `saoma serve`, or to the service's core in this process: a
//! bounded number of scenarios at once, each inspection's steps in order, and tallies every
//! answer against the expected one.

use super::schedule::Schedule;
use super::traffic::{Action, Expect, Scenario, SimInspection};
use crate::app::{App, Refusal};
use crate::client::{Client, Device, Reply};
use crate::http::ApiError;
use crate::log::sequencer::ROUND_LIMIT;
use crate::nats::{NatsClient, Outcome};
use crate::store::Store;
use anyhow::Context as _;
use chrono::{DateTime, Timelike as _, Utc};
use saoma_domain::inspection::{shanghai_date, OfficerCommand};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::ops::Range;
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

/// Where the traffic goes.
#[allow(clippy::large_enum_variant)] // One per run.
pub enum Target {
    /// A running `saoma serve`: the officers' commands over HTTP, or over NATS when set; the
    /// enterprise's calls over HTTP.
    Service {
        client: Client,
        nats: Option<NatsClient>,
    },
    /// The service's core over the configured store, in this process (`--backfill`).
    InProcess(Arc<App>),
}

/// Where the steps take their times from.
pub enum Clock {
    /// The local clock plus an offset (see `clock_offset` in the module root).
    Wall(chrono::Duration),
    /// Each scenario's first step at its scheduled time, the next ones [`STEP`] apart.
    Schedule(Schedule),
}

/// Time between two steps of a scheduled scenario.
pub const STEP: chrono::Duration = chrono::Duration::minutes(3);

/// Time from a scheduled officer command's signing to its receipt by the service.
const IN_TRANSIT: chrono::Duration = chrono::Duration::seconds(2);

/// The enterprise's calls with a code's token.
enum Public<'a> {
    Scan,
    Rate(u8, Option<&'a str>),
    Feedback(&'a str),
}

impl Public<'_> {
    fn what(&self) -> &'static str {
        match self {
            Public::Scan => "scan",
            Public::Rate(..) => "rating",
            Public::Feedback(_) => "feedback",
        }
    }
}

pub struct Driver {
    target: Target,
    devices: Vec<Device>,
    clock: Clock,
    scenarios: Vec<Scenario>,
    stop: AtomicBool,
}

impl Driver {
    pub fn new(
        target: Target,
        devices: Vec<Device>,
        clock: Clock,
        scenarios: Vec<Scenario>,
    ) -> Self {
        Driver {
            target,
            devices,
            clock,
            scenarios,
            stop: AtomicBool::new(false),
        }
    }

    /// Submits a signed envelope and reads the answer as the HTTP API gives it, so that every
    /// target is tallied alike.
    ///
    /// Over NATS, an earlier execution of the same command id can also come from a fault (a
    /// reply lost when NATS or the service died, the message redelivered): past the first
    /// step, a command sent once that reads as executed before counts as accepted. The first
    /// step keeps the duplicate, which says that an earlier run recorded the whole lifecycle,
    /// and a deliberate resend expects it.
    async fn submit(
        &self,
        envelope: &Value,
        sent_once: bool,
        received_at: DateTime<Utc>,
    ) -> anyhow::Result<Reply> {
        match &self.target {
            Target::Service {
                nats: Some(nats), ..
            } => {
                let mut outcome = nats.submit(envelope).await?;
                if sent_once {
                    if let Outcome::Accepted(a) = &mut outcome {
                        a.duplicate = false;
                    }
                }
                Ok(http_like(outcome))
            }
            Target::Service { client, nats: None } => client.submit(envelope).await,
            Target::InProcess(app) => Ok(answer(
                app.submit_signed(envelope.clone(), received_at).await,
                201,
            )),
        }
    }

    /// The enterprise's call with `token`.
    async fn public(
        &self,
        call: Public<'_>,
        token: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<Reply> {
        match &self.target {
            Target::Service { client, .. } => {
                let (path, body) = match call {
                    Public::Scan => ("scan", json!({})),
                    Public::Rate(level, comment) => {
                        let mut body = json!({ "level": level });
                        if let Some(c) = comment {
                            body["comment"] = json!(c);
                        }
                        ("rating", body)
                    }
                    Public::Feedback(text) => ("feedback", json!({ "text": text })),
                };
                client
                    .post_json(&format!("/api/v1/codes/{token}/{path}"), &body)
                    .await
            }
            Target::InProcess(app) => Ok(answer(
                match call {
                    Public::Scan => app.scan(token, at).await,
                    Public::Rate(level, comment) => {
                        app.rate(token, level, comment.map(str::to_string), at)
                            .await
                    }
                    Public::Feedback(text) => app.feedback(token, text.to_string(), at).await,
                },
                200,
            )),
        }
    }

    /// Runs every scenario with at most `concurrency` at a time; on a schedule, day by day (a
    /// day's scenarios all finish before the next day's start). An error means the service
    /// could not be reached; refusals are in the tally.
    pub async fn run(self: Arc<Self>, concurrency: usize) -> anyhow::Result<Tally> {
        let days = match &self.clock {
            Clock::Wall(_) => std::iter::once(0..self.scenarios.len()).collect(),
            Clock::Schedule(schedule) => schedule.days(),
        };
        let mut total = Tally::default();
        for day in days {
            total.merge(self.clone().run_all(day, concurrency).await?);
            if let Target::InProcess(app) = &self.target {
                // No sequencer runs beside: positions follow the days, as one would give them.
                position_all(app.store()).await?;
            }
        }
        Ok(total)
    }

    async fn run_all(
        self: Arc<Self>,
        scenarios: Range<usize>,
        concurrency: usize,
    ) -> anyhow::Result<Tally> {
        let next = Arc::new(AtomicUsize::new(scenarios.start));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1).min(scenarios.len()) {
            let (d, next, end) = (self.clone(), next.clone(), scenarios.end);
            workers.spawn(async move { d.worker(&next, end).await });
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

    async fn worker(&self, next: &AtomicUsize, end: usize) -> anyhow::Result<Tally> {
        let mut tally = Tally::default();
        while !self.stop.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= end {
                break;
            }
            let mut timeline = match &self.clock {
                Clock::Wall(offset) => Timeline::Wall(*offset),
                Clock::Schedule(schedule) => Timeline::At(schedule.start(i)),
            };
            for inspection in &self.scenarios[i].inspections {
                if let Err(e) = self.inspection(inspection, &mut timeline, &mut tally).await {
                    self.stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
        Ok(tally)
    }

    async fn inspection(
        &self,
        inspection: &SimInspection,
        timeline: &mut Timeline,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        timeline.not_at_midnight().await;
        tally.inspections += 1;
        let mut token: Option<String> = None;
        let mut last: Option<Value> = None;
        for (n, step) in inspection.steps.iter().enumerate() {
            let at = timeline.next();
            let received_at = at + timeline.in_transit();
            let token_of = || {
                token
                    .as_deref()
                    .expect("public calls follow an issued code")
            };
            let (reply, by_officer, what) = match &step.action {
                Action::Officer {
                    officer,
                    command_id,
                    command,
                } => {
                    let mut command = command.as_ref().clone();
                    if let OfficerCommand::IssueCode(issue) = &mut command {
                        issue.date =
                            shanghai_date(at) + chrono::Duration::days(inspection.date_offset);
                    }
                    let what = command_name(&command);
                    let envelope = self.devices[*officer].sign(&command, at, *command_id);
                    let reply = self
                        .submit(&envelope, n > 0, received_at)
                        .await
                        .with_context(|| unreachable(what))?;
                    last = Some(envelope);
                    (reply, true, what)
                }
                Action::Resend => {
                    let envelope = last.as_ref().expect("a resend follows an officer command");
                    (
                        self.submit(envelope, false, received_at)
                            .await
                            .with_context(|| unreachable("a resent command"))?,
                        true,
                        "resend",
                    )
                }
                Action::Scan { forged } => {
                    let token = if *forged {
                        forge(token_of())
                    } else {
                        token_of().to_string()
                    };
                    self.call(Public::Scan, &token, at).await?
                }
                Action::Rate { level, comment } => {
                    self.call(Public::Rate(*level, comment.as_deref()), token_of(), at)
                        .await?
                }
                Action::Feedback { text } => {
                    self.call(Public::Feedback(text), token_of(), at).await?
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

    /// An enterprise call, tallied as `(reply, by_officer, what)`.
    async fn call(
        &self,
        call: Public<'_>,
        token: &str,
        at: DateTime<Utc>,
    ) -> anyhow::Result<(Reply, bool, &'static str)> {
        let what = call.what();
        let reply = self
            .public(call, token, at)
            .await
            .with_context(|| unreachable(what))?;
        Ok((reply, false, what))
    }
}

/// The times of one scenario's steps.
enum Timeline {
    Wall(chrono::Duration),
    At(DateTime<Utc>),
}

impl Timeline {
    /// The time of the next step.
    fn next(&mut self) -> DateTime<Utc> {
        match self {
            Timeline::Wall(offset) => Utc::now() + *offset,
            Timeline::At(t) => {
                let at = *t;
                *t += STEP;
                at
            }
        }
    }

    fn in_transit(&self) -> chrono::Duration {
        match self {
            Timeline::Wall(_) => chrono::Duration::zero(),
            Timeline::At(_) => IN_TRANSIT,
        }
    }

    /// Codes are valid for their date in Asia/Shanghai: on the wall clock, a lifecycle is not
    /// started in the last two minutes of a day, so that it does not straddle midnight (a
    /// schedule keeps its scenarios within their day).
    async fn not_at_midnight(&self) {
        let Timeline::Wall(offset) = self else {
            return;
        };
        let local = (Utc::now() + *offset).with_timezone(&chrono_tz::Asia::Shanghai);
        let seconds = local.num_seconds_from_midnight();
        if seconds >= 86_400 - 120 {
            tokio::time::sleep(std::time::Duration::from_secs(u64::from(
                86_400 - seconds + 2,
            )))
            .await;
        }
    }
}

/// An in-process outcome as the HTTP API answers it: `ok` with the value, or the refusal's
/// status and error body.
fn answer<T: serde::Serialize>(outcome: Result<T, Refusal>, ok: u16) -> Reply {
    match outcome {
        Ok(value) => Reply {
            status: ok,
            body: serde_json::to_value(value).expect("answers serialise"),
        },
        Err(refusal) => {
            let error = ApiError::from(refusal);
            Reply {
                status: error.status.as_u16(),
                body: error.body(),
            }
        }
    }
}

/// Gives every stored event its position in the global log, as `serve`'s sequencer would.
pub async fn position_all(store: &Store) -> anyhow::Result<()> {
    while store.assign_positions(ROUND_LIMIT).await? == ROUND_LIMIT {}
    Ok(())
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
