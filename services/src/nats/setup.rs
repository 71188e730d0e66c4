//! Connecting to NATS (retrying with backoff, never giving up while the service runs) and
//! creating or updating the JetStream streams and the durable ingest consumer.

use async_nats::jetstream::{self, consumer::PullConsumer};
use std::time::Duration;
use tokio::sync::watch;

/// Waits between attempts: 0.5 s doubling up to 30 s.
pub(super) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Self {
        Backoff {
            next: Duration::from_millis(500),
        }
    }

    pub fn reset(&mut self) {
        self.next = Duration::from_millis(500);
    }

    /// Sleeps for the next delay; `false` when the service is stopping instead.
    pub async fn wait(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        let delay = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(30));
        let slept = tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = async { let _ = stop.wait_for(|s| *s).await; } => false,
        };
        slept && !*stop.borrow()
    }

    pub fn current(&self) -> Duration {
        self.next
    }
}

/// Connect options for the service and the client: unlimited quick reconnects, connection
/// events logged.
pub(super) fn connect_options(name: &str) -> async_nats::ConnectOptions {
    let name = name.to_string();
    async_nats::ConnectOptions::new()
        .name(&name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        // No wait before the first attempt; then 0.2 s doubling up to 2 s, so that a restarted
        // server is found again within seconds.
        .reconnect_delay_callback(|attempts| match attempts {
            0 | 1 => Duration::ZERO,
            n => Duration::from_millis(100 << n.min(5)).min(Duration::from_secs(2)),
        })
        .event_callback(move |event| {
            let name = name.clone();
            async move {
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!(client = %name, "NATS connected")
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!(client = %name, "NATS disconnected; reconnecting")
                    }
                    other => tracing::warn!(client = %name, event = %other, "NATS event"),
                }
            }
        })
}

/// Connects, retrying with backoff until connected; `None` when the service stops first.
pub(super) async fn connect(
    url: &str,
    stop: &mut watch::Receiver<bool>,
) -> Option<async_nats::Client> {
    let mut backoff = Backoff::new();
    loop {
        match connect_options("saoma serve").connect(url).await {
            Ok(client) => return Some(client),
            Err(e) => {
                tracing::warn!(
                    url,
                    error = %e,
                    retry_in = ?backoff.current(),
                    "cannot connect to NATS; NATS ingest waits, HTTP keeps serving"
                );
                if !backoff.wait(stop).await {
                    return None;
                }
            }
        }
    }
}

/// Creates or updates `SAOMA_CMD`, `SAOMA_REPLY` and the durable consumer `saoma-ingest`.
pub(super) async fn ensure(js: &jetstream::Context) -> anyhow::Result<PullConsumer> {
    for config in [super::command_stream(), super::reply_stream()] {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|e| anyhow::anyhow!("creating or updating stream {name}: {e}"))?;
    }
    let stream = super::command_stream().name;
    let config = super::ingest_consumer();
    let name = config.durable_name.clone().unwrap_or_default();
    // Creating a durable consumer that exists updates its editable fields.
    js.create_consumer_on_stream(config, stream.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("creating or updating consumer {name} on {stream}: {e}"))
}
