//! The NATS side of the benchmark: publishes pre-signed envelopes to `saoma.cmd.v1` through
//! JetStream (`Nats-Msg-Id` = command id) and reads every outcome on `saoma.reply.>`.
//!
//! Two drivers: [`throughput`] keeps a window of inspections in flight, each sending its next
//! step when the previous one is answered (so a lifecycle's order never depends on the service);
//! [`latency`] offers commands at a fixed rate whatever the answers (an open loop, so a slow
//! service shows up as latency instead of as a lower offered rate), in waves of steps spread
//! far enough apart that each inspection's commands reach the stream in order.

use super::population::{Lifecycle, STEPS};
use anyhow::{bail, Context as _, Result};
use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt as _;
use saoma_services::nats::{COMMAND_SUBJECT, REPLY_PREFIX};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::future::{Future, IntoFuture as _};
use std::pin::Pin;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A run fails when no reply arrives for this long.
const STALL: Duration = Duration::from_secs(60);

type AckFuture = Pin<
    Box<
        dyn Future<
                Output = Result<jetstream::publish::PublishAck, jetstream::context::PublishError>,
            > + Send,
    >,
>;

/// Two connections: one publishes, one listens to the replies (so that a busy publisher never
/// delays reading them).
pub struct Nats {
    js: jetstream::Context,
    listener: async_nats::Client,
}

/// What one run came to.
#[derive(Debug, Default)]
pub struct RunResult {
    pub commands_sent: usize,
    pub accepted: usize,
    pub events: usize,
    pub refused: BTreeMap<String, usize>,
    pub publish_failures: usize,
    /// Replies to no command of this run (e.g. `saoma.reply.invalid.*`) or a second reply.
    pub stray_replies: usize,
    /// First publish to last reply.
    pub elapsed: Duration,
    /// First publish to last publish.
    pub publishing: Duration,
    /// Publish start to reply, per answered command.
    pub latencies: Vec<Duration>,
    /// The same for the commands of a latency run's settling time, which `latencies` leaves
    /// out.
    pub settling: Vec<Duration>,
}

impl RunResult {
    pub fn refused_total(&self) -> usize {
        self.refused.values().sum()
    }

    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile (0 to 100) of the latencies, nearest rank.
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    pub fn max_latency(&self) -> Duration {
        self.latencies.iter().copied().max().unwrap_or_default()
    }
}

/// The `p`-th percentile (0 to 100) of `latencies`, nearest rank; zero for none.
pub fn percentile(latencies: &[Duration], p: f64) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Deserialize)]
struct Reply {
    status: String,
    #[serde(default)]
    events: Vec<serde_json::Value>,
    #[serde(default)]
    code: Option<String>,
}

/// A reply read off the wire: the command it answers and what it says.
enum Answer {
    Accepted { command_id: Uuid, events: usize },
    Refused { command_id: Uuid, code: String },
    Stray,
}

fn answer(message: &async_nats::Message) -> Answer {
    let Some(command_id) = message
        .subject
        .strip_prefix(REPLY_PREFIX)
        .and_then(|id| id.parse::<Uuid>().ok())
    else {
        return Answer::Stray;
    };
    match serde_json::from_slice::<Reply>(&message.payload) {
        Ok(r) if r.status == "accepted" => Answer::Accepted {
            command_id,
            events: r.events.len(),
        },
        Ok(r) => Answer::Refused {
            command_id,
            code: format!("{}: {}", r.status, r.code.unwrap_or_default()),
        },
        Err(e) => Answer::Refused {
            command_id,
            code: format!("unreadable reply: {e}"),
        },
    }
}

impl Nats {
    /// Connects and waits (at most `wait`) until `saoma serve` has created the command stream
    /// and its consumer.
    pub async fn connect(url: &str, wait: Duration) -> Result<Self> {
        let publisher = async_nats::ConnectOptions::new()
            .name("saoma-bench publisher")
            .connect(url)
            .await
            .context("connecting to NATS")?;
        // Replies must never be dropped as a slow consumer's: room for every one of a run.
        let listener = async_nats::ConnectOptions::new()
            .name("saoma-bench replies")
            .subscription_capacity(1 << 20)
            .connect(url)
            .await
            .context("connecting to NATS")?;
        let js = jetstream::new(publisher);
        // The command stream and the ingest's durable consumer, as `saoma serve` creates them.
        let stream_name = saoma_services::nats::command_stream().name;
        let consumer_name = saoma_services::nats::ingest_consumer()
            .durable_name
            .context("the ingest consumer has a durable name")?;
        let deadline = Instant::now() + wait;
        loop {
            let ready = match js.get_stream(&stream_name).await {
                Ok(stream) => stream.consumer_info(&consumer_name).await.is_ok(),
                Err(_) => false,
            };
            if ready {
                return Ok(Nats { js, listener });
            }
            if Instant::now() > deadline {
                bail!(
                    "saoma serve did not create {stream_name} and {consumer_name} within {wait:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn replies(&self) -> Result<async_nats::Subscriber> {
        let replies = self
            .listener
            .subscribe(format!("{REPLY_PREFIX}>"))
            .await
            .context("subscribing to the replies")?;
        // The subscription is known to the server before the first publish.
        self.listener.flush().await.context("flushing NATS")?;
        Ok(replies)
    }

    async fn publish(&self, command_id: Uuid, payload: &[u8]) -> Result<AckFuture> {
        let publish = PublishMessage::build()
            .payload(payload.to_vec().into())
            .message_id(command_id.to_string());
        let ack: PublishAckFuture = self
            .js
            .send_publish(COMMAND_SUBJECT, publish)
            .await
            .context("publishing a command")?;
        Ok(ack.into_future())
    }
}

/// Sends every lifecycle, `window` inspections at a time, each step after the previous one was
/// accepted; a refused step ends its inspection.
pub async fn throughput(nats: &Nats, lifecycles: &[Lifecycle], window: usize) -> Result<RunResult> {
    let mut replies = nats.replies().await?;
    let mut result = RunResult::default();
    // command id -> (inspection, step, publish start)
    let mut pending: HashMap<Uuid, (usize, usize, Instant)> = HashMap::new();
    let mut acks: FuturesUnordered<AckFuture> = FuturesUnordered::new();
    let mut opened = 0;
    let mut finished = 0;
    let start = Instant::now();
    let mut last_publish = start;
    while opened < lifecycles.len().min(window.max(1)) {
        let signed = &lifecycles[opened].steps[0];
        let sent = Instant::now();
        acks.push(nats.publish(signed.command_id, &signed.payload).await?);
        pending.insert(signed.command_id, (opened, 0, sent));
        opened += 1;
    }
    result.commands_sent = opened;
    let mut last_reply = Instant::now();
    while finished < lifecycles.len() {
        tokio::select! {
            message = replies.next() => {
                let message = message.context("the reply subscription ended")?;
                let received = Instant::now();
                last_reply = received;
                let (command_id, accepted) = match answer(&message) {
                    Answer::Accepted { command_id, events } => (command_id, Some(events)),
                    Answer::Refused { command_id, code } => {
                        if pending.contains_key(&command_id) {
                            *result.refused.entry(code).or_default() += 1;
                        }
                        (command_id, None)
                    }
                    Answer::Stray => {
                        result.stray_replies += 1;
                        continue;
                    }
                };
                let Some((inspection, step, sent)) = pending.remove(&command_id) else {
                    result.stray_replies += 1;
                    continue;
                };
                result.latencies.push(received - sent);
                let next = match accepted {
                    Some(events) => {
                        result.accepted += 1;
                        result.events += events;
                        (step + 1 < STEPS).then_some((inspection, step + 1))
                    }
                    None => None,
                };
                let next = next.or_else(|| {
                    finished += 1;
                    (opened < lifecycles.len()).then(|| {
                        opened += 1;
                        (opened - 1, 0)
                    })
                });
                if let Some((inspection, step)) = next {
                    let signed = &lifecycles[inspection].steps[step];
                    let sent = Instant::now();
                    acks.push(nats.publish(signed.command_id, &signed.payload).await?);
                    pending.insert(signed.command_id, (inspection, step, sent));
                    result.commands_sent += 1;
                    last_publish = sent;
                }
            }
            Some(ack) = acks.next(), if !acks.is_empty() => {
                if ack.is_err() {
                    result.publish_failures += 1;
                }
            }
            _ = tokio::time::sleep_until((last_reply + STALL).into()) => {
                bail!(
                    "no reply for {STALL:?}: {} of {} inspections finished, {} commands unanswered",
                    finished,
                    lifecycles.len(),
                    pending.len()
                );
            }
        }
    }
    result.elapsed = last_reply - start;
    result.publishing = last_publish - start;
    drain_acks(&mut acks, &mut result).await;
    Ok(result)
}

/// Offers every command of `lifecycles` at `rate` commands per second, in waves: step k of a
/// group of inspections, then step k + 1 of the same group a whole wave later. The commands
/// published in the first `settle` of the run are answered and checked like the others, but
/// their latencies go to [`RunResult::settling`]: the run measures the steady state at `rate`,
/// not the aftermath of what ran before it.
pub async fn latency(
    nats: &Nats,
    lifecycles: &[Lifecycle],
    rate: f64,
    wave: usize,
    settle: Duration,
) -> Result<RunResult> {
    let order: Vec<(usize, usize)> = (0..lifecycles.len())
        .collect::<Vec<_>>()
        .chunks(wave.max(1))
        .flat_map(|group| (0..STEPS).flat_map(move |step| group.iter().map(move |&i| (i, step))))
        .collect();
    let mut replies = nats.replies().await?;
    let mut result = RunResult::default();
    let mut pending: HashMap<Uuid, Instant> = HashMap::with_capacity(order.len());
    let mut acks: FuturesUnordered<AckFuture> = FuturesUnordered::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next = 0;
    let mut answered = 0;
    let start = Instant::now();
    let mut last_publish = start;
    let mut last_reply = start;
    while answered < order.len() {
        tokio::select! {
            biased;
            message = replies.next() => {
                let message = message.context("the reply subscription ended")?;
                let received = Instant::now();
                last_reply = received;
                let command_id = match answer(&message) {
                    Answer::Accepted { command_id, events } => {
                        if pending.contains_key(&command_id) {
                            result.accepted += 1;
                            result.events += events;
                        }
                        command_id
                    }
                    Answer::Refused { command_id, code } => {
                        if pending.contains_key(&command_id) {
                            *result.refused.entry(code).or_default() += 1;
                        }
                        command_id
                    }
                    Answer::Stray => {
                        result.stray_replies += 1;
                        continue;
                    }
                };
                match pending.remove(&command_id) {
                    Some(sent) => {
                        let latencies = if sent < start + settle {
                            &mut result.settling
                        } else {
                            &mut result.latencies
                        };
                        latencies.push(received - sent);
                        answered += 1;
                    }
                    None => result.stray_replies += 1,
                }
            }
            Some(ack) = acks.next(), if !acks.is_empty() => {
                if ack.is_err() {
                    result.publish_failures += 1;
                }
            }
            _ = ticks.tick(), if next < order.len() => {
                let due = ((start.elapsed().as_secs_f64() * rate) as usize + 1).min(order.len());
                while next < due {
                    let (inspection, step) = order[next];
                    let signed = &lifecycles[inspection].steps[step];
                    let sent = Instant::now();
                    acks.push(nats.publish(signed.command_id, &signed.payload).await?);
                    pending.insert(signed.command_id, sent);
                    last_publish = sent;
                    next += 1;
                }
                result.commands_sent = next;
            }
            _ = tokio::time::sleep_until((last_reply.max(last_publish) + STALL).into()) => {
                bail!(
                    "no reply for {STALL:?}: {answered} of {} commands answered",
                    order.len()
                );
            }
        }
    }
    result.elapsed = last_reply - start;
    result.publishing = last_publish - start;
    drain_acks(&mut acks, &mut result).await;
    Ok(result)
}

/// Waits for the JetStream acks still outstanding (every command was answered, so they are due).
async fn drain_acks(acks: &mut FuturesUnordered<AckFuture>, result: &mut RunResult) {
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(ack) = acks.next().await {
            if ack.is_err() {
                result.publish_failures += 1;
            }
        }
    })
    .await;
    if waited.is_err() {
        result.publish_failures += acks.len();
    }
}
