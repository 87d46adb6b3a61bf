//! Pod garbage collection (`pkg/controller/podgc`), every
//! [`gc_check_period`]:
//! - terminated pods (Succeeded / Failed) beyond
//!   `--terminated-pod-gc-threshold` are deleted, oldest first;
//! - terminating pods on a node that is out of service (tainted
//!   `node.kubernetes.io/out-of-service` and not Ready) are force-deleted;
//! - pods bound to a node that does not exist — still missing after a
//!   quarantine and a live read — are force-deleted, marked a
//!   `DisruptionTarget` (reason `DeletionByPodGC`) first;
//! - terminating pods that were never scheduled are force-deleted.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::informer::{key_of, split_key, Informer};
use crate::pod_control::{is_conflict, is_not_found};
use crate::Context;

const TAINT_OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

/// Upstream checks every 20 s; a short grace period (tests) checks sooner.
fn gc_check_period(grace: Duration) -> Duration {
    (grace / 4).clamp(Duration::from_secs(1), Duration::from_secs(20))
}

pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nodes: Informer<Node> = ctx.informers.get();
    let pods = ctx.informers.pods();
    tokio::select! {
        _ = async { tokio::join!(nodes.wait_synced(), pods.wait_synced()) } => {}
        _ = shutdown.cancelled() => return Ok(()),
    }
    let mut gc = PodGc {
        nodes,
        pods,
        client: ctx.client.clone(),
        threshold: ctx.config.terminated_pod_gc_threshold,
        // Upstream's quarantine is 40 s, the default grace period.
        quarantine: ctx.config.node_monitor_grace_period,
        missing_since: HashMap::new(),
    };
    let mut tick = tokio::time::interval(gc_check_period(ctx.config.node_monitor_grace_period));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return Ok(()),
        }
        gc.gc().await;
    }
}

struct PodGc {
    nodes: Informer<Node>,
    pods: Informer<Pod>,
    client: kube::Client,
    threshold: usize,
    quarantine: Duration,
    /// Node name → when pods were first found bound to it while it was missing.
    missing_since: HashMap<String, Instant>,
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn is_terminated(pod: &Pod) -> bool {
    matches!(phase(pod), Some("Succeeded") | Some("Failed"))
}

fn node_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// The terminated pods to delete so that at most `threshold` stay: the
/// oldest ones (`gcTerminated`). A threshold of 0 keeps them all.
pub fn terminated_to_delete(pods: &[&Pod], threshold: usize) -> Vec<String> {
    let mut terminated: Vec<&&Pod> = pods.iter().filter(|p| is_terminated(p)).collect();
    if threshold == 0 || terminated.len() <= threshold {
        return Vec::new();
    }
    terminated.sort_by_key(|p| {
        (
            p.metadata.creation_timestamp.as_ref().map(|t| t.0),
            key_of(**p),
        )
    });
    let excess = terminated.len() - threshold;
    terminated[..excess].iter().map(|p| key_of(**p)).collect()
}

fn is_out_of_service(node: &Node) -> bool {
    let tainted = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|ts| {
            ts.iter()
                .any(|t| t.key == TAINT_OUT_OF_SERVICE && t.effect == "NoExecute")
        });
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    tainted && !ready
}

impl PodGc {
    async fn gc(&mut self) {
        let pods = self.pods.list();
        let all: Vec<&Pod> = pods.iter().map(|p| p.as_ref()).collect();
        for key in terminated_to_delete(&all, self.threshold) {
            self.delete(&key, None, false).await;
        }
        self.gc_terminating(&all).await;
        self.gc_orphaned(&all).await;
        for pod in all
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && node_name(p).is_none())
        {
            self.delete(&key_of(*pod), pod.metadata.uid.clone(), true)
                .await;
        }
    }

    /// `gcTerminating`: terminating pods on out-of-service nodes.
    async fn gc_terminating(&self, pods: &[&Pod]) {
        for pod in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
        {
            let out = node_name(pod)
                .and_then(|n| self.nodes.get(n))
                .is_some_and(|n| is_out_of_service(&n));
            if out {
                self.delete(&key_of(*pod), pod.metadata.uid.clone(), true)
                    .await;
            }
        }
    }

    /// `gcOrphaned`: pods bound to nodes that are gone.
    async fn gc_orphaned(&mut self, pods: &[&Pod]) {
        let missing: HashSet<&str> = pods
            .iter()
            .filter_map(|p| node_name(p))
            .filter(|n| self.nodes.get(n).is_none())
            .collect();
        self.missing_since
            .retain(|n, _| missing.contains(n.as_str()));
        let now = Instant::now();
        let mut gone = HashSet::new();
        for name in missing {
            let since = *self.missing_since.entry(name.to_string()).or_insert(now);
            if now.duration_since(since) < self.quarantine {
                continue;
            }
            // The cache may lag: only a live read settles it.
            let api: Api<Node> = Api::all(self.client.clone());
            match api.get_opt(name).await {
                Ok(None) => {
                    gone.insert(name.to_string());
                }
                Ok(Some(_)) => {
                    self.missing_since.remove(name);
                }
                Err(e) => tracing::debug!(node = name, error = %e, "reading node failed"),
            }
        }
        for pod in pods
            .iter()
            .filter(|p| node_name(p).is_some_and(|n| gone.contains(n)))
        {
            tracing::info!(pod = %key_of(*pod), node = node_name(pod), "deleting pod of a deleted node");
            self.mark_disruption_target(pod).await;
            self.delete(&key_of(*pod), pod.metadata.uid.clone(), true)
                .await;
        }
    }

    async fn mark_disruption_target(&self, pod: &Pod) {
        if is_terminated(pod) {
            return;
        }
        let key = key_of(pod);
        let (ns, name) = split_key(&key);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let patch = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "status": { "conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByPodGC",
                "message": "PodGC: node no longer exists",
                "lastTransitionTime": Time(Timestamp::now()),
            }]},
        });
        if let Err(e) = api
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            tracing::debug!(pod = %key, error = %e, "marking a disruption target failed");
        }
    }

    /// Deletes a pod, at once (`force`: grace 0) or gracefully.
    async fn delete(&self, key: &str, uid: Option<String>, force: bool) {
        let (ns, name) = split_key(key);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let params = DeleteParams {
            grace_period_seconds: force.then_some(0),
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(name, &params).await {
            Ok(_) => tracing::debug!(pod = key, force, "pod garbage collected"),
            Err(e) if is_not_found(&e) || is_conflict(&e) => {}
            Err(e) => tracing::info!(pod = key, error = %e, "pod garbage collection failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;

    fn pod(name: &str, phase: &str, created: &str) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("default".into());
        p.metadata.creation_timestamp = Some(Time(created.parse().unwrap()));
        p.status = Some(PodStatus {
            phase: Some(phase.into()),
            ..Default::default()
        });
        p
    }

    #[test]
    fn oldest_terminated_pods_beyond_the_threshold_go() {
        let pods = [
            pod("new-done", "Succeeded", "2025-01-03T00:00:00Z"),
            pod("running", "Running", "2025-01-01T00:00:00Z"),
            pod("old-failed", "Failed", "2025-01-01T00:00:00Z"),
            pod("mid-done", "Succeeded", "2025-01-02T00:00:00Z"),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        assert_eq!(
            terminated_to_delete(&refs, 1),
            ["default/old-failed", "default/mid-done"]
        );
        assert!(terminated_to_delete(&refs, 3).is_empty());
        assert!(terminated_to_delete(&refs, 0).is_empty(), "0 keeps all");
    }

    #[test]
    fn check_period_follows_the_grace_period() {
        assert_eq!(
            gc_check_period(Duration::from_secs(40)),
            Duration::from_secs(10)
        );
        assert_eq!(
            gc_check_period(Duration::from_secs(8)),
            Duration::from_secs(2)
        );
        assert_eq!(
            gc_check_period(Duration::from_secs(600)),
            Duration::from_secs(20)
        );
    }
}
