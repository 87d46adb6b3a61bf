//! One probe worker: runs one probe of one container on its period and turns
//! single outcomes into a result through the success/failure thresholds, as
//! upstream's prober `worker.doProbe` does.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::{ProbeKind, ProbeResult};

/// What one run of a probe said (upstream's `probe.Result` plus its output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success(String),
    /// Counts as success; recorded as a `ProbeWarning` event (e.g. an HTTP
    /// redirect to another host that was not followed).
    Warning(String),
    Failure(String),
    /// The probe could not be run at all; the result is thrown away.
    Error(String),
}

/// Runs one probe once. The prober applies the probe's timeout itself.
pub trait Prober: Send + Sync {
    fn probe(&self) -> BoxFuture<'_, Outcome>;
}

/// Timing and thresholds of one probe, with upstream's defaults applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn from_probe(p: &k8s_openapi::api::core::v1::Probe) -> Timing {
        let secs = |v: Option<i32>, default: i32| -> u64 {
            match v {
                Some(v) if v > 0 => v as u64,
                _ => default as u64,
            }
        };
        let count = |v: Option<i32>, default: u32| -> u32 {
            match v {
                Some(v) if v > 0 => v as u32,
                _ => default,
            }
        };
        Timing {
            initial_delay: Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64),
            period: Duration::from_secs(secs(p.period_seconds, 10)),
            timeout: Duration::from_secs(secs(p.timeout_seconds, 1)),
            success_threshold: count(p.success_threshold, 1),
            failure_threshold: count(p.failure_threshold, 3),
        }
    }
}

/// The threshold state machine: the current result only changes after
/// `success_threshold` successes or `failure_threshold` failures in a row.
#[derive(Debug)]
pub struct Thresholds {
    success_threshold: u32,
    failure_threshold: u32,
    current: ProbeResult,
    last: Option<ProbeResult>,
    run: u32,
}

impl Thresholds {
    pub fn new(kind: ProbeKind, timing: &Timing) -> Thresholds {
        Thresholds {
            success_threshold: timing.success_threshold,
            failure_threshold: timing.failure_threshold,
            current: initial_result(kind),
            last: None,
            run: 0,
        }
    }

    pub fn current(&self) -> ProbeResult {
        self.current
    }

    /// Feeds one probe result; returns the new result when it changed.
    pub fn observe(&mut self, result: ProbeResult) -> Option<ProbeResult> {
        if self.last == Some(result) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(result);
            self.run = 1;
        }
        let needed = match result {
            ProbeResult::Success => self.success_threshold,
            ProbeResult::Failure => self.failure_threshold,
            ProbeResult::Unknown => return None,
        };
        if self.run < needed || self.current == result {
            return None;
        }
        self.current = result;
        Some(result)
    }
}

/// Upstream's initial values: liveness passes until proven otherwise,
/// readiness fails until it passes, startup is unknown.
pub fn initial_result(kind: ProbeKind) -> ProbeResult {
    match kind {
        ProbeKind::Liveness => ProbeResult::Success,
        ProbeKind::Readiness => ProbeResult::Failure,
        ProbeKind::Startup => ProbeResult::Unknown,
    }
}

/// Records an event: type, reason, message.
pub type EventSink = Box<dyn Fn(client::events::EventType, &str, String) + Send + Sync>;

/// Where a worker reports: result changes and events.
pub struct Sink {
    pub result: Box<dyn Fn(ProbeResult) + Send + Sync>,
    pub event: EventSink,
}

/// Runs a probe until cancelled. Liveness and readiness wait for `started`
/// (the startup probe passed, or there is none); the startup worker sets it.
/// Liveness and startup stop after reporting a failure: the container is
/// restarted, and a new container gets new workers.
pub struct Worker {
    pub kind: ProbeKind,
    pub timing: Timing,
    pub prober: Arc<dyn Prober>,
    /// When the container started (initialDelaySeconds counts from here).
    pub started_at: Instant,
    /// Whether the container's startup probe passed (true if it has none).
    pub started: watch::Receiver<bool>,
    /// Set by the startup worker when its probe passes.
    pub started_tx: Option<watch::Sender<bool>>,
    pub sink: Sink,
}

pub async fn run(w: Worker, cancel: CancellationToken) {
    let Worker {
        kind,
        timing,
        prober,
        started_at,
        mut started,
        started_tx,
        sink,
    } = w;
    let mut state = Thresholds::new(kind, &timing);
    tokio::select! {
        _ = cancel.cancelled() => return,
        _ = tokio::time::sleep_until(started_at + timing.initial_delay) => {}
    }
    let mut ticker = tokio::time::interval(timing.period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if kind != ProbeKind::Startup && !*started.borrow() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = started.wait_for(|s| *s) => if r.is_err() { return },
            }
            // Probe right away once the startup probe passed.
            ticker.reset();
        }
        let outcome = tokio::select! {
            _ = cancel.cancelled() => return,
            o = prober.probe() => o,
        };
        let result = match outcome {
            Outcome::Success(_) => ProbeResult::Success,
            Outcome::Warning(output) => {
                let msg = format!("{} probe warning: {output}", kind.name());
                (sink.event)(client::events::EventType::Warning, "ProbeWarning", msg);
                ProbeResult::Success
            }
            Outcome::Failure(output) => {
                let msg = format!("{} probe failed: {output}", kind.name());
                (sink.event)(client::events::EventType::Warning, "Unhealthy", msg);
                ProbeResult::Failure
            }
            Outcome::Error(err) => {
                let msg = format!("{} probe errored: {err}", kind.name());
                (sink.event)(client::events::EventType::Warning, "Unhealthy", msg);
                continue;
            }
        };
        if let Some(changed) = state.observe(result) {
            (sink.result)(changed);
            match (kind, changed) {
                (ProbeKind::Liveness | ProbeKind::Startup, ProbeResult::Failure) => return,
                (ProbeKind::Startup, ProbeResult::Success) => {
                    if let Some(tx) = &started_tx {
                        tx.send_replace(true);
                    }
                    return;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    fn timing(delay: u64, period: u64, success: u32, failure: u32) -> Timing {
        Timing {
            initial_delay: Duration::from_secs(delay),
            period: Duration::from_secs(period),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn defaults_follow_upstream() {
        let t = Timing::from_probe(&Default::default());
        assert_eq!(t, timing(0, 10, 1, 3));
    }

    #[test]
    fn thresholds_need_runs_in_a_row() {
        use ProbeResult::*;
        let mut t = Thresholds::new(ProbeKind::Readiness, &timing(0, 1, 2, 3));
        assert_eq!(t.current(), Failure);
        assert_eq!(t.observe(Success), None);
        assert_eq!(t.observe(Failure), None);
        assert_eq!(t.observe(Success), None);
        assert_eq!(t.observe(Success), Some(Success));
        assert_eq!(t.observe(Success), None);
        assert_eq!(t.observe(Failure), None);
        assert_eq!(t.observe(Failure), None);
        assert_eq!(t.observe(Failure), Some(Failure));
        let mut l = Thresholds::new(ProbeKind::Liveness, &timing(0, 1, 1, 1));
        assert_eq!(l.observe(Success), None);
        assert_eq!(l.observe(Failure), Some(Failure));
    }

    /// Plays back scripted outcomes and records when each probe ran.
    struct Script {
        outcomes: Mutex<VecDeque<Outcome>>,
        calls: Mutex<Vec<Duration>>,
        t0: Instant,
    }

    impl Prober for Script {
        fn probe(&self) -> BoxFuture<'_, Outcome> {
            self.calls.lock().unwrap().push(Instant::now() - self.t0);
            let o = self.outcomes.lock().unwrap().pop_front();
            Box::pin(async move { o.unwrap_or(Outcome::Success(String::new())) })
        }
    }

    type Log = Arc<Mutex<Vec<(Duration, String)>>>;

    fn script(outcomes: Vec<Outcome>) -> Arc<Script> {
        Arc::new(Script {
            outcomes: Mutex::new(outcomes.into()),
            calls: Default::default(),
            t0: Instant::now(),
        })
    }

    fn sink(log: &Log, t0: Instant) -> Sink {
        let (l1, l2) = (log.clone(), log.clone());
        Sink {
            result: Box::new(move |r| {
                l1.lock()
                    .unwrap()
                    .push((Instant::now() - t0, format!("{r:?}")))
            }),
            event: Box::new(move |_, reason, msg| {
                l2.lock()
                    .unwrap()
                    .push((Instant::now() - t0, format!("{reason}: {msg}")))
            }),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn fail() -> Outcome {
        Outcome::Failure("HTTP probe failed with statuscode: 500".into())
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_fails_after_threshold_and_stops() {
        let p = script(vec![
            Outcome::Success(String::new()),
            fail(),
            Outcome::Success(String::new()),
            fail(),
            fail(),
            fail(),
        ]);
        let log = Log::default();
        let (_tx, rx) = watch::channel(true);
        let t0 = Instant::now();
        let task = tokio::spawn(run(
            Worker {
                kind: ProbeKind::Liveness,
                timing: timing(5, 10, 1, 3),
                prober: p.clone(),
                started_at: t0,
                started: rx,
                started_tx: None,
                sink: sink(&log, t0),
            },
            CancellationToken::new(),
        ));
        tokio::time::timeout(secs(1000), task)
            .await
            .unwrap()
            .unwrap();
        let calls = p.calls.lock().unwrap().clone();
        assert_eq!(calls, [5, 15, 25, 35, 45, 55].map(secs));
        let log = log.lock().unwrap().clone();
        let fail = "Unhealthy: Liveness probe failed: HTTP probe failed with statuscode: 500";
        assert_eq!(
            log,
            vec![
                (secs(15), fail.to_string()),
                (secs(35), fail.to_string()),
                (secs(45), fail.to_string()),
                (secs(55), fail.to_string()),
                (secs(55), "Failure".to_string()),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn readiness_waits_for_startup_and_reports_changes() {
        let startup = script(vec![fail(), Outcome::Success(String::new())]);
        let ready = script(vec![
            Outcome::Success(String::new()),
            fail(),
            Outcome::Success(String::new()),
        ]);
        let t0 = Instant::now();
        let (started_tx, started_rx) = watch::channel(false);
        let (slog, rlog) = (Log::default(), Log::default());
        let cancel = CancellationToken::new();
        let s = tokio::spawn(run(
            Worker {
                kind: ProbeKind::Startup,
                timing: timing(0, 3, 1, 10),
                prober: startup.clone(),
                started_at: t0,
                started: started_rx.clone(),
                started_tx: Some(started_tx),
                sink: sink(&slog, t0),
            },
            cancel.clone(),
        ));
        let r = tokio::spawn(run(
            Worker {
                kind: ProbeKind::Readiness,
                timing: timing(1, 10, 1, 1),
                prober: ready.clone(),
                started_at: t0,
                started: started_rx,
                started_tx: None,
                sink: sink(&rlog, t0),
            },
            cancel.clone(),
        ));
        tokio::time::timeout(secs(100), s).await.unwrap().unwrap();
        tokio::time::sleep(secs(31)).await;
        cancel.cancel();
        r.await.unwrap();
        assert_eq!(*startup.calls.lock().unwrap(), [0, 3].map(secs));
        // Readiness first runs when startup passes (3 s), then every 10 s.
        assert_eq!(*ready.calls.lock().unwrap(), [3, 13, 23, 33].map(secs));
        let rlog = rlog.lock().unwrap().clone();
        assert_eq!(rlog[0], (secs(3), "Success".into()));
        assert_eq!(rlog[2], (secs(13), "Failure".into()));
        assert_eq!(rlog[3], (secs(23), "Success".into()));
        assert_eq!(rlog.len(), 4);
        let slog = slog.lock().unwrap().clone();
        assert_eq!(slog.last().unwrap(), &(secs(3), "Success".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_thrown_away_and_cancel_stops() {
        let p = script(vec![
            Outcome::Error("boom".into()),
            Outcome::Error("boom".into()),
            Outcome::Error("boom".into()),
        ]);
        let log = Log::default();
        let (_tx, rx) = watch::channel(true);
        let t0 = Instant::now();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(
            Worker {
                kind: ProbeKind::Liveness,
                timing: timing(0, 1, 1, 1),
                prober: p.clone(),
                started_at: t0,
                started: rx,
                started_tx: None,
                sink: sink(&log, t0),
            },
            cancel.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        cancel.cancel();
        task.await.unwrap();
        let log = log.lock().unwrap().clone();
        assert_eq!(log.len(), 3);
        assert!(log
            .iter()
            .all(|(_, m)| m == "Unhealthy: Liveness probe errored: boom"));
    }
}
