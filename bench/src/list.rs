//! LIST of many pods: unpaged, paged with `limit=500`, and as a Table.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use hyper::{Method, StatusCode};
use serde::de::IgnoredAny;
use serde::Deserialize;

use crate::client::{query_escape, Client};
use crate::create::{describe, progress, Tally};
use crate::objects::pod;
use crate::server::Server;
use crate::stats::Latencies;

pub const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

pub struct Populated {
    pub created: usize,
    pub elapsed: Duration,
    pub latencies: Latencies,
    pub errors: BTreeMap<String, u64>,
}

/// Creates `namespaces` namespaces and `pods` pods spread over them, from
/// `clients` concurrent connections.
pub async fn populate(
    server: &Server,
    namespaces: usize,
    pods: usize,
    clients: usize,
) -> Result<Populated> {
    let mut c = server.client().await?;
    for n in 0..namespaces {
        let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns(n)}});
        let (status, body) = c
            .post("/api/v1/namespaces", Bytes::from(body.to_string()))
            .await?;
        ensure!(
            status == StatusCode::CREATED,
            "creating namespace: {}",
            describe(status, &body)
        );
    }
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let ticker = progress("pods", done.clone());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut client = server.client().await?;
        let (next, done) = (next.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= pods {
                    break;
                }
                let namespace = ns(i % namespaces);
                let t = Instant::now();
                let path = format!("/api/v1/namespaces/{namespace}/pods");
                let outcome = client.post(&path, pod(&namespace, i)).await;
                if !tally.record(outcome, t, &done) {
                    break;
                }
            }
            tally
        }));
    }
    let Tally { latencies, errors } = Tally::join(tasks).await?;
    ticker.abort();
    Ok(Populated {
        created: latencies.len(),
        elapsed: started.elapsed(),
        latencies: Latencies::new(latencies),
        errors,
    })
}

fn ns(n: usize) -> String {
    format!("bench-{n}")
}

pub struct Lists {
    pub unpaged: Latencies,
    pub unpaged_bytes: usize,
    pub paged: Latencies,
    pub pages: usize,
    pub table: Latencies,
    pub table_bytes: usize,
    /// Each listed pod as JSON, for the SQLite floor.
    pub items: Vec<Vec<u8>>,
}

#[derive(Deserialize)]
struct Page {
    metadata: PageMeta,
    items: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct PageMeta {
    #[serde(rename = "continue", default)]
    continue_: Option<String>,
}

#[derive(Deserialize)]
struct Table {
    rows: Vec<IgnoredAny>,
}

/// `runs` timed rounds of each LIST form; every round checks it saw `expect` pods.
pub async fn lists(server: &Server, expect: usize, runs: usize) -> Result<Lists> {
    let mut c = server.client().await?;

    // Untimed first read: checks the count and keeps the items for the floor.
    let body = c.get_ok("/api/v1/pods", "LIST pods").await?;
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    let items: Vec<Vec<u8>> = list["items"]
        .as_array()
        .context("no items in PodList")?
        .iter()
        .map(|i| serde_json::to_vec(i).unwrap_or_default())
        .collect();
    ensure!(
        items.len() == expect,
        "LIST returned {} pods, expected {expect}",
        items.len()
    );

    let mut unpaged = Vec::new();
    let mut unpaged_bytes = 0;
    for r in 0..runs {
        let t = Instant::now();
        let (status, body) = c.get("/api/v1/pods").await?;
        unpaged.push(t.elapsed());
        ensure!(
            status == StatusCode::OK,
            "LIST pods: {}",
            describe(status, &body)
        );
        unpaged_bytes = body.len();
        eprintln!(
            "  list unpaged run {}: {:.1} ms, {} bytes; server RSS {}",
            r + 1,
            ms_f(unpaged[r]),
            body.len(),
            rss(server)
        );
    }

    let mut paged = Vec::new();
    let mut pages = 0;
    for r in 0..runs {
        let t = Instant::now();
        let (n, p) = paged_walk(&mut c).await?;
        paged.push(t.elapsed());
        ensure!(
            n == expect,
            "paged LIST returned {n} pods, expected {expect}"
        );
        pages = p;
        eprintln!(
            "  list paged run {}: {:.1} ms over {p} pages; server RSS {}",
            r + 1,
            ms_f(paged[r]),
            rss(server)
        );
    }

    let mut table = Vec::new();
    let mut table_bytes = 0;
    for r in 0..runs {
        let t = Instant::now();
        let (status, body) = c
            .call(Method::GET, "/api/v1/pods", Some(TABLE_ACCEPT), None)
            .await?;
        table.push(t.elapsed());
        ensure!(
            status == StatusCode::OK,
            "LIST pods as Table: {}",
            describe(status, &body)
        );
        if r == 0 {
            let rows = serde_json::from_slice::<Table>(&body)?.rows.len();
            ensure!(rows == expect, "Table had {rows} rows, expected {expect}");
        }
        table_bytes = body.len();
        eprintln!(
            "  list Table run {}: {:.1} ms, {} bytes; server RSS {}",
            r + 1,
            ms_f(table[r]),
            body.len(),
            rss(server)
        );
    }

    Ok(Lists {
        unpaged: Latencies::new(unpaged),
        unpaged_bytes,
        paged: Latencies::new(paged),
        pages,
        table: Latencies::new(table),
        table_bytes,
        items,
    })
}

/// Walks all pods 500 at a time; returns (pods, pages).
async fn paged_walk(c: &mut Client) -> Result<(usize, usize)> {
    let mut token: Option<String> = None;
    let (mut n, mut pages) = (0, 0);
    loop {
        let path = match &token {
            None => "/api/v1/pods?limit=500".to_owned(),
            Some(t) => format!("/api/v1/pods?limit=500&continue={}", query_escape(t)),
        };
        let (status, body) = c.get(&path).await?;
        if status != StatusCode::OK {
            bail!("paged LIST: {}", describe(status, &body));
        }
        let page: Page = serde_json::from_slice(&body)?;
        n += page.items.len();
        pages += 1;
        match page.metadata.continue_.filter(|t| !t.is_empty()) {
            Some(t) => token = Some(t),
            None => return Ok((n, pages)),
        }
    }
}

fn rss(server: &Server) -> String {
    server
        .rss_kib()
        .map(crate::stats::mib)
        .unwrap_or_else(|_| "?".into())
}

fn ms_f(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
