//! `NatsClient`: what an officer's app (and the simulator) uses to send a signed envelope over
//! JetStream and read its outcome. It listens on `saoma.reply.<command_id>` before publishing,
//! publishes with `Nats-Msg-Id` = the command id (retrying transient failures with the same
//! id, so JetStream drops the copies), and when no reply arrives in time, reads the stored
//! one from `SAOMA_REPLY`, so an outcome published while the app was not listening is found.

use super::reply::Outcome;
use super::{reply_subject, COMMAND_SUBJECT, REPLY_STREAM_JSON};
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage};
use futures_util::StreamExt as _;
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

/// While waiting for a reply, how often the stored one is read.
const STORED_CHECK_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the envelope has no command_id that is a UUID")]
    NoCommandId,
    #[error("connecting to NATS: {0}")]
    Connect(String),
    /// JetStream refused to store the message (e.g. larger than the stream's limit).
    #[error("the command stream refused the message: {0}")]
    Rejected(String),
    #[error("publishing failed after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: String },
    #[error("no outcome for command {command_id} within {waited:?}")]
    NoReply { command_id: Uuid, waited: Duration },
    #[error("the outcome is not readable: {0}")]
    BadReply(String),
    #[error("NATS: {0}")]
    Nats(String),
}

/// A connection to NATS for submitting officers' commands.
#[derive(Clone)]
pub struct NatsClient {
    client: async_nats::Client,
    js: jetstream::Context,
    reply_timeout: Duration,
    publish_attempts: u32,
}

impl NatsClient {
    pub async fn connect(url: &str) -> Result<Self, SubmitError> {
        let client = super::setup::connect_options("saoma client")
            .connect(url)
            .await
            .map_err(|e| SubmitError::Connect(e.to_string()))?;
        Ok(Self::new(client))
    }

    pub fn new(client: async_nats::Client) -> Self {
        NatsClient {
            js: jetstream::new(client.clone()),
            client,
            reply_timeout: Duration::from_secs(30),
            publish_attempts: 8,
        }
    }

    /// How long [`submit`](Self::submit) listens for the reply before reading the stored one.
    pub fn reply_timeout(mut self, timeout: Duration) -> Self {
        self.reply_timeout = timeout;
        self
    }

    pub fn nats(&self) -> &async_nats::Client {
        &self.client
    }

    /// Publishes a signed envelope and returns its outcome.
    pub async fn submit(&self, envelope: &Value) -> Result<Outcome, SubmitError> {
        let command_id = envelope
            .get("command_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Uuid>().ok())
            .ok_or(SubmitError::NoCommandId)?;
        let payload = serde_json::to_vec(envelope).expect("JSON values serialise");
        self.submit_bytes(command_id, payload).await
    }

    /// Publishes `payload` (an envelope's JSON bytes) for `command_id` and returns its outcome.
    pub async fn submit_bytes(
        &self,
        command_id: Uuid,
        payload: Vec<u8>,
    ) -> Result<Outcome, SubmitError> {
        // Listen first, so the reply cannot come before the subscription.
        let mut replies = self
            .client
            .subscribe(reply_subject(&command_id))
            .await
            .map_err(|e| SubmitError::Nats(e.to_string()))?;
        let (ack, attempts) = self
            .publish_counted(COMMAND_SUBJECT, &command_id.to_string(), payload)
            .await?;
        // JetStream had this message id before, and not from a retry of this very call: this
        // is a re-submission, answered with the outcome of the first one.
        let resubmitted = ack.duplicate && attempts == 1;
        let mark = |outcome: Outcome| {
            if resubmitted {
                outcome.as_duplicate()
            } else {
                outcome
            }
        };
        if ack.duplicate {
            // Its outcome may be stored from the first time.
            if let Some(outcome) = self.stored_outcome(command_id).await? {
                return Ok(mark(outcome));
            }
        }
        // Listen; now and then, and at the end, also read the stored reply: one published
        // while the connection was down never reaches the subscription.
        let deadline = tokio::time::Instant::now() + self.reply_timeout;
        let mut check = tokio::time::interval_at(
            tokio::time::Instant::now() + STORED_CHECK_INTERVAL,
            STORED_CHECK_INTERVAL,
        );
        loop {
            tokio::select! {
                message = replies.next() => {
                    if let Some(message) = message {
                        return Ok(mark(parse(&message.payload)?));
                    }
                    break;
                }
                _ = check.tick() => {
                    if let Ok(Some(outcome)) = self.stored_outcome(command_id).await {
                        return Ok(mark(outcome));
                    }
                }
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        match self.stored_outcome(command_id).await? {
            Some(outcome) => Ok(mark(outcome)),
            None => Err(SubmitError::NoReply {
                command_id,
                waited: self.reply_timeout,
            }),
        }
    }

    /// JetStream-publishes `payload` to `subject` with `Nats-Msg-Id` = `msg_id` and awaits the
    /// stream's ack, retrying transient failures with the same id.
    pub async fn publish(
        &self,
        subject: &str,
        msg_id: &str,
        payload: Vec<u8>,
    ) -> Result<jetstream::publish::PublishAck, SubmitError> {
        Ok(self.publish_counted(subject, msg_id, payload).await?.0)
    }

    /// [`publish`](Self::publish), also saying which attempt succeeded.
    async fn publish_counted(
        &self,
        subject: &str,
        msg_id: &str,
        payload: Vec<u8>,
    ) -> Result<(jetstream::publish::PublishAck, u32), SubmitError> {
        let mut delay = Duration::from_millis(100);
        let mut last = String::new();
        for attempt in 1..=self.publish_attempts {
            let publish = PublishMessage::build()
                .payload(payload.clone().into())
                .message_id(msg_id);
            let result = match self.js.send_publish(subject.to_string(), publish).await {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            match result {
                Ok(ack) => return Ok((ack, attempt)),
                Err(e) if transient(&e) => {
                    last = e.to_string();
                    tracing::debug!(attempt, error = %e, "publish failed; retrying");
                }
                Err(e) => return Err(SubmitError::Rejected(e.to_string())),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        Err(SubmitError::Unavailable {
            attempts: self.publish_attempts,
            last,
        })
    }

    /// The outcome stored for `command_id` in `SAOMA_REPLY`, if any (direct get of the last
    /// message on its reply subject).
    pub async fn stored_outcome(&self, command_id: Uuid) -> Result<Option<Outcome>, SubmitError> {
        self.stored(&reply_subject(&command_id)).await
    }

    /// The refusal stored for a message without a readable command id, by its `SAOMA_CMD`
    /// sequence (the publish ack's `sequence`).
    pub async fn stored_refusal(&self, sequence: u64) -> Result<Option<Outcome>, SubmitError> {
        self.stored(&format!("{}{sequence}", super::INVALID_REPLY_PREFIX))
            .await
    }

    async fn stored(&self, subject: &str) -> Result<Option<Outcome>, SubmitError> {
        let name = reply_stream_name();
        let stream = self
            .js
            .get_stream_no_info(&name)
            .await
            .map_err(|e| SubmitError::Nats(e.to_string()))?;
        match stream.direct_get_last_for_subject(subject).await {
            Ok(message) => parse(&message.payload).map(Some),
            Err(e) if e.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(e) => Err(SubmitError::Nats(e.to_string())),
        }
    }
}

fn reply_stream_name() -> String {
    serde_json::from_str::<Value>(REPLY_STREAM_JSON).expect("valid reply stream definition")["name"]
        .as_str()
        .expect("the reply stream has a name")
        .to_string()
}

fn parse(payload: &[u8]) -> Result<Outcome, SubmitError> {
    serde_json::from_slice(payload).map_err(|e| SubmitError::BadReply(e.to_string()))
}

/// Failures worth another try with the same message id: no ack in time, the connection or the
/// stream briefly gone (NATS restarting), too many acks pending, JetStream unavailable (503).
fn transient(e: &jetstream::context::PublishError) -> bool {
    match e.kind() {
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::StreamNotFound
        | PublishErrorKind::MaxAckPending => true,
        PublishErrorKind::Other => std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<jetstream::Error>())
            .is_none_or(|api| api.code() >= 500),
        _ => false,
    }
}
