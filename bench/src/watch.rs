//! Watch fan-out: many watchers on ConfigMaps in `default`, one write at a
//! time, and how long until each watcher has seen it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::create::describe;
use crate::objects::configmap;
use crate::server::Server;
use crate::stats::Latencies;

pub struct FanOut {
    pub watchers: usize,
    pub setup: Duration,
    /// Per write: until the last watcher saw it.
    pub all_saw: Latencies,
    /// Per (write, watcher): until that watcher saw it.
    pub per_watcher: Latencies,
    /// Per write: until the POST returned 201.
    pub write_ack: Latencies,
    /// (write, watcher) pairs not seen within 10 s.
    pub missed: u64,
}

#[derive(Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    type_: String,
    object: Object,
}

#[derive(Deserialize)]
struct Object {
    metadata: Meta,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    name: String,
}

pub async fn run(server: &Server, watchers: usize, writes: usize, tag: &str) -> Result<FanOut> {
    let mut writer = server.client().await?;
    let (status, body) = writer
        .get("/api/v1/namespaces/default/configmaps?limit=1")
        .await?;
    ensure!(
        status == StatusCode::OK,
        "LIST configmaps: {}",
        describe(status, &body)
    );
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("no resourceVersion on the list")?
        .to_owned();
    let path = format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}");

    let started = Instant::now();
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<(String, Instant)>();
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<()>>(watchers.max(1));
    let mut tasks = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let (seen_tx, ready_tx) = (seen_tx.clone(), ready_tx.clone());
        let path = path.clone();
        // Handshakes one at a time, so the server's accept path is not the figure.
        let mut client = server.client().await;
        tasks.push(tokio::spawn(async move {
            let resp = match client.as_mut() {
                Ok(c) => c.send(Method::GET, &path, None, None).await,
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            let resp = match resp {
                Ok(r) if r.status() == StatusCode::OK => r,
                Ok(r) => {
                    let _ = ready_tx
                        .send(Err(anyhow::anyhow!("watch answered {}", r.status())))
                        .await;
                    return;
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e)).await;
                    return;
                }
            };
            let _ = ready_tx.send(Ok(())).await;
            let mut body = resp.into_body();
            let mut buf: Vec<u8> = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                let now = Instant::now();
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if let Ok(ev) = serde_json::from_slice::<WatchEvent>(&line) {
                        if ev.type_ == "ADDED"
                            && seen_tx.send((ev.object.metadata.name, now)).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        }));
    }
    drop(ready_tx);
    let mut ready = 0;
    while ready < watchers {
        match tokio::time::timeout(Duration::from_secs(60), ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => return Err(e.context("starting a watcher")),
            Ok(None) | Err(_) => anyhow::bail!("only {ready} of {watchers} watchers started"),
        }
    }
    let setup = started.elapsed();
    eprintln!(
        "  {watchers} watchers established in {:.0} ms",
        setup.as_secs_f64() * 1000.0
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (mut all_saw, mut per_watcher, mut write_ack) = (Vec::new(), Vec::new(), Vec::new());
    let mut missed = 0u64;
    // Write 0 warms up every watcher's path and is not counted.
    for w in 0..=writes {
        let name = format!("watch-{tag}-{w}");
        let t0 = Instant::now();
        let (status, body) = writer
            .post("/api/v1/namespaces/default/configmaps", configmap(&name))
            .await?;
        let ack = t0.elapsed();
        ensure!(
            status == StatusCode::CREATED,
            "watch write: {}",
            describe(status, &body)
        );
        let mut seen: Vec<Duration> = Vec::with_capacity(watchers);
        let mut late: HashMap<String, u64> = HashMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while seen.len() < watchers {
            match tokio::time::timeout_at(deadline, seen_rx.recv()).await {
                Ok(Some((n, at))) if n == name => seen.push(at.saturating_duration_since(t0)),
                Ok(Some((n, _))) => *late.entry(n).or_insert(0) += 1,
                Ok(None) | Err(_) => break,
            }
        }
        let missing = (watchers - seen.len()) as u64;
        if w == 0 {
            continue;
        }
        missed += missing;
        write_ack.push(ack);
        if let Some(max) = seen.iter().max() {
            all_saw.push(*max);
        }
        eprintln!(
            "  write {w}/{writes}: ack {:.2} ms, all {} watchers saw it after {:.2} ms{}",
            ack.as_secs_f64() * 1000.0,
            seen.len(),
            seen.iter().max().copied().unwrap_or_default().as_secs_f64() * 1000.0,
            if missing > 0 {
                format!(" ({missing} never did)")
            } else {
                String::new()
            }
        );
        per_watcher.extend(seen);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in tasks {
        t.abort();
    }
    Ok(FanOut {
        watchers,
        setup,
        all_saw: Latencies::new(all_saw),
        per_watcher: Latencies::new(per_watcher),
        write_ack: Latencies::new(write_ack),
        missed,
    })
}
