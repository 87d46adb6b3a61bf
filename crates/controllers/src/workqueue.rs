//! The work queue every controller drains, with client-go's guarantees:
//! a key queued many times is processed once; a key is never processed by
//! two workers at once (added while in process, it runs again after);
//! failures are retried with per-key exponential backoff; and a reconcile
//! may ask to run again after a delay (`AddAfter`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// First retry delay after a failure; doubles per consecutive failure.
const BASE_DELAY: Duration = Duration::from_millis(5);
/// The longest retry delay.
const MAX_DELAY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    /// Queued and not yet taken (dedups `queue`).
    dirty: HashSet<String>,
    /// Taken by a worker and not yet done.
    processing: HashSet<String>,
    /// Consecutive failures per key, for backoff.
    failures: HashMap<String, u32>,
    /// Delayed adds: key → when (the earliest wins).
    waiting: HashMap<String, Instant>,
}

/// A deduplicating, rate-limited queue of object keys. Cheap to clone.
#[derive(Clone)]
pub struct WorkQueue {
    name: &'static str,
    state: Arc<Mutex<State>>,
    ready: Arc<Notify>,
    timer: Arc<Notify>,
}

impl WorkQueue {
    pub fn new(name: &'static str) -> WorkQueue {
        WorkQueue {
            name,
            state: Default::default(),
            ready: Arc::new(Notify::new()),
            timer: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` now.
    pub fn add(&self, key: impl Into<String>) {
        let key = key.into();
        let mut s = self.lock();
        if !s.dirty.insert(key.clone()) {
            return;
        }
        if !s.processing.contains(&key) {
            s.queue.push_back(key);
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Queues `key` after `delay` (at once if `delay` is zero); of several
    /// delayed adds of one key, the earliest wins.
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        let key = key.into();
        let at = Instant::now() + delay;
        let mut s = self.lock();
        let e = s.waiting.entry(key).or_insert(at);
        if at < *e {
            *e = at;
        }
        drop(s);
        self.timer.notify_one();
    }

    /// Queues `key` after its backoff, which doubles per call until `forget`.
    pub fn add_rate_limited(&self, key: impl Into<String>) {
        let key = key.into();
        let n = {
            let mut s = self.lock();
            let n = s.failures.entry(key.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let delay = BASE_DELAY
            .saturating_mul(1u32 << (n - 1).min(20))
            .min(MAX_DELAY);
        self.add_after(key, delay);
    }

    /// Resets the backoff of `key`.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// How many keys are queued (not counting delayed ones).
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn take(&self) -> String {
        loop {
            let notified = self.ready.notified();
            {
                let mut s = self.lock();
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    return key;
                }
            }
            notified.await;
        }
    }

    fn done(&self, key: &str) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.to_string());
            drop(s);
            self.ready.notify_one();
        }
    }

    /// Moves due delayed adds into the queue, forever.
    async fn timers(self) {
        loop {
            let notified = self.timer.notified();
            let next = {
                let mut s = self.lock();
                let now = Instant::now();
                let due: Vec<String> = s
                    .waiting
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in &due {
                    s.waiting.remove(k);
                }
                let next = s.waiting.values().min().copied();
                drop(s);
                for k in due {
                    self.add(k);
                }
                next
            };
            match next {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Runs `reconcile` on queued keys with `workers` concurrent workers until
    /// `shutdown`. `Ok(Some(d))` runs the key again after `d`; an error is
    /// logged and retried with backoff.
    pub async fn run<F, Fut, E>(self, workers: usize, shutdown: CancellationToken, reconcile: F)
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Option<Duration>, E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let reconcile = Arc::new(reconcile);
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(self.clone().timers());
        for _ in 0..workers.max(1) {
            let (queue, reconcile) = (self.clone(), reconcile.clone());
            tasks.spawn(async move {
                loop {
                    let key = queue.take().await;
                    match reconcile(key.clone()).await {
                        Ok(again) => {
                            queue.forget(&key);
                            if let Some(d) = again {
                                queue.add_after(key.clone(), d);
                            }
                        }
                        Err(e) => {
                            tracing::info!(queue = queue.name, key = %key, error = %e, "sync failed; retrying");
                            queue.add_rate_limited(key.clone());
                        }
                    }
                    queue.done(&key);
                }
            });
        }
        shutdown.cancelled().await;
        tasks.abort_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_key_added_many_times_runs_once() {
        let q = WorkQueue::new("t");
        for _ in 0..5 {
            q.add("a");
        }
        q.add("b");
        assert_eq!(q.len(), 2);
    }

    #[tokio::test]
    async fn a_key_added_while_processing_runs_again_after() {
        let q = WorkQueue::new("t");
        q.add("a");
        let k = q.take().await;
        q.add("a");
        assert_eq!(q.len(), 0, "not queued while in process");
        q.done(&k);
        assert_eq!(q.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_retry_with_backoff_and_delays_requeue() {
        let q = WorkQueue::new("t");
        let runs = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let task = {
            let (q, runs, shutdown) = (q.clone(), runs.clone(), shutdown.clone());
            tokio::spawn(q.run(2, shutdown, move |_key| {
                let runs = runs.clone();
                async move {
                    let n = runs.fetch_add(1, Ordering::SeqCst);
                    if n < 3 {
                        Err("boom")
                    } else if n == 3 {
                        Ok(Some(Duration::from_secs(10)))
                    } else {
                        Ok(None)
                    }
                }
            }))
        };
        q.add("a");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "three failures then success"
        );
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 5, "the requested rerun");
        shutdown.cancel();
        task.await.unwrap();
    }
}
