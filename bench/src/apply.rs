//! Apply rate: server-side apply of distinct Deployments (each creates its
//! object), then the same applies again (no-ops, which must not write),
//! beside plain creates of the same Deployments in the same run.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use hyper::StatusCode;

use crate::create::{progress, Tally};
use crate::objects::deployment;
use crate::server::Server;

pub struct Rates {
    pub create: f64,
    pub apply: f64,
    pub reapply: f64,
    pub errors: Vec<String>,
}

const APPLY: &str = "application/apply-patch+yaml";

/// `count` Deployments, written by `clients` concurrent clients in three
/// rounds: POST into one namespace, then apply (create) and re-apply
/// (unchanged) into another.
pub async fn run(server: &Server, count: usize, clients: usize) -> Result<Rates> {
    let mut admin = server.client().await?;
    for ns in ["bench-create", "bench-apply"] {
        let body =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        admin
            .post("/api/v1/namespaces", Bytes::from(body.to_string()))
            .await?;
    }
    let mut errors = Vec::new();
    let create = round(server, count, clients, Round::Create, &mut errors).await?;
    let apply = round(server, count, clients, Round::Apply, &mut errors).await?;
    let reapply = round(server, count, clients, Round::Apply, &mut errors).await?;
    Ok(Rates {
        create,
        apply,
        reapply,
        errors,
    })
}

#[derive(Clone, Copy)]
enum Round {
    Create,
    Apply,
}

async fn round(
    server: &Server,
    count: usize,
    clients: usize,
    kind: Round,
    errors: &mut Vec<String>,
) -> Result<f64> {
    let done = Arc::new(AtomicU64::new(0));
    let ticker = progress(
        match kind {
            Round::Create => "create",
            Round::Apply => "apply",
        },
        done.clone(),
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = server.client().await?;
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            for i in (c..count).step_by(clients) {
                let name = format!("web-{i:05}");
                let sent = Instant::now();
                let outcome = match kind {
                    Round::Create => {
                        let body = deployment("bench-create", &name).to_string();
                        client
                            .post(
                                "/apis/apps/v1/namespaces/bench-create/deployments",
                                Bytes::from(body),
                            )
                            .await
                    }
                    Round::Apply => {
                        let body = deployment("bench-apply", &name).to_string();
                        let path = format!(
                            "/apis/apps/v1/namespaces/bench-apply/deployments/{name}?fieldManager=bench"
                        );
                        // The tally counts 201s: an apply that answers 200
                        // (updated or unchanged) counts as done too.
                        client
                            .patch(&path, APPLY, Bytes::from(body))
                            .await
                            .map(|(s, b)| match s {
                                StatusCode::OK => (StatusCode::CREATED, b),
                                other => (other, b),
                            })
                    }
                };
                if !tally.record(outcome, sent, &done) {
                    break;
                }
            }
            tally
        }));
    }
    let tally = Tally::join(tasks).await?;
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    ticker.abort();
    errors.extend(tally.errors.iter().map(|(k, v)| format!("{v} x {k}")));
    Ok(tally.latencies.len() as f64 / elapsed.as_secs_f64())
}
