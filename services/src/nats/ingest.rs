//! The consume loop: pulls command messages from the durable consumer, checks and queues each
//! batch at the writer, publishes every outcome, and only then acks.
//!
//! Three stages run at once, joined by bounded channels: the executor (pull, classify, check
//! signatures in parallel, queue at the writer: `App::enqueue_batch`), the finisher (wait for
//! the writer, turn outcomes into replies: `App::finish_batch`) and the responder (publish
//! replies, await their JetStream acks, ack or nak the messages). The executor checks the next
//! batch while the writer stores the last one; batches reach the writer in pull order, so
//! per-inspection order is kept. Memory stays bounded: the pull stream prefetches at most
//! `PULL_BATCH` messages, the server delivers at most the consumer's `max_ack_pending` unacked
//! ones, and at most `batches_in_flight` batches wait between two stages. A batch takes
//! whatever arrived while the previous one was checked (up to `max_batch`), so batches grow
//! with the load and a lone command is never held back waiting for company.

use super::reply::Outcome;
use super::setup::{self, Backoff};
use super::{IngestOptions, COMMAND_SUBJECT, INVALID_REPLY_PREFIX, REPLY_TO_HEADER};
use crate::app::{PendingBatch, Refusal};
use crate::http::SharedState;
use async_nats::jetstream::{self, consumer::PullConsumer, message::PublishMessage, AckKind};
use chrono::{DateTime, Utc};
use futures_util::{FutureExt as _, StreamExt as _};
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

/// Messages asked for in one pull request (the stream re-pulls at half of it).
pub(super) const PULL_BATCH: usize = 512;

/// How often the consumer's lag is read when no message says it.
const LAG_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the ingest until `stop`: connects, sets up the streams and consumer, consumes, and
/// starts over (with backoff) after anything that ends the consumption.
pub(super) async fn supervise(
    state: SharedState,
    url: String,
    options: IngestOptions,
    mut stop: watch::Receiver<bool>,
) {
    let Some(client) = setup::connect(&url, &mut stop).await else {
        return;
    };
    let js = jetstream::new(client.clone());
    let mut backoff = Backoff::new();
    loop {
        let consumer = match setup::ensure(&js).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff.current(), "NATS ingest set-up failed");
                if !backoff.wait(&mut stop).await {
                    return;
                }
                continue;
            }
        };
        tracing::info!(
            url,
            subject = COMMAND_SUBJECT,
            "NATS ingest consuming from SAOMA_CMD"
        );
        let consumption = Consumption {
            state: &state,
            client: &client,
            js: &js,
            options: &options,
        };
        match consumption.run(consumer, &mut stop, &mut backoff).await {
            Ok(()) => {
                tracing::info!("NATS ingest stopped");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff.current(), "NATS ingest interrupted; starting over");
                if !backoff.wait(&mut stop).await {
                    return;
                }
            }
        }
    }
}

/// What to tell JetStream about a message once its reply is out.
#[derive(Debug, Clone, Copy)]
enum Settle {
    Ack,
    /// Poison: never redeliver.
    Term,
    /// Not executed (internal error, or the service is stopping): redeliver after the delay.
    Nak(Option<Duration>),
}

/// One message through the pipeline.
struct Item {
    message: jetstream::Message,
    /// When JetStream stored it, in nanoseconds since the epoch.
    published_ns: i128,
    reply: Option<(String, Outcome)>,
    reply_to: Option<String>,
    settle: Settle,
}

/// A message classified before execution.
enum Classified {
    Command { envelope: Value, command_id: Uuid },
    Poison(Outcome, String),
}

struct Consumption<'a> {
    state: &'a SharedState,
    client: &'a async_nats::Client,
    js: &'a jetstream::Context,
    options: &'a IngestOptions,
}

impl Consumption<'_> {
    /// Consumes until `stop` (`Ok`) or until the pull stream fails (`Err`).
    async fn run(
        &self,
        consumer: PullConsumer,
        stop: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> anyhow::Result<()> {
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(PULL_BATCH)
            .expires(Duration::from_secs(30))
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await
            .map_err(|e| anyhow::anyhow!("starting the pull stream: {e}"))?;
        let in_flight = self.options.batches_in_flight.max(1);
        let (to_finisher, from_executor) = mpsc::channel(in_flight);
        let (to_responder, from_finisher) = mpsc::channel(in_flight);
        let finisher = tokio::spawn(finish(
            self.state.clone(),
            self.options.max_internal_attempts,
            from_executor,
            to_responder,
        ));
        let responder = tokio::spawn(respond(self.client.clone(), self.js.clone(), from_finisher));
        let mut lag = tokio::time::interval(LAG_INTERVAL);
        lag.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hiccups: u64 = 0;
        let ended: anyhow::Result<()> = loop {
            let next = tokio::select! {
                biased;
                _ = stopping(stop) => break Ok(()),
                _ = lag.tick() => {
                    tokio::spawn(read_lag(consumer.clone()));
                    continue;
                }
                next = messages.next() => next,
            };
            let first = match next {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    use async_nats::jetstream::consumer::pull::MessagesErrorKind as K;
                    match e.kind() {
                        K::MissingHeartbeat | K::Pull | K::Other => {
                            // Usually NATS is away and the client reconnecting: pace the retries.
                            hiccups += 1;
                            tracing::warn!(error = %e, hiccups, "NATS pull stream hiccup");
                            let pause = Duration::from_millis(100 * hiccups.min(20));
                            tokio::select! {
                                _ = stopping(stop) => break Ok(()),
                                _ = tokio::time::sleep(pause) => continue,
                            }
                        }
                        _ => break Err(anyhow::anyhow!("pull stream: {e}")),
                    }
                }
                None => break Err(anyhow::anyhow!("the pull stream ended")),
            };
            hiccups = 0;
            let mut batch = vec![first];
            while batch.len() < self.options.max_batch {
                match messages.next().now_or_never() {
                    Some(Some(Ok(m))) => batch.push(m),
                    _ => break,
                }
            }
            backoff.reset();
            let queued = self.enqueue(batch).await;
            if to_finisher.send(queued).await.is_err() {
                break Err(anyhow::anyhow!("the reply publisher stopped"));
            }
        };
        if ended.is_ok() {
            // Delivered to this process but not started: hand back at once rather than after
            // the ack wait. Only what has arrived, and after unsubscribing, so that the nak'ed
            // messages go to other consumers (or a restarted one), not back to this one.
            let mut unstarted = Vec::new();
            while unstarted.len() < 2 * PULL_BATCH {
                match messages.next().now_or_never() {
                    Some(Some(Ok(m))) => unstarted.push(m),
                    _ => break,
                }
            }
            drop(messages);
            for m in &unstarted {
                let _ = m.ack_with(AckKind::Nak(None)).await;
            }
            if !unstarted.is_empty() {
                tracing::info!(
                    handed_back = unstarted.len(),
                    "NATS ingest: unstarted messages nak'ed"
                );
            }
        }
        drop(to_finisher);
        // The finisher and the responder finish the batches already queued: their outcomes,
        // replies and acks.
        if let Err(e) = finisher.await {
            tracing::error!(error = %e, "NATS batch finisher failed");
        }
        if let Err(e) = responder.await {
            tracing::error!(error = %e, "NATS reply publisher failed");
        }
        ended
    }

    /// Classifies one batch and queues its commands at the writer (in pull order, so batches
    /// execute in the order they were pulled); the finisher answers them.
    async fn enqueue(&self, batch: Vec<jetstream::Message>) -> Queued {
        metrics::histogram!("saoma_nats_batch_size").record(batch.len() as f64);
        let now = Utc::now();
        let mut items = Vec::with_capacity(batch.len());
        let mut commands = Vec::new();
        let mut positions = Vec::new();
        for message in batch {
            metrics::counter!("saoma_nats_messages_consumed_total").increment(1);
            let (sequence, delivered, published_ns, pending) = match message.info() {
                Ok(info) => (
                    info.stream_sequence,
                    info.delivered,
                    info.published.unix_timestamp_nanos(),
                    info.pending,
                ),
                Err(e) => {
                    tracing::error!(error = %e, subject = %message.subject, "a message without JetStream metadata; skipped");
                    continue;
                }
            };
            metrics::gauge!("saoma_nats_consumer_lag").set(pending as f64);
            if delivered > 1 {
                metrics::counter!("saoma_nats_messages_redelivered_total").increment(1);
            }
            let reply_to = reply_to(&message);
            let index = items.len();
            match classify(&message, sequence, self.options.max_command_bytes) {
                Classified::Command {
                    envelope,
                    command_id,
                } => {
                    commands.push((envelope, received_at(published_ns, now)));
                    positions.push((index, command_id, delivered));
                    items.push(Item {
                        message,
                        published_ns,
                        reply: None,
                        reply_to,
                        settle: Settle::Ack,
                    });
                }
                Classified::Poison(outcome, subject) => {
                    count_refusal(&outcome);
                    items.push(Item {
                        message,
                        published_ns,
                        reply: Some((subject, outcome)),
                        reply_to,
                        settle: Settle::Term,
                    });
                }
            }
        }
        let pending = if commands.is_empty() {
            Ok(None)
        } else {
            AssertUnwindSafe(self.state.app.enqueue_batch(commands))
                .catch_unwind()
                .await
                .map(Some)
        };
        Queued {
            items,
            positions,
            pending,
        }
    }
}

/// A batch whose commands are queued at the writer.
struct Queued {
    items: Vec<Item>,
    /// (item index, command id, deliveries) of each queued command.
    positions: Vec<(usize, Uuid, i64)>,
    /// `Err` when checking the batch panicked; `None` when it held no command.
    pending: Result<Option<PendingBatch>, Box<dyn std::any::Any + Send>>,
}

/// The finisher: waits for each queued batch's outcomes, in order, turns them into replies and
/// settlements, and hands the batch to the responder.
async fn finish(
    state: SharedState,
    max_internal_attempts: i64,
    mut queued: mpsc::Receiver<Queued>,
    to_responder: mpsc::Sender<Vec<Item>>,
) {
    while let Some(batch) = queued.recv().await {
        let items = answer(&state, max_internal_attempts, batch).await;
        if to_responder.send(items).await.is_err() {
            return;
        }
    }
}

/// Every message of a queued batch with its reply and settlement.
async fn answer(state: &SharedState, max_internal_attempts: i64, batch: Queued) -> Vec<Item> {
    let Queued {
        mut items,
        positions,
        pending,
    } = batch;
    let pending = match pending {
        Ok(Some(p)) => p,
        Ok(None) => return items,
        Err(_) => {
            tracing::error!("checking a batch panicked; redelivering its commands");
            return retry_all(items, &positions);
        }
    };
    let app = &state.app;
    let outcomes = AssertUnwindSafe(app.finish_batch(pending))
        .catch_unwind()
        .await;
    let outcomes = match outcomes {
        Ok(o) if o.len() == positions.len() => o,
        Ok(o) => {
            tracing::error!(
                expected = positions.len(),
                got = o.len(),
                "the batch was answered with a different number of outcomes; redelivering it"
            );
            return retry_all(items, &positions);
        }
        Err(_) => {
            tracing::error!("executing a batch panicked; redelivering its commands");
            return retry_all(items, &positions);
        }
    };
    let internal = |command_id: Uuid, delivered: i64, e: &Refusal| {
        internal_settlement(max_internal_attempts, command_id, delivered, e)
    };
    for ((index, command_id, delivered), result) in positions.into_iter().zip(outcomes) {
        let item = &mut items[index];
        let outcome = match result {
            Ok(accepted) => {
                metrics::counter!("saoma_nats_commands_committed_total").increment(1);
                Outcome::accepted(command_id, &accepted)
            }
            Err(Refusal::Duplicate {
                inspection_id,
                original,
            }) => {
                metrics::counter!("saoma_nats_commands_duplicate_total").increment(1);
                let outcome = Outcome::duplicate(command_id, inspection_id, &original, || {
                    app.code_url(&inspection_id)
                });
                // A redelivery of this very message (its reply or ack was lost) answers exactly
                // as its first execution did; only a new message with an executed command id is
                // marked as a duplicate. A redelivery is known by its delivery count or, as a
                // NATS crash can lose the consumer's counts, by its events: they record the
                // JetStream store time of their message.
                let same_message = delivered > 1
                    || original.first().is_some_and(|e| {
                        e.meta.recorded_at.timestamp_nanos_opt().map(i128::from)
                            == Some(item.published_ns)
                    });
                if same_message {
                    outcome.unmarked()
                } else {
                    outcome
                }
            }
            Err(e @ Refusal::Internal(_)) => {
                item.settle = internal(command_id, delivered, &e);
                match item.settle {
                    Settle::Nak(_) => continue,
                    _ => Outcome::from_refusal(Some(command_id), &e),
                }
            }
            Err(refusal) => Outcome::from_refusal(Some(command_id), &refusal),
        };
        count_refusal(&outcome);
        item.reply = Some((super::reply_subject(&command_id), outcome));
    }
    items
}

/// An internal error: redeliver later, or give up after `max_attempts` deliveries.
fn internal_settlement(max_attempts: i64, command_id: Uuid, delivered: i64, e: &Refusal) -> Settle {
    if delivered >= max_attempts {
        tracing::error!(%command_id, delivered, error = %e, "command keeps failing; refused as internal");
        Settle::Ack
    } else {
        tracing::warn!(%command_id, delivered, error = %e, "command failed; redelivering later");
        metrics::counter!("saoma_nats_commands_retried_total").increment(1);
        Settle::Nak(Some(nak_delay(delivered)))
    }
}

/// Redelivery delay after an internal error: 1 s per delivery so far, at most 30 s.
fn nak_delay(delivered: i64) -> Duration {
    Duration::from_secs(delivered.clamp(1, 30) as u64)
}

fn retry_all(mut items: Vec<Item>, positions: &[(usize, Uuid, i64)]) -> Vec<Item> {
    for (index, _, delivered) in positions {
        items[*index].settle = Settle::Nak(Some(nak_delay(*delivered)));
        metrics::counter!("saoma_nats_commands_retried_total").increment(1);
    }
    items
}

fn count_refusal(outcome: &Outcome) {
    if let Some(code) = outcome.code() {
        metrics::counter!("saoma_nats_commands_refused_total", "code" => code.to_string())
            .increment(1);
    }
}

/// The time the command was received: when JetStream stored it (the publisher's durable ack),
/// never later than now.
fn received_at(published_ns: i128, now: DateTime<Utc>) -> DateTime<Utc> {
    i64::try_from(published_ns)
        .map(DateTime::from_timestamp_nanos)
        .map_or(now, |t| t.min(now))
}

/// The `Saoma-Reply-To` header, when it names a subject a reply may go to: a plain subject
/// (no wildcards or spaces) outside the command subjects and the JetStream API.
fn reply_to(message: &jetstream::Message) -> Option<String> {
    let value = message.headers.as_ref()?.get(REPLY_TO_HEADER)?.as_str();
    let valid = !value.is_empty()
        && value.len() <= 256
        && !value.starts_with("saoma.cmd.")
        && !value.starts_with("$JS.")
        && value
            .split('.')
            .all(|t| !t.is_empty() && t != "*" && t != ">")
        && !value.chars().any(char::is_whitespace);
    valid.then(|| value.to_string())
}

/// Sorts a message into a command to execute or poison to refuse (with the subject the
/// refusal goes to).
fn classify(message: &jetstream::Message, sequence: u64, max_bytes: usize) -> Classified {
    let invalid_subject = format!("{INVALID_REPLY_PREFIX}{sequence}");
    if message.payload.len() > max_bytes {
        let outcome = Outcome::refused(None, "message_too_large", "消息内容过大")
            .with_message_detail(format!(
                "{} bytes, at most {max_bytes}",
                message.payload.len()
            ))
            .at_sequence(sequence);
        return Classified::Poison(outcome, invalid_subject);
    }
    let parsed: Result<Value, _> = serde_json::from_slice(&message.payload);
    let command_id = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("command_id"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Uuid>().ok());
    let poison = |outcome: Outcome| {
        let outcome = outcome.at_sequence(sequence);
        match command_id {
            Some(id) => Classified::Poison(outcome, super::reply_subject(&id)),
            None => Classified::Poison(outcome, invalid_subject.clone()),
        }
    };
    if message.subject.as_str() != COMMAND_SUBJECT {
        return poison(
            Outcome::refused(command_id, "unknown_subject", "未知的消息主题")
                .with_message_detail(format!("{} is not {COMMAND_SUBJECT}", message.subject)),
        );
    }
    let envelope = match parsed {
        Ok(v) => v,
        Err(e) => {
            return poison(
                Outcome::refused(None, "malformed_json", "消息内容不是有效的JSON")
                    .with_message_detail(e),
            )
        }
    };
    if !envelope.is_object() {
        return poison(Outcome::from_refusal(
            None,
            &Refusal::invalid("an envelope is a JSON object"),
        ));
    }
    match command_id {
        Some(command_id) => Classified::Command {
            envelope,
            command_id,
        },
        None => poison(Outcome::from_refusal(
            None,
            &Refusal::invalid("command_id is missing or not a UUID"),
        )),
    }
}

/// Resolves once the service is stopping.
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Reads the consumer's lag (messages not yet delivered) and unacked count.
async fn read_lag(consumer: PullConsumer) {
    match tokio::time::timeout(Duration::from_secs(2), consumer.get_info()).await {
        Ok(Ok(info)) => {
            metrics::gauge!("saoma_nats_consumer_lag").set(info.num_pending as f64);
            metrics::gauge!("saoma_nats_consumer_ack_pending").set(info.num_ack_pending as f64);
        }
        Ok(Err(e)) => tracing::debug!(error = %e, "reading the consumer's lag"),
        Err(_) => tracing::debug!("reading the consumer's lag timed out"),
    }
}

/// The responder: publishes each batch's replies, awaits their JetStream acks, then settles
/// the messages. A reply that could not be stored leaves its message to be redelivered.
async fn respond(
    client: async_nats::Client,
    js: jetstream::Context,
    mut batches: mpsc::Receiver<Vec<Item>>,
) {
    while let Some(items) = batches.recv().await {
        let mut stored = vec![true; items.len()];
        let mut acks = Vec::new();
        let mut payloads = vec![None; items.len()];
        for (i, item) in items.iter().enumerate() {
            let Some((subject, outcome)) = &item.reply else {
                continue;
            };
            let payload: Vec<u8> = serde_json::to_vec(outcome).expect("outcomes serialise");
            match js
                .send_publish(
                    subject.clone(),
                    PublishMessage::build().payload(payload.clone().into()),
                )
                .await
            {
                Ok(ack) => acks.push((i, ack)),
                Err(e) => {
                    tracing::warn!(error = %e, subject, "publishing a reply failed");
                    stored[i] = false;
                }
            }
            payloads[i] = Some(payload);
        }
        // Together: each ack's timeout starts when it is first polled, so awaiting them one
        // by one would add up the timeouts of the replies a broken connection swallowed.
        let acks = acks
            .into_iter()
            .map(|(i, ack)| async move { (i, ack.await) });
        for (i, result) in futures_util::future::join_all(acks).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "a reply was not stored");
                stored[i] = false;
            }
        }
        let now_ns = Utc::now().timestamp_nanos_opt().map(i128::from);
        for (i, item) in items.into_iter().enumerate() {
            if let (Some(to), Some(payload)) = (&item.reply_to, payloads[i].take()) {
                if stored[i] {
                    if let Err(e) = client.publish(to.clone(), payload.into()).await {
                        tracing::debug!(error = %e, to, "request-reply answer not sent");
                    }
                }
            }
            let settle = if stored[i] {
                item.settle
            } else {
                metrics::counter!("saoma_nats_reply_failures_total").increment(1);
                Settle::Nak(Some(Duration::from_secs(1)))
            };
            let kind = match settle {
                Settle::Ack => AckKind::Ack,
                Settle::Term => AckKind::Term,
                Settle::Nak(delay) => AckKind::Nak(delay),
            };
            if let Err(e) = item.message.ack_with(kind).await {
                tracing::warn!(error = %e, "acknowledging a message failed; it will be redelivered");
            }
            if item.reply.is_some() && stored[i] {
                if let Some(now) = now_ns {
                    let seconds = (now - item.published_ns).max(0) as f64 / 1e9;
                    metrics::histogram!("saoma_nats_ack_latency_seconds").record(seconds);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_after_an_internal_error_backs_off_up_to_half_a_minute() {
        assert_eq!(nak_delay(1), Duration::from_secs(1));
        assert_eq!(nak_delay(5), Duration::from_secs(5));
        assert_eq!(nak_delay(500), Duration::from_secs(30));
    }

    #[test]
    fn the_receive_time_is_the_store_time_but_never_in_the_future() {
        let now = Utc::now();
        let earlier = now - chrono::Duration::seconds(3);
        let ns = i128::from(earlier.timestamp_nanos_opt().unwrap());
        assert_eq!(received_at(ns, now), earlier);
        let later = i128::from(
            (now + chrono::Duration::seconds(3))
                .timestamp_nanos_opt()
                .unwrap(),
        );
        assert_eq!(received_at(later, now), now);
    }
}
