//! The global log in a running service: the sequencer that gives every committed event its
//! position, and the publisher that follows the positions onto NATS JetStream (committed
//! events out). Both are background tasks started by `serve` and stopped on shutdown.

pub mod publisher;
pub mod sequencer;
pub mod tree;

use crate::app::App;
use crate::config::Settings;
use saoma_projections::rules::RuleBook;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The running log tasks of this process. Dropping them aborts them; [`LogTasks::shutdown`]
/// lets them finish their round first.
pub struct LogTasks {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

/// Starts the sequencer, the Merkle tree with its checkpoints, the follower of other processes'
/// registry changes, the live views (unless turned off), and the publisher when a NATS URL is
/// configured.
pub fn start(app: &App, settings: &Settings, book: RuleBook) -> LogTasks {
    let store = app.store();
    let (stop, stopped) = watch::channel(false);
    let interval = Duration::from_millis(settings.sequence_interval_ms);
    // The sequencer tells the followers when it gave new positions, so an event goes out as
    // soon as it has one; they also poll, for positions given by the writer's appends or by
    // another process.
    let (positioned, wake) = watch::channel(0);
    let mut handles = vec![tokio::spawn(sequencer::run(
        store.clone(),
        interval,
        positioned,
        stopped.clone(),
    ))];
    handles.push(tokio::spawn(tree::run(
        app.log_tree().clone(),
        interval,
        Duration::from_millis(settings.checkpoint_interval_ms),
        wake.clone(),
        stopped.clone(),
    )));
    handles.push(tokio::spawn(crate::registry_follow::run(
        app.registry_follower(),
        app.registry_loaded_at(),
        interval,
        stopped.clone(),
    )));
    if settings.live_views {
        handles.push(tokio::spawn(crate::views::run(
            store.clone(),
            book,
            interval,
            Duration::from_secs(settings.deadline_grace_seconds),
            wake.clone(),
            stopped.clone(),
        )));
    }
    if let Some(url) = &settings.nats_url {
        handles.push(tokio::spawn(publisher::run(
            store.clone(),
            url.clone(),
            interval,
            wake,
            stopped,
        )));
    }
    LogTasks { stop, handles }
}

impl LogTasks {
    /// Asks every task to stop after its current round, and waits for them (30 s at most,
    /// then aborts them: whatever they had not done is done by the next start).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for handle in std::mem::take(&mut self.handles) {
            let abort = handle.abort_handle();
            match tokio::time::timeout(Duration::from_secs(30), handle).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "a log task failed"),
                Err(_) => {
                    tracing::warn!("a log task did not stop within 30 s; aborted");
                    abort.abort();
                }
            }
        }
    }
}

impl Drop for LogTasks {
    fn drop(&mut self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

/// Resolves once `stop` says so (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
