//! Taint eviction (`pkg/controller/tainteviction`): pods on a node with
//! NoExecute taints they do not tolerate are deleted at once; pods that
//! tolerate them only for a while (`tolerationSeconds`) are deleted when the
//! shortest of those times has passed since the pod was first seen under
//! the taints. The timer ends when the taints go or the pod does.
//!
//! Before deleting, the pod gets the `DisruptionTarget` condition (reason
//! `DeletionByTaintManager`), and a `TaintManagerEviction` event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use client::events::{EventType, Recorder};

use crate::informer::{key_of, split_key, Change, Informer, NODE_INDEX};
use crate::pod_control::{delete_params_for_uid, is_conflict, is_not_found};
use crate::workqueue::WorkQueue;
use crate::Context;

const WORKERS: usize = 4;

/// What the taints mean for one pod.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No NoExecute taint, or all tolerated for ever.
    Stay,
    /// An untolerated NoExecute taint.
    EvictNow,
    /// Tolerated for at most this long.
    EvictAfter(Duration),
}

/// Whether `toleration` tolerates `taint` (`Toleration.ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    match toleration.key.as_deref().filter(|k| !k.is_empty()) {
        Some(key) if key != taint.key => return false,
        // An empty key with Exists tolerates everything.
        None if toleration.operator.as_deref() != Some("Exists") => return false,
        _ => {}
    }
    match toleration.operator.as_deref() {
        Some("Exists") => true,
        None | Some("") | Some("Equal") => {
            toleration.value.as_deref().unwrap_or_default()
                == taint.value.as_deref().unwrap_or_default()
        }
        Some(_) => false,
    }
}

/// The verdict for a pod with `tolerations` on a node with `taints`
/// (`getMinTolerationTime` over the NoExecute taints).
pub fn verdict(taints: &[Taint], tolerations: &[Toleration]) -> Verdict {
    let mut min: Option<Duration> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Verdict::EvictNow;
        }
        // With several matching, the one allowing longest applies; no
        // tolerationSeconds means for ever.
        let allowed = matching
            .iter()
            .map(|t| t.toleration_seconds)
            .try_fold(0i64, |acc, s| s.map(|s| acc.max(s)));
        if let Some(secs) = allowed {
            let d = Duration::from_secs(secs.max(0) as u64);
            min = Some(min.map_or(d, |m| m.min(d)));
        }
    }
    match min {
        None => Verdict::Stay,
        Some(d) if d.is_zero() => Verdict::EvictNow,
        Some(d) => Verdict::EvictAfter(d),
    }
}

fn no_execute_taints(node: Option<&Node>) -> Vec<Taint> {
    node.and_then(|n| n.spec.as_ref())
        .and_then(|s| s.taints.as_ref())
        .map(|ts| {
            ts.iter()
                .filter(|t| t.effect == "NoExecute")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nodes: Informer<Node> = ctx.informers.get();
    let pods = ctx.informers.pods();
    let queue = WorkQueue::new("tainteviction");
    nodes.on_change({
        let (queue, pods) = (queue.clone(), pods.clone());
        move |c: &Change<Node>| {
            let now = no_execute_taints(Some(c.object()));
            let before = no_execute_taints(c.old().map(|o| o.as_ref()));
            if matches!(c, Change::Deleted(_)) || now != before {
                let name = key_of(c.object().as_ref());
                for pod in pods.by_index(NODE_INDEX, &name) {
                    queue.add(key_of(pod.as_ref()));
                }
            }
        }
    });
    pods.on_change({
        let queue = queue.clone();
        move |c: &Change<Pod>| {
            let pod = c.object();
            if pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some()
            {
                queue.add(key_of(pod.as_ref()));
            }
        }
    });
    tokio::select! {
        _ = async { tokio::join!(nodes.wait_synced(), pods.wait_synced()) } => {}
        _ = shutdown.cancelled() => return Ok(()),
    }
    let manager = Arc::new(TaintManager {
        nodes,
        pods,
        client: ctx.client.clone(),
        recorder: ctx.recorder("taint-eviction-controller"),
        scheduled: Mutex::new(HashMap::new()),
    });
    queue
        .run(WORKERS, shutdown, move |key| {
            let manager = manager.clone();
            async move { manager.sync_pod(&key).await }
        })
        .await;
    Ok(())
}

struct TaintManager {
    nodes: Informer<Node>,
    pods: Informer<Pod>,
    client: kube::Client,
    recorder: Recorder,
    /// Pod key → (uid, when it was first seen under tolerated NoExecute
    /// taints): the start of its timer.
    scheduled: Mutex<HashMap<String, (String, Timestamp)>>,
}

impl TaintManager {
    /// Starts, keeps or cancels the pod's timer; deletes it when due.
    async fn sync_pod(&self, key: &str) -> Result<Option<Duration>, kube::Error> {
        let pod = self.pods.get(key).filter(|p| {
            p.metadata.deletion_timestamp.is_none()
                && !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded") | Some("Failed")
                )
        });
        let Some(pod) = pod else {
            self.cancel(key, None);
            return Ok(None);
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
        let taints = no_execute_taints(node_name.and_then(|n| self.nodes.get(&n)).as_deref());
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let wait = match verdict(&taints, &tolerations) {
            Verdict::Stay => {
                self.cancel(key, Some(&pod));
                return Ok(None);
            }
            Verdict::EvictNow => Duration::ZERO,
            Verdict::EvictAfter(d) => {
                let start = {
                    let mut s = self.scheduled.lock().unwrap_or_else(|e| e.into_inner());
                    let entry = s
                        .entry(key.to_string())
                        .or_insert_with(|| (uid.clone(), Timestamp::now()));
                    if entry.0 != uid {
                        *entry = (uid.clone(), Timestamp::now());
                    }
                    entry.1
                };
                let elapsed = Timestamp::now().duration_since(start).unsigned_abs();
                d.saturating_sub(elapsed)
            }
        };
        if !wait.is_zero() {
            return Ok(Some(wait));
        }
        self.evict(&pod).await?;
        self.scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(None)
    }

    /// Drops a pending timer; a live pod gets the `TaintManagerEviction`
    /// cancellation event.
    fn cancel(&self, key: &str, pod: Option<&Pod>) {
        let had = self
            .scheduled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
            .is_some();
        if let (true, Some(pod)) = (had, pod) {
            self.recorder.record(
                client::events::reference(pod),
                EventType::Normal,
                "TaintManagerEviction",
                "Cancelling",
                format!("Cancelling deletion of Pod {key}"),
            );
        }
    }

    /// Marks the pod a disruption target, then deletes it.
    async fn evict(&self, pod: &Pod) -> Result<(), kube::Error> {
        let key = key_of(pod);
        let (ns, name) = split_key(&key);
        self.recorder.record(
            client::events::reference(pod),
            EventType::Normal,
            "TaintManagerEviction",
            "Marking",
            format!("Marking for deletion Pod {key}"),
        );
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let patch = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "status": { "conditions": [disruption_target(Timestamp::now())] },
        });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) if is_conflict(&e) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(pod = %key, "evicting pod for a NoExecute taint");
        match api
            .delete(name, &delete_params_for_uid(pod.metadata.uid.clone()))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) || is_conflict(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn disruption_target(now: Timestamp) -> serde_json::Value {
    json!({
        "type": "DisruptionTarget",
        "status": "True",
        "reason": "DeletionByTaintManager",
        "message": "Taint manager: deleting due to NoExecute taint",
        "lastTransitionTime": Time(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(str::to_string),
            effect: effect.into(),
            time_added: None,
        }
    }

    fn tol(
        key: &str,
        op: &str,
        value: Option<&str>,
        effect: &str,
        secs: Option<i64>,
    ) -> Toleration {
        Toleration {
            key: (!key.is_empty()).then(|| key.to_string()),
            operator: Some(op.into()),
            value: value.map(str::to_string),
            effect: (!effect.is_empty()).then(|| effect.to_string()),
            toleration_seconds: secs,
        }
    }

    const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

    #[test]
    fn toleration_matching() {
        let t = taint("k", Some("v"), "NoExecute");
        assert!(tolerates(
            &tol("k", "Equal", Some("v"), "NoExecute", None),
            &t
        ));
        assert!(tolerates(&tol("k", "Exists", None, "", None), &t));
        assert!(
            tolerates(&tol("", "Exists", None, "", None), &t),
            "wildcard"
        );
        assert!(!tolerates(
            &tol("k", "Equal", Some("w"), "NoExecute", None),
            &t
        ));
        assert!(!tolerates(
            &tol("k", "Exists", None, "NoSchedule", None),
            &t
        ));
        assert!(!tolerates(&tol("j", "Exists", None, "", None), &t));
    }

    #[test]
    fn verdicts() {
        let taints = [
            taint(UNREACHABLE, None, "NoExecute"),
            taint("soft", None, "NoSchedule"),
        ];
        assert_eq!(verdict(&taints, &[]), Verdict::EvictNow);
        assert_eq!(verdict(&taints[1..], &[]), Verdict::Stay, "NoSchedule only");
        let for_ever = tol(UNREACHABLE, "Exists", None, "NoExecute", None);
        assert_eq!(
            verdict(&taints, std::slice::from_ref(&for_ever)),
            Verdict::Stay
        );
        let five = tol(UNREACHABLE, "Exists", None, "NoExecute", Some(5));
        assert_eq!(
            verdict(&taints, std::slice::from_ref(&five)),
            Verdict::EvictAfter(Duration::from_secs(5))
        );
        // Several matching: the longest allowance; for ever wins.
        let three_hundred = tol(UNREACHABLE, "Exists", None, "NoExecute", Some(300));
        assert_eq!(
            verdict(&taints, &[five.clone(), three_hundred.clone()]),
            Verdict::EvictAfter(Duration::from_secs(300))
        );
        assert_eq!(verdict(&taints, &[five.clone(), for_ever]), Verdict::Stay);
        // Several taints: the shortest time; one untolerated evicts at once.
        let two = [
            taint(UNREACHABLE, None, "NoExecute"),
            taint("x", None, "NoExecute"),
        ];
        let x = tol("x", "Exists", None, "NoExecute", Some(60));
        assert_eq!(
            verdict(&two, &[three_hundred, x]),
            Verdict::EvictAfter(Duration::from_secs(60))
        );
        assert_eq!(verdict(&two, &[five]), Verdict::EvictNow);
        let zero = tol(UNREACHABLE, "Exists", None, "NoExecute", Some(0));
        assert_eq!(verdict(&taints, &[zero]), Verdict::EvictNow);
    }
}
