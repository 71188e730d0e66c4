//! CPU-bound work spread over all cores (rayon's pool) from async code.
//!
//! A rayon call blocks the thread that makes it until the pool is done. On tokio's
//! multi-thread runtime that thread is one of only a few workers, so the call is wrapped in
//! `block_in_place`: tokio moves the worker's other tasks (NATS and database IO, replies) to
//! another thread meanwhile instead of letting them wait. Elsewhere (a current-thread runtime,
//! as in tests, or no runtime) the call simply runs.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work` (which may use rayon) without stalling the async tasks around it.
pub fn run<R>(work: impl FnOnce() -> R) -> R {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    fn sum_of_squares() -> u64 {
        (1..=1000u64).into_par_iter().map(|n| n * n).sum()
    }

    #[test]
    fn runs_without_a_runtime() {
        assert_eq!(super::run(sum_of_squares), 333_833_500);
    }

    #[tokio::test]
    async fn runs_on_a_current_thread_runtime() {
        assert_eq!(super::run(sum_of_squares), 333_833_500);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn runs_on_a_multi_thread_runtime_while_other_tasks_go_on() {
        let (tx, rx) = std::sync::mpsc::channel();
        // On the runtime's only worker, `run` waits for a message that another task sends:
        // without `block_in_place` that task would never get to run.
        let blocking = tokio::spawn(async move {
            super::run(|| rx.recv_timeout(std::time::Duration::from_secs(5)))
        });
        tokio::task::yield_now().await;
        let sender = tokio::spawn(async move { tx.send(7).unwrap() });
        assert_eq!(blocking.await.unwrap(), Ok(7));
        sender.await.unwrap();
    }
}
