//! Durability: `kill -9` the server under concurrent creates, start it again
//! on the same data dir, and check every acknowledged create survived.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use hyper::StatusCode;

use crate::create::describe;
use crate::objects::configmap;
use crate::server::Server;

pub struct Durability {
    pub attempted: u64,
    pub acknowledged: usize,
    pub present: usize,
    pub lost: Vec<String>,
    /// Creates in flight at the kill that were committed anyway (allowed).
    pub unacknowledged_present: usize,
    pub restart: Duration,
}

pub async fn run(server: &mut Server, clients: usize, secs: Duration) -> Result<Durability> {
    let stop = Arc::new(AtomicBool::new(false));
    let attempted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = server.client().await?;
        let (stop, attempted) = (stop.clone(), attempted.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("dur-{c}-{i}");
                i += 1;
                attempted.fetch_add(1, Ordering::Relaxed);
                match client
                    .post("/api/v1/namespaces/default/configmaps", configmap(&name))
                    .await
                {
                    Ok((StatusCode::CREATED, _)) => acked.push(name),
                    Ok((status, body)) => {
                        eprintln!("  ! create {name}: {}", describe(status, &body))
                    }
                    // The server is gone: the kill happened.
                    Err(_) => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(secs).await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await?);
    }
    eprintln!(
        "  killed with SIGKILL after {} acknowledged creates; starting again",
        acked.len()
    );
    let restart = server.start_again().await?;

    let mut c = server.client().await?;
    let body = c
        .get_ok(
            "/api/v1/namespaces/default/configmaps",
            "LIST configmaps after restart",
        )
        .await?;
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    let present: HashSet<&str> = list["items"]
        .as_array()
        .context("no items")?
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .filter(|n| n.starts_with("dur-"))
        .collect();
    let lost: Vec<String> = acked
        .iter()
        .filter(|n| !present.contains(n.as_str()))
        .cloned()
        .collect();
    let acked_set: HashSet<&str> = acked.iter().map(String::as_str).collect();
    Ok(Durability {
        attempted: attempted.load(Ordering::Relaxed),
        acknowledged: acked.len(),
        present: acked.len() - lost.len(),
        unacknowledged_present: present.iter().filter(|n| !acked_set.contains(*n)).count(),
        lost,
        restart,
    })
}
