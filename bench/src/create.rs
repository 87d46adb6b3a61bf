//! Create rate: concurrent clients POSTing 1 KiB ConfigMaps for a fixed time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use hyper::StatusCode;

use crate::objects::configmap;
use crate::server::Server;
use crate::stats::Latencies;

pub struct CreateResult {
    pub created: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
    pub errors: BTreeMap<String, u64>,
}

impl CreateResult {
    pub fn rate(&self) -> f64 {
        self.created as f64 / self.elapsed.as_secs_f64()
    }
}

/// What creating clients saw: latencies of the 201s, and failures by kind.
#[derive(Default)]
pub struct Tally {
    pub latencies: Vec<Duration>,
    pub errors: BTreeMap<String, u64>,
}

impl Tally {
    /// Records one POST sent at `sent`; false when the connection broke
    /// and the client should stop.
    pub fn record(
        &mut self,
        outcome: Result<(StatusCode, Bytes)>,
        sent: Instant,
        done: &AtomicU64,
    ) -> bool {
        match outcome {
            Ok((StatusCode::CREATED, _)) => {
                self.latencies.push(sent.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok((status, body)) => *self.errors.entry(describe(status, &body)).or_insert(0) += 1,
            Err(e) => {
                *self.errors.entry(format!("transport: {e:#}")).or_insert(0) += 1;
                return false;
            }
        }
        true
    }

    /// The tallies of every client task, added up.
    pub async fn join(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Result<Tally> {
        let mut all = Tally::default();
        for t in tasks {
            let one = t.await?;
            all.latencies.extend(one.latencies);
            for (k, v) in one.errors {
                *all.errors.entry(k).or_insert(0) += v;
            }
        }
        Ok(all)
    }
}

pub async fn run(server: &Server, clients: usize, secs: Duration) -> Result<CreateResult> {
    let done = Arc::new(AtomicU64::new(0));
    let ticker = progress("create", done.clone());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = server.client().await?;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut i = 0u64;
            while started.elapsed() < secs {
                let name = format!("bench-{c}-{i}");
                i += 1;
                let t = Instant::now();
                let outcome = client
                    .post("/api/v1/namespaces/default/configmaps", configmap(&name))
                    .await;
                if !tally.record(outcome, t, &done) {
                    break;
                }
            }
            tally
        }));
    }
    let Tally { latencies, errors } = Tally::join(tasks).await?;
    let elapsed = started.elapsed();
    ticker.abort();
    Ok(CreateResult {
        created: latencies.len() as u64,
        elapsed,
        latencies: Latencies::new(latencies),
        errors,
    })
}

/// "409 Conflict: <message>" from a Kubernetes Status body.
pub fn describe(status: StatusCode, body: &Bytes) -> String {
    let message = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned());
    let message: String = message.chars().take(160).collect();
    format!("{status}: {message}")
}

/// Prints `label: N (rate/s)` every two seconds until aborted.
pub fn progress(label: &'static str, done: Arc<AtomicU64>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let mut last = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        tick.tick().await;
        loop {
            tick.tick().await;
            let n = done.load(Ordering::Relaxed);
            eprintln!(
                "  {label}: {n} done after {:.0} s ({:.0}/s in the last 2 s)",
                started.elapsed().as_secs_f64(),
                (n - last) as f64 / 2.0
            );
            last = n;
        }
    })
}
