//! Officers' apps over NATS JetStream: the ingest that executes signed commands from
//! `saoma.cmd.v1` and answers each on `saoma.reply.<command_id>`, and the client apps use.
//!
//! The stream and consumer definitions are the JSON files under `deploy/nats/` (the format the
//! `nats` CLI takes), compiled in with `include_str!`, so operators and the service share one
//! source of truth. The subjects, payloads and headers are documented in
//! `schemas/asyncapi.yaml`.

pub mod client;
mod ingest;
pub mod reply;
mod setup;

pub use client::{NatsClient, SubmitError};
pub use reply::{Outcome, ReplyAccepted, ReplyEvent, ReplyRefused};

use crate::config::Settings;
use crate::http::SharedState;
use async_nats::jetstream::{consumer, stream};
use std::time::Duration;
use tokio::sync::watch;

/// The one subject officers publish their signed envelopes to.
pub const COMMAND_SUBJECT: &str = "saoma.cmd.v1";
/// Every subject the command stream takes; all but [`COMMAND_SUBJECT`] are refused.
pub const COMMAND_SUBJECTS: &str = "saoma.cmd.>";
/// Replies go to `saoma.reply.<command_id>`.
pub const REPLY_PREFIX: &str = "saoma.reply.";
/// Replies to messages without a readable command id go to `saoma.reply.invalid.<stream seq>`.
pub const INVALID_REPLY_PREFIX: &str = "saoma.reply.invalid.";
/// Committed events out (published by the events-out publisher):
/// `saoma.evt.<agency>.<event_type>`.
pub const EVENT_SUBJECT_PATTERN: &str = "saoma.evt.{agency}.{event_type}";
/// JetStream's deduplication header; publishers set it to the envelope's `command_id`.
pub const MSG_ID_HEADER: &str = "Nats-Msg-Id";
/// Optional header: a core NATS subject that also receives the outcome (request-reply).
pub const REPLY_TO_HEADER: &str = "Saoma-Reply-To";

pub const COMMAND_STREAM_JSON: &str = include_str!("../../../deploy/nats/stream-cmd.json");
pub const REPLY_STREAM_JSON: &str = include_str!("../../../deploy/nats/stream-reply.json");
pub const INGEST_CONSUMER_JSON: &str = include_str!("../../../deploy/nats/consumer-ingest.json");

/// The reply subject of a command.
pub fn reply_subject(command_id: &uuid::Uuid) -> String {
    format!("{REPLY_PREFIX}{command_id}")
}

/// The command stream `SAOMA_CMD`, as defined in `deploy/nats/stream-cmd.json`.
pub fn command_stream() -> stream::Config {
    serde_json::from_str(COMMAND_STREAM_JSON).expect("deploy/nats/stream-cmd.json is valid")
}

/// The reply stream `SAOMA_REPLY`, as defined in `deploy/nats/stream-reply.json`.
pub fn reply_stream() -> stream::Config {
    serde_json::from_str(REPLY_STREAM_JSON).expect("deploy/nats/stream-reply.json is valid")
}

/// The durable pull consumer `saoma-ingest` on `SAOMA_CMD`.
pub fn ingest_consumer() -> consumer::pull::Config {
    serde_json::from_str(INGEST_CONSUMER_JSON).expect("deploy/nats/consumer-ingest.json is valid")
}

/// Tuning of the ingest; the defaults suit the 2-core target machine.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Most messages executed in one `App::submit_batch` call.
    pub max_batch: usize,
    /// Executed batches waiting for their replies and acks, at most.
    pub batches_in_flight: usize,
    /// Largest accepted message payload (the `max_command_bytes` setting).
    pub max_command_bytes: usize,
    /// Deliveries after which a command that keeps failing for internal reasons is refused
    /// with `internal` instead of being redelivered again.
    pub max_internal_attempts: i64,
}

impl IngestOptions {
    pub fn from_settings(settings: &Settings) -> Self {
        IngestOptions {
            max_batch: 256,
            batches_in_flight: 2,
            max_command_bytes: settings.max_command_bytes,
            max_internal_attempts: 20,
        }
    }
}

/// The running ingest: stop it with [`NatsIngest::shutdown`]; dropping it aborts it.
pub struct NatsIngest {
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl NatsIngest {
    /// Stops fetching, finishes the batch in flight (its replies and acks), naks what was
    /// delivered but not started, and waits for that (30 s at most).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .is_err()
            {
                tracing::warn!("NATS ingest did not stop within 30 s; aborted");
                abort.abort();
            }
        }
    }
}

impl Drop for NatsIngest {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Starts the NATS ingest when `nats_url` is set: connects (retrying with backoff while NATS
/// is unreachable, never failing the service), creates or updates the streams and the durable
/// consumer, and executes commands until [`NatsIngest::shutdown`].
pub fn start(state: SharedState, settings: &Settings) -> Option<NatsIngest> {
    let url = settings.nats_url.clone()?;
    let options = IngestOptions::from_settings(settings);
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(ingest::supervise(state, url, options, stopped));
    Some(NatsIngest {
        stop,
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy};
    use async_nats::jetstream::stream::{DiscardPolicy, RetentionPolicy, StorageType};

    #[test]
    fn the_deploy_definitions_are_the_ones_the_service_uses() {
        let cmd = command_stream();
        assert_eq!(cmd.name, "SAOMA_CMD");
        assert_eq!(cmd.subjects, vec![COMMAND_SUBJECTS.to_string()]);
        assert_eq!(cmd.storage, StorageType::File);
        assert_eq!(cmd.retention, RetentionPolicy::Limits);
        assert_eq!(cmd.discard, DiscardPolicy::Old);
        assert_eq!(cmd.max_message_size, 64 * 1024);
        assert_eq!(cmd.duplicate_window, Duration::from_secs(120));
        assert!(COMMAND_SUBJECT.starts_with(COMMAND_SUBJECTS.trim_end_matches('>')));

        let reply = reply_stream();
        assert_eq!(reply.name, "SAOMA_REPLY");
        assert_eq!(reply.subjects, vec![format!("{REPLY_PREFIX}>")]);
        assert!(
            reply.allow_direct,
            "clients fetch missed replies by direct get"
        );
        assert_eq!(reply.max_age, Duration::from_secs(7 * 24 * 3600));
        assert!(INVALID_REPLY_PREFIX.starts_with(REPLY_PREFIX));

        let consumer = ingest_consumer();
        assert_eq!(consumer.durable_name.as_deref(), Some("saoma-ingest"));
        assert_eq!(consumer.ack_policy, AckPolicy::Explicit);
        assert_eq!(consumer.deliver_policy, DeliverPolicy::All);
        assert_eq!(consumer.filter_subject, COMMAND_SUBJECTS);
        assert!(consumer.max_ack_pending > 0, "bounded in-flight messages");
        assert!(consumer.max_batch as usize >= ingest::PULL_BATCH);
    }

    fn asyncapi() -> serde_json::Value {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/asyncapi.yaml");
        let text = std::fs::read_to_string(path).expect("read asyncapi.yaml");
        serde_norway::from_str(&text).expect("asyncapi.yaml is YAML with string keys")
    }

    #[test]
    fn asyncapi_documents_every_subject_header_and_stream_the_service_uses() {
        let doc = asyncapi();
        assert_eq!(doc["asyncapi"], "3.0.0");
        let addresses: Vec<&str> = doc["channels"]
            .as_object()
            .expect("channels")
            .values()
            .filter_map(|c| c["address"].as_str())
            .collect();
        for subject in [
            COMMAND_SUBJECT.to_string(),
            format!("{REPLY_PREFIX}{{command_id}}"),
            format!("{INVALID_REPLY_PREFIX}{{stream_sequence}}"),
            EVENT_SUBJECT_PATTERN.to_string(),
        ] {
            assert!(
                addresses.contains(&subject.as_str()),
                "{subject} is not a channel of asyncapi.yaml ({addresses:?})"
            );
        }
        let headers = &doc["components"]["messages"]["SignedCommand"]["headers"]["properties"];
        for header in [MSG_ID_HEADER, REPLY_TO_HEADER] {
            assert!(headers.get(header).is_some(), "header {header}");
        }
        for (config, file) in [
            (command_stream(), "stream-cmd.json"),
            (reply_stream(), "stream-reply.json"),
        ] {
            let stream = &doc["x-streams"][&config.name];
            assert_eq!(
                stream["definition"],
                format!("../deploy/nats/{file}"),
                "{}",
                config.name
            );
            assert_eq!(stream["subjects"], serde_json::json!(config.subjects));
        }
        let consumer = ingest_consumer().durable_name.unwrap();
        assert!(doc["x-streams"]["SAOMA_CMD"]["consumers"]
            .get(&consumer)
            .is_some());
        // Every file a `$ref` or `definition` names exists.
        let schemas = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let text = std::fs::read_to_string(schemas.join("asyncapi.yaml")).unwrap();
        for line in text.lines() {
            let line = line.trim();
            for key in ["$ref: \"", "definition: "] {
                if let Some(rest) = line.strip_prefix(key) {
                    let target = rest.trim_end_matches('"');
                    if !target.starts_with('#') {
                        assert!(schemas.join(target).exists(), "{target} does not exist");
                    }
                }
            }
        }
    }

    #[test]
    fn every_outcome_the_service_publishes_matches_the_asyncapi_schema() {
        let doc = asyncapi();
        let schema = serde_json::json!({
            "$ref": "#/components/schemas/Outcome",
            "components": {"schemas": doc["components"]["schemas"].clone()},
        });
        let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
        let event = ReplyEvent {
            sequence: 2,
            event_type: "CodeShown".into(),
            hash: "0f".repeat(32),
        };
        let id = uuid::Uuid::new_v4();
        let outcomes = [
            Outcome::Accepted(ReplyAccepted {
                command_id: id,
                inspection_id: uuid::Uuid::new_v4(),
                events: vec![event.clone()],
                late: true,
                duplicate: true,
                token: Some("token".into()),
                url: Some("https://saoma.example.gov.cn/c/token".into()),
            }),
            Outcome::Refused(ReplyRefused {
                command_id: Some(id),
                code: "code_expired".into(),
                message_zh: "检查码已过期".into(),
                message_en: reply::english("code_expired").into(),
                detail: Some("detail".into()),
                recorded: Some(event.clone()),
                duplicate: true,
                original: Some(vec![event]),
                stream_sequence: Some(7),
            }),
            Outcome::refused(None, "malformed_json", "消息内容不是有效的JSON"),
        ];
        for outcome in outcomes {
            let value = serde_json::to_value(&outcome).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{value}: {errors:?}");
        }
        let mut extra = serde_json::to_value(Outcome::refused(None, "internal", "x")).unwrap();
        extra["surprise"] = serde_json::json!(1);
        assert!(!validator.is_valid(&extra), "the schema is closed");
    }

    #[test]
    fn the_deploy_files_hold_no_field_the_client_library_drops() {
        // A field misspelt in a file would be silently ignored by serde: compare the files
        // with the configs serialised back.
        for (file, back) in [
            (
                COMMAND_STREAM_JSON,
                serde_json::to_value(command_stream()).unwrap(),
            ),
            (
                REPLY_STREAM_JSON,
                serde_json::to_value(reply_stream()).unwrap(),
            ),
            (
                INGEST_CONSUMER_JSON,
                serde_json::to_value(ingest_consumer()).unwrap(),
            ),
        ] {
            let file: serde_json::Value = serde_json::from_str(file).unwrap();
            for (key, value) in file.as_object().unwrap() {
                let kept = back.get(key);
                // Defaults are left out when serialised (e.g. `false`, `-1` limits, 0).
                let is_default = matches!(value, serde_json::Value::Bool(false))
                    || value == &serde_json::json!(-1)
                    || value == &serde_json::json!(0);
                assert!(
                    kept == Some(value) || (kept.is_none() && is_default),
                    "{key}: file has {value}, the client keeps {kept:?}"
                );
            }
        }
    }
}
