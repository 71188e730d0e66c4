//! The sequencer: gives every committed event its position in the one global log, a few times a
//! second, after the commit.
//!
//! Why after the commit and not a serial column: a serial value is drawn before the commit, so
//! under concurrent commits a reader can see 7 before 6 exists and skip 6 for good, and a rolled
//! back transaction leaves a gap. The sequencer instead numbers only rows that are already
//! committed, consecutively after the current maximum, in one transaction per round: positions
//! start at 1, have no gaps, and a position once given is never changed (the database refuses
//! it, see `0002_log_positions.sql`).
//!
//! Why per-stream order holds: event n+1 of a stream is only ever written by a writer that has
//! loaded event n, i.e. after n was committed. So any snapshot that sees n+1 also sees n, and a
//! round sees each stream's unpositioned events as a contiguous run starting right after the
//! stream's last positioned one. A round numbers rows in (aggregate type, id, sequence) order, so
//! within the run n gets a lower position than n+1; a run cut by the round's limit continues
//! in the next round, after everything already given. Across streams the order is the order of
//! rounds, and within a round registry events come first: a device key or plan registered
//! before an officer's command that relies on it is committed first, so it is in the same
//! round or an earlier one, and always gets the lower position (a verifier reading the log in
//! order has the key before the signature).
//!
//! One sequencer per database: on PostgreSQL each round takes a transaction-scoped advisory lock
//! and skips the round when another process holds it, so several `saoma serve` processes on one
//! database take turns, and when one dies the others carry on. SQLite is one process's file,
//! and its single writer lock serialises rounds anyway.
//!
//! On PostgreSQL the batched writer's append takes the same lock, waiting for it, and numbers
//! its own events in the same transaction when nothing committed earlier still waits for a
//! position (`0008_append_positioned.sql`); else they join the backlog and a round numbers
//! them. That spares every inspection event a second write (the UPDATE of its position); the
//! sequencer is then left with registry events and whatever the es crates' own insert wrote.

use crate::store::Store;
use std::time::Duration;
use tokio::sync::watch;

/// Most events positioned in one round (one transaction). A full round is followed by the next
/// at once, so this bounds transaction size, not throughput.
pub const ROUND_LIMIT: u64 = 10_000;

/// Longest wait between rounds after the database failed.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Runs rounds every `interval` until `stop`, then one last round. After each round that gave
/// positions, sends the new maximum on `positioned`.
pub async fn run(
    store: Store,
    interval: Duration,
    positioned: watch::Sender<u64>,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "sequencer started"
    );
    let mut backoff = interval;
    loop {
        let wait = match round(&store, &positioned).await {
            Ok(assigned) if assigned == ROUND_LIMIT => {
                backoff = interval;
                Duration::ZERO
            }
            Ok(_) => {
                backoff = interval;
                interval
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "sequencer round failed");
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
            _ = super::stopped(&mut stop) => break,
        }
    }
    // Events committed while the service was draining get their positions now rather than at
    // the next start.
    if let Err(e) = round(&store, &positioned).await {
        tracing::warn!(error = %e, "last sequencer round failed");
    }
    tracing::info!("sequencer stopped");
}

/// One round: assigns positions and updates the metrics. Returns how many it assigned.
pub async fn round(
    store: &Store,
    positioned: &watch::Sender<u64>,
) -> Result<u64, crate::store::StoreError> {
    let assigned = store.assign_positions(ROUND_LIMIT).await?;
    metrics::counter!("saoma_log_positions_assigned_total").increment(assigned);
    // A round that was not full saw no backlog left in its snapshot; only a full one needs a
    // count (and an idle process that is not the leader learns nothing, so reports nothing).
    if assigned == ROUND_LIMIT {
        metrics::gauge!("saoma_log_unpositioned").set(store.unpositioned().await? as f64);
    } else if assigned > 0 {
        metrics::gauge!("saoma_log_unpositioned").set(0.0);
    }
    if assigned > 0 {
        let max = store.max_position().await?;
        metrics::gauge!("saoma_log_max_position").set(max as f64);
        positioned.send_replace(max);
    }
    Ok(assigned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn commit(store: &Store, id: &str, sequence: u64) {
        store
            .insert_raw_event(
                "Inspection",
                id,
                sequence,
                "CodeShown",
                &json!({ "sequence": sequence }),
            )
            .await
            .unwrap();
    }

    async fn wait_until_positioned(store: &Store) {
        for _ in 0..200 {
            if store.unpositioned().await.unwrap() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the sequencer did not position every event");
    }

    #[tokio::test]
    async fn the_sequencer_catches_up_on_events_committed_while_it_was_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("saoma.db"))
            .await
            .unwrap();
        for i in 0..50 {
            for seq in 1..=3 {
                commit(&store, &format!("s{i:02}"), seq).await;
            }
        }
        let (positioned, mut wake) = watch::channel(0);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(
            store.clone(),
            Duration::from_millis(5),
            positioned,
            stopped,
        ));
        wait_until_positioned(&store).await;
        wake.wait_for(|max| *max == 150).await.unwrap();
        // And it keeps up with new commits while it runs.
        commit(&store, "s00", 4).await;
        commit(&store, "new", 1).await;
        wait_until_positioned(&store).await;
        stop.send(true).unwrap();
        task.await.unwrap();

        // Stopped: commits wait for the next start, and are positioned by its first rounds.
        commit(&store, "s01", 4).await;
        assert_eq!(store.unpositioned().await.unwrap(), 1);
        let (positioned, _wake) = watch::channel(0);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(
            store.clone(),
            Duration::from_millis(5),
            positioned,
            stopped,
        ));
        wait_until_positioned(&store).await;
        stop.send(true).unwrap();
        task.await.unwrap();

        let log = store.events_after(0, 1000).await.unwrap();
        let positions: Vec<u64> = log.iter().map(|r| r.position).collect();
        assert_eq!(positions, (1..=153).collect::<Vec<_>>());
        for id in ["s00", "s01", "new"] {
            let seqs: Vec<u64> = log
                .iter()
                .filter(|r| r.aggregate_id == id)
                .map(|r| r.sequence)
                .collect();
            let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, expected, "{id} in log order");
        }
        assert_eq!(
            (log[152].aggregate_id.as_str(), log[152].sequence),
            ("s01", 4)
        );
    }

    #[tokio::test]
    async fn a_stopped_sequencer_positions_what_was_committed_before_the_stop() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("saoma.db"))
            .await
            .unwrap();
        let (positioned, _wake) = watch::channel(0);
        let (stop, stopped) = watch::channel(false);
        // An interval long enough that only the last round can do the work.
        let task = tokio::spawn(run(
            store.clone(),
            Duration::from_secs(60),
            positioned,
            stopped,
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
        commit(&store, "late", 1).await;
        stop.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(store.unpositioned().await.unwrap(), 0);
        assert_eq!(store.max_position().await.unwrap(), 1);
    }
}
