//! Committed events out: follows the global log and publishes every event, in position order,
//! to the JetStream stream `SAOMA_EVT` (definition: `deploy/nats/stream-evt.json`).
//!
//! Each message is the sealed event exactly as stored, on `saoma.evt.<agency>.<event_type>` for
//! inspection events (the agency of the inspection's `CodeIssued`) and
//! `saoma.evt.registry.<event_type>` for registry events; subject tokens keep letters, digits,
//! `-` and `_` and write any other byte as `%XX` (an agency code `QH.SCJ` becomes `QH%2ESCJ`).
//! Headers: `Nats-Msg-Id` = `<aggregate_type>/<aggregate_id>/<sequence>`, `Saoma-Position` (the
//! log position) and `Saoma-Hash` (the event's hash).
//!
//! Nothing is lost: this is an outbox over the store. An event is only counted as out once
//! JetStream acked it; when NATS is down, publishing stops and resumes from there after it
//! is back, and the store keeps everything meanwhile.
//!
//! Nothing is duplicated or reordered, whatever the timing of crashes and reconnects: every
//! message carries `Nats-Expected-Last-Sequence`, so the stream only accepts it right after the
//! message this publisher believes is the stream's last. After any failure the publisher reads
//! the stream's actual last message and its `Saoma-Position`, and continues right after it — an
//! event is never re-sent once stored, even long after the duplicate window, and a message that
//! was lost in a reconnect cannot be overtaken by the ones behind it. The `nats-events` cursor in
//! the store follows the acks; it is where to start when the stream's last message cannot be
//! read (e.g. all expired), and what the lag metric is measured against. Per-inspection order
//! follows: positions respect each stream's order and the stream holds positions in order.

use crate::store::{LoggedRow, Store, StoreError};
use async_nats::header::{NATS_EXPECTED_LAST_SEQUENCE, NATS_MESSAGE_ID};
use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use lru::LruCache;
use serde::Deserialize;
use std::borrow::Cow;
use std::num::NonZeroUsize;
use std::time::Duration;
use tokio::sync::watch;

/// The stream's definition, shared with operators (`deploy/nats/stream-evt.json`).
pub const STREAM_DEFINITION: &str = include_str!("../../../deploy/nats/stream-evt.json");
/// The store cursor of this follower.
pub const CURSOR: &str = "nats-events";
/// Header with the event's position in the global log.
pub const POSITION_HEADER: &str = "Saoma-Position";
/// Header with the event's hash (hex), as in its payload.
pub const HASH_HEADER: &str = "Saoma-Hash";

/// Most events read and published per round; their acks are awaited together.
const BATCH: u64 = 512;
/// Inspections whose agency is remembered; older ones are read back from their stream.
const AGENCY_CACHE: usize = 100_000;
/// Longest wait between attempts while NATS or the store fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a publish ack may take before the round counts as failed.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a round published less than it could.
#[derive(Debug, thiserror::Error)]
pub enum OutError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("nats: {0}")]
    Nats(String),
    #[error("the stream's definition is invalid: {0}")]
    Definition(#[from] serde_json::Error),
    #[error("stream {stream} holds another log: its message at position {position} has hash {found}, the store's event there has {expected}")]
    ForeignStream {
        stream: String,
        position: u64,
        found: String,
        expected: String,
    },
}

fn nats(e: impl std::fmt::Display) -> OutError {
    OutError::Nats(e.to_string())
}

/// The stream configuration from `deploy/nats/stream-evt.json`.
pub fn stream_config() -> Result<stream::Config, serde_json::Error> {
    serde_json::from_str(STREAM_DEFINITION)
}

/// Publishes until `stop`. `wake` changes when this process's sequencer gave new positions;
/// besides, the log is polled every `interval` (the writer's appends and other processes give
/// positions too).
pub async fn run(
    store: Store,
    url: String,
    interval: Duration,
    mut wake: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let client = match async_nats::ConnectOptions::new()
        .name("saoma events out")
        // Start even while NATS is down; the client connects when it can.
        .retry_on_initial_connect()
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((attempts as u64 * 100).min(2_000))
        })
        .connect(url.as_str())
        .await
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "events out: the NATS URL is unusable; not publishing");
            return;
        }
    };
    let js = jetstream::ContextBuilder::new()
        .timeout(ACK_TIMEOUT)
        .build(client);
    let mut publisher = match Publisher::new(store, js) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "events out: not publishing");
            return;
        }
    };
    tracing::info!(stream = %publisher.config.name, "events out started");
    let mut backoff = interval;
    let mut wake_open = true;
    loop {
        let wait = match publisher.round().await {
            Ok(n) if n == BATCH => {
                backoff = interval;
                Duration::ZERO
            }
            Ok(_) => {
                backoff = interval;
                interval
            }
            Err(e) => {
                metrics::counter!("saoma_events_publish_failures_total").increment(1);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "events out: round failed");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            }
        };
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            // New positions: go at once, unless backing off after a failure.
            changed = wake.changed(), if wake_open && wait == interval => {
                wake_open = changed.is_ok();
            }
            _ = super::stopped(&mut stop) => break,
        }
    }
    tracing::info!("events out stopped");
}

/// Where the stream stands, as far as this publisher knows.
#[derive(Debug, Clone, Copy)]
struct Tail {
    /// The log position of the stream's last message.
    position: u64,
    /// The stream sequence of its last message.
    stream_seq: u64,
}

struct Publisher {
    store: Store,
    js: jetstream::Context,
    config: stream::Config,
    /// `None` until (re)synchronised with the stream after a start or a failure.
    tail: Option<Tail>,
    /// Subject token of each inspection's agency, by inspection id.
    agencies: LruCache<String, String>,
}

impl Publisher {
    fn new(store: Store, js: jetstream::Context) -> Result<Self, OutError> {
        Ok(Publisher {
            store,
            js,
            config: stream_config()?,
            tail: None,
            agencies: LruCache::new(NonZeroUsize::new(AGENCY_CACHE).expect("non-zero")),
        })
    }

    /// Publishes the next batch after the stream's tail; returns how many events went out.
    async fn round(&mut self) -> Result<u64, OutError> {
        let mut tail = match self.tail {
            Some(tail) => tail,
            None => {
                let tail = self.synchronise().await?;
                self.tail = Some(tail);
                tail
            }
        };
        let rows = self.store.follow_after(tail.position, BATCH).await?;
        if rows.is_empty() {
            self.report_lag(tail.position).await?;
            return Ok(0);
        }
        // Pipelined: publish the whole batch, then await the acks in order.
        let mut pending = Vec::with_capacity(rows.len());
        let mut failure = None;
        for (i, row) in rows.iter().enumerate() {
            let peek = Peek::of(row);
            let sent = match self.subject(row, &peek).await {
                Ok(subject) => {
                    let headers = headers(row, &peek.hash, tail.stream_seq + i as u64);
                    self.js
                        .publish_with_headers(subject, headers, row.payload_text.clone().into())
                        .await
                        .map_err(nats)
                }
                Err(e) => Err(e),
            };
            match sent {
                Ok(ack) => pending.push((row.position, ack)),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut published = 0;
        for (position, ack) in pending {
            match ack.await {
                Ok(ack) => {
                    tail = Tail {
                        position,
                        stream_seq: ack.sequence,
                    };
                    published += 1;
                }
                Err(e) => {
                    failure.get_or_insert(nats(e));
                    break;
                }
            }
        }
        metrics::counter!("saoma_events_published_total").increment(published);
        if published > 0 {
            self.store.set_cursor(CURSOR, tail.position).await?;
        }
        match failure {
            None => {
                self.tail = Some(tail);
                self.report_lag(tail.position).await?;
                Ok(published)
            }
            Some(e) => {
                // Whatever the stream holds now, the next round starts from its real tail.
                self.tail = None;
                Err(e)
            }
        }
    }

    /// Creates or updates the stream, and finds the position of its last message.
    async fn synchronise(&mut self) -> Result<Tail, OutError> {
        let info = self
            .js
            .create_or_update_stream(self.config.clone())
            .await
            .map_err(nats)?;
        let stream_seq = info.state.last_sequence;
        let cursor = self.store.cursor(CURSOR).await?;
        let from_stream = if stream_seq == 0 {
            None
        } else {
            self.position_of(stream_seq).await?
        };
        let position = match from_stream {
            Some((position, hash)) => {
                self.check_ours(position, &hash).await?;
                if position != cursor {
                    tracing::info!(
                        cursor,
                        stream_position = position,
                        "events out: the stream's last message, not the cursor, says where to go on"
                    );
                    self.store.set_cursor(CURSOR, position).await?;
                }
                position
            }
            None => cursor,
        };
        tracing::info!(position, stream_seq, "events out: in step with the stream");
        Ok(Tail {
            position,
            stream_seq,
        })
    }

    /// The log position and hash carried by the stream's message `seq`, when it is one of ours
    /// and still there.
    async fn position_of(&self, seq: u64) -> Result<Option<(u64, String)>, OutError> {
        let stream = self
            .js
            .get_stream_no_info(&self.config.name)
            .await
            .map_err(nats)?;
        let message = match stream.get_raw_message(seq).await {
            Ok(m) => m,
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => return Err(nats(e)),
        };
        let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
        Ok(header(POSITION_HEADER)
            .and_then(|p| p.parse().ok())
            .map(|p| (p, header(HASH_HEADER).unwrap_or_default())))
    }

    /// Refuses to go on from a stream that holds another database's log (a reset store, or a
    /// shared NATS), which would otherwise silently skip events.
    async fn check_ours(&self, position: u64, hash: &str) -> Result<(), OutError> {
        let expected = self
            .store
            .events_after(position.saturating_sub(1), 1)
            .await?
            .into_iter()
            .find(|r| r.position == position)
            .map(|r| event_hash(&r))
            .unwrap_or_default();
        if expected == hash {
            Ok(())
        } else {
            Err(OutError::ForeignStream {
                stream: self.config.name.clone(),
                position,
                found: hash.to_string(),
                expected,
            })
        }
    }

    async fn report_lag(&self, published: u64) -> Result<(), OutError> {
        let max = self.store.max_position().await?;
        metrics::gauge!("saoma_events_publish_lag").set(max.saturating_sub(published) as f64);
        Ok(())
    }

    /// `saoma.evt.<agency>.<event_type>` or `saoma.evt.registry.<event_type>`.
    async fn subject(&mut self, row: &LoggedRow, peek: &Peek<'_>) -> Result<String, OutError> {
        let group = match row.aggregate_type.as_str() {
            "Inspection" => self.agency(row, peek).await?,
            "Registry" => "registry".to_string(),
            other => token(&other.to_lowercase()),
        };
        Ok(format!("saoma.evt.{group}.{}", token(&row.event_type)))
    }

    /// The subject token of the agency that issued the row's inspection.
    async fn agency(&mut self, row: &LoggedRow, peek: &Peek<'_>) -> Result<String, OutError> {
        if let Some(agency) = peek.issuing_agency() {
            self.agencies.put(row.aggregate_id.clone(), agency.clone());
            return Ok(agency);
        }
        if let Some(agency) = self.agencies.get(&row.aggregate_id) {
            return Ok(agency.clone());
        }
        let issued = self
            .store
            .stream(&row.aggregate_type, &row.aggregate_id)
            .await?
            .into_iter()
            .find_map(|r| Peek::deserialize(&r.payload).ok()?.issuing_agency());
        let agency = issued.unwrap_or_else(|| {
            // The aggregate only records events on issued codes; keep publishing regardless.
            tracing::warn!(inspection = %row.aggregate_id, "events out: no CodeIssued in the stream");
            "unknown".to_string()
        });
        self.agencies.put(row.aggregate_id.clone(), agency.clone());
        Ok(agency)
    }
}

/// What the publisher reads of a stored event: its hash and, for a `CodeIssued`, the agency.
/// Deserialised without building the whole JSON value (the rest is skipped).
#[derive(Debug, Default, Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    hash: Cow<'a, str>,
    #[serde(borrow, default)]
    event: PeekEvent<'a>,
}

#[derive(Debug, Default, Deserialize)]
struct PeekEvent<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    agency: Option<PeekAgency<'a>>,
}

#[derive(Debug, Deserialize)]
struct PeekAgency<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
}

impl<'a> Peek<'a> {
    /// An unreadable payload peeks as empty: it is still published, verbatim.
    fn of(row: &'a LoggedRow) -> Self {
        serde_json::from_str(&row.payload_text).unwrap_or_default()
    }

    /// The agency subject token, when this is a sealed `CodeIssued`.
    fn issuing_agency(&self) -> Option<String> {
        let agency = self.event.agency.as_ref()?;
        (self.event.kind == "CodeIssued").then(|| token(&agency.code))
    }
}

fn event_hash(row: &LoggedRow) -> String {
    Peek::of(row).hash.into_owned()
}

fn headers(row: &LoggedRow, hash: &str, expected_last_seq: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        NATS_MESSAGE_ID,
        format!(
            "{}/{}/{}",
            row.aggregate_type, row.aggregate_id, row.sequence
        ),
    );
    headers.insert(NATS_EXPECTED_LAST_SEQUENCE, expected_last_seq.to_string());
    headers.insert(POSITION_HEADER, row.position.to_string());
    headers.insert(HASH_HEADER, hash);
    headers
}

/// One subject token: letters, digits, `-` and `_` as they are, every other byte as `%XX`, so
/// no value can add a level, a wildcard or whitespace, and distinct values stay distinct.
pub fn token(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn the_stream_definition_in_deploy_parses() {
        let config = stream_config().unwrap();
        assert_eq!(config.name, "SAOMA_EVT");
        assert_eq!(config.subjects, vec!["saoma.evt.>".to_string()]);
        assert_eq!(config.duplicate_window, Duration::from_secs(120));
    }

    #[test]
    fn subject_tokens_cannot_add_levels_or_wildcards() {
        assert_eq!(token("QH-SCJ"), "QH-SCJ");
        assert_eq!(token("QH.SCJ"), "QH%2ESCJ");
        assert_eq!(token("a b*>"), "a%20b%2A%3E");
        assert_eq!(token(""), "%00");
        assert_ne!(token("QH.SCJ"), token("QH_SCJ"));
    }

    #[test]
    fn the_agency_and_hash_are_peeked_from_the_stored_text() {
        let row = |payload: Value| LoggedRow {
            position: 1,
            aggregate_type: "Inspection".into(),
            aggregate_id: "i".into(),
            sequence: 1,
            event_type: "x".into(),
            payload_text: payload.to_string(),
        };
        let issued = row(
            json!({"hash": "ab12", "signed": {"agency": {"code": "other"}},
            "event": {"type": "CodeIssued", "agency": {"code": "QH.SCJ", "name": "青海"}}}),
        );
        let peek = Peek::of(&issued);
        assert_eq!(peek.issuing_agency().as_deref(), Some("QH%2ESCJ"));
        assert_eq!(peek.hash, "ab12");
        let shown = row(
            json!({"hash": "cd34", "event": {"type": "CodeShown", "at": "2026-01-01T00:00:00Z"}}),
        );
        assert_eq!(Peek::of(&shown).issuing_agency(), None);
        assert_eq!(event_hash(&shown), "cd34");
        let unreadable = LoggedRow {
            payload_text: "not json".into(),
            ..shown
        };
        assert_eq!(event_hash(&unreadable), "");
        let from_value = json!({"event": {"type": "CodeIssued", "agency": {"code": "GS-SCJ"}}});
        assert_eq!(
            Peek::deserialize(&from_value)
                .unwrap()
                .issuing_agency()
                .as_deref(),
            Some("GS-SCJ")
        );
    }
}
