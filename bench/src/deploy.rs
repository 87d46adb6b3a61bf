//! Workload controllers at scale: on hollow nodes, a Deployment scaled from
//! 0 to many replicas (time until every pod is Running, beside the raw API
//! create rate of as many pods in the same run), then a rolling update of
//! it, and the standalone `skiff controller-manager`'s memory with those
//! pods, the nodes and 100 Deployments cached.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{json, Value};

use crate::client::Client;
use crate::create::{describe, Tally};
use crate::schedule::{
    create_namespace, create_pods, start_hollow_nodes, start_pod_watch, wait_registered, Procs,
    Seen,
};
use crate::server::{Helper, Server};
use crate::stats::mib;

/// Where the floor's pods go (deleted before the controllers start).
const FLOOR_NAMESPACE: &str = "floor";
const NAMESPACE: &str = "deploy";
const DEPLOYMENT: &str = "big";

pub struct Config {
    pub nodes: usize,
    pub replicas: usize,
    /// Deployments in all, the big one included (the others have 0 replicas).
    pub deployments: usize,
    pub clients: usize,
    /// For each of the scale-up and the rolling update.
    pub timeout: Duration,
}

pub struct Outcome {
    pub registration: Duration,
    /// The raw API creating `replicas` pods (no scheduler, no controllers).
    pub floor_created: usize,
    pub floor_elapsed: Duration,
    /// From the scale patch until the watch saw every pod Running.
    pub scale_up: Option<Duration>,
    pub running: usize,
    /// From the template patch until the Deployment reported the rollout
    /// complete (all replicas updated and available, no old pods).
    pub rollout: Option<Duration>,
    pub rollout_status: String,
    /// Highest controller-manager RSS seen (after the scale-up and after the rollout).
    pub controller_manager_rss_kib: u64,
    pub controller_manager_cpu: Duration,
    pub scheduler_cpu: Duration,
    pub server_cpu: Duration,
    pub hollow_cpu: Duration,
}

pub async fn run(
    bin: &Path,
    dir: &Path,
    cfg: &Config,
    problems: &mut Vec<String>,
) -> Result<Outcome> {
    let mut procs = Procs::default();
    let r = run_in(bin, dir, cfg, &mut procs).await;
    procs.stop("deploy", problems);
    r
}

async fn run_in(bin: &Path, dir: &Path, cfg: &Config, procs: &mut Procs) -> Result<Outcome> {
    let (server, _) = Server::start(bin, dir).await?;
    let server = procs.server.insert(server);
    let kubeconfig = server.kubeconfig();
    let hollow = procs
        .hollow
        .insert(start_hollow_nodes(bin, dir, cfg.nodes, &kubeconfig)?);
    let (registration, _) = wait_registered(hollow, cfg.nodes).await?;
    let mut c = server.client().await?;

    // The floor: the same number of pods through the raw API, then gone.
    create_namespace(&mut c, FLOOR_NAMESPACE).await?;
    let (Tally { latencies, errors }, floor_elapsed) =
        create_pods(server, FLOOR_NAMESPACE, cfg.replicas, cfg.clients, false).await?;
    ensure!(errors.is_empty(), "floor creates failed: {errors:?}");
    let floor_created = latencies.len();
    eprintln!(
        "  floor: {floor_created} pods created in {:.1} s ({:.0}/s)",
        floor_elapsed.as_secs_f64(),
        floor_created as f64 / floor_elapsed.as_secs_f64()
    );
    let (status, body) = c
        .call(
            hyper::Method::DELETE,
            &format!("/api/v1/namespaces/{FLOOR_NAMESPACE}/pods"),
            None,
            None,
        )
        .await?;
    ensure!(
        status == StatusCode::OK,
        "deleting the floor's pods: {}",
        describe(status, &body)
    );

    create_namespace(&mut c, NAMESPACE).await?;
    for i in 0..cfg.deployments {
        let name = if i == 0 {
            DEPLOYMENT.to_string()
        } else {
            format!("idle-{i:03}")
        };
        let (status, body) = c
            .post(
                &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments"),
                deployment(&name),
            )
            .await?;
        ensure!(
            status == StatusCode::CREATED,
            "creating deployment {name}: {}",
            describe(status, &body)
        );
    }

    let kc = kubeconfig.to_string_lossy().into_owned();
    procs.scheduler = Some(Helper::spawn(
        "scheduler",
        bin,
        &["scheduler", "--kubeconfig", &kc],
        dir.join("scheduler.log"),
    )?);
    let cm = procs.controller_manager.insert(Helper::spawn(
        "controller-manager",
        bin,
        &["controller-manager", "--kubeconfig", &kc],
        dir.join("controller-manager.log"),
    )?);
    let cpu0 = (server.cpu()?, helper_cpu(procs.hollow.as_ref())?);
    // Let the controller manager take its lease and fill its caches.
    wait_for_idle_status(&mut c, "idle-001").await?;

    let seen = Arc::new(Seen::default());
    let watcher = start_pod_watch(server, &mut c, NAMESPACE, &seen).await?;

    eprintln!("  scaling deployment {DEPLOYMENT} 0 -> {}", cfg.replicas);
    let start = Instant::now();
    patch(
        &mut c,
        &format!("{DEPLOYMENT}/scale"),
        json!({"spec": {"replicas": cfg.replicas}}),
    )
    .await?;
    let mut last_print = Instant::now();
    let scale_up = loop {
        let (bound, running) = seen.counts();
        if running >= cfg.replicas {
            break Some(start.elapsed());
        }
        if start.elapsed() > cfg.timeout {
            break None;
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "  after {:.0} s: {bound} bound, {running} Running",
                start.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    watcher.abort();
    let running = seen.counts().1;
    let mut cm_rss = cm.rss_kib().unwrap_or(0);
    eprintln!(
        "  {running} Running after {:.1} s; controller-manager RSS {}",
        start.elapsed().as_secs_f64(),
        mib(cm_rss)
    );

    let (rollout, rollout_status) = if scale_up.is_some() {
        eprintln!("  rolling update of {DEPLOYMENT} (maxSurge 25%)");
        let start = Instant::now();
        patch(
            &mut c,
            DEPLOYMENT,
            json!({"spec": {"template": {"metadata": {"annotations": {"bench/rollout": "2"}}}}}),
        )
        .await?;
        let mut last_print = Instant::now();
        loop {
            let d = get_deployment(&mut c, DEPLOYMENT).await?;
            let st = &d["status"];
            let n = |k: &str| st[k].as_u64().unwrap_or(0) as usize;
            let summary = format!(
                "replicas {} updated {} available {} unavailable {}",
                n("replicas"),
                n("updatedReplicas"),
                n("availableReplicas"),
                n("unavailableReplicas")
            );
            let observed =
                st["observedGeneration"].as_i64() >= d["metadata"]["generation"].as_i64();
            if observed
                && n("updatedReplicas") == cfg.replicas
                && n("replicas") == cfg.replicas
                && n("availableReplicas") == cfg.replicas
            {
                break (Some(start.elapsed()), summary);
            }
            if start.elapsed() > cfg.timeout {
                break (None, summary);
            }
            if last_print.elapsed() >= Duration::from_secs(5) {
                eprintln!("  after {:.0} s: {summary}", start.elapsed().as_secs_f64());
                last_print = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    } else {
        (None, "not started: the scale-up did not finish".into())
    };
    cm_rss = cm_rss.max(cm.rss_kib().unwrap_or(0));
    let hollow_cpu = helper_cpu(procs.hollow.as_ref())?;
    let scheduler_cpu = helper_cpu(procs.scheduler.as_ref())?;
    let cm_cpu = helper_cpu(procs.controller_manager.as_ref())?;
    eprintln!("  rollout: {rollout_status}");
    Ok(Outcome {
        registration,
        floor_created,
        floor_elapsed,
        scale_up,
        running,
        rollout,
        rollout_status,
        controller_manager_rss_kib: cm_rss,
        controller_manager_cpu: cm_cpu,
        scheduler_cpu,
        server_cpu: server.cpu()?.saturating_sub(cpu0.0),
        hollow_cpu: hollow_cpu.saturating_sub(cpu0.1),
    })
}

/// CPU time of a helper process, zero if it never started.
fn helper_cpu(h: Option<&Helper>) -> Result<Duration> {
    h.map(Helper::cpu)
        .transpose()
        .map(Option::unwrap_or_default)
}

/// A Deployment of 0 replicas whose pods request a little CPU and memory.
fn deployment(name: &str) -> Bytes {
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "app",
                    "image": "busybox",
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                }]},
            },
        },
    });
    Bytes::from(body.to_string())
}

async fn get_deployment(c: &mut Client, name: &str) -> Result<Value> {
    let body = c
        .get_ok(
            &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}"),
            "GET deployment",
        )
        .await?;
    Ok(serde_json::from_slice(&body)?)
}

/// Waits until the controller manager has written a Deployment's status:
/// it leads and its caches are filled.
async fn wait_for_idle_status(c: &mut Client, name: &str) -> Result<()> {
    let start = Instant::now();
    loop {
        let d = get_deployment(c, name).await?;
        if d["status"]["observedGeneration"].as_i64().is_some() {
            eprintln!(
                "  controller manager acting after {:.1} s",
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the controller manager wrote no Deployment status within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A merge patch of a deployment (or a subresource: `name/scale`).
async fn patch(c: &mut Client, path: &str, body: Value) -> Result<()> {
    let (status, resp) = c
        .patch(
            &format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{path}"),
            "application/merge-patch+json",
            Bytes::from(body.to_string()),
        )
        .await?;
    ensure!(
        status == StatusCode::OK,
        "PATCH {path}: {}",
        describe(status, &resp)
    );
    Ok(())
}
