//! ReplicaSetController and ReplicationManager (`pkg/controller/replicaset`):
//! keep `spec.replicas` active pods matching the selector, adopting matching
//! orphans and releasing pods that stopped matching, and report the counts
//! in `status`. ReplicationControllers run through the same code (upstream
//! wraps them the same way); only the selector form differs.
//!
//! Pods are created in slow-start batches (1, 2, 4, …, at most
//! [`BURST_REPLICAS`] per sync) and deleted in upstream's order (unscheduled,
//! pending, not ready, …, newest first). [`Expectations`] keep a slow watch
//! from causing extra creates or deletes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::expectations::Expectations;
use crate::informer::{key_of, Change, Informer, Kind};
use crate::pod_control::{self, controller_of, PodControl};
use crate::workqueue::WorkQueue;
use crate::Context;

/// At most this many pods are created or deleted in one sync (`BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;
/// The first slow-start batch (`SlowStartInitialBatchSize`).
const SLOW_START_INITIAL_BATCH: usize = 1;
const WORKERS: usize = 5;

/// What differs between a ReplicaSet and a ReplicationController.
pub trait Replicated: Kind + Resource<Scope = k8s_openapi::NamespaceResourceScope> {
    const CONTROLLER: &'static str;
    fn replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// Whether the selector picks these labels; an empty selector picks none.
    fn selects(&self, labels: &BTreeMap<String, String>) -> bool;
    fn status_json(&self) -> Value;
}

impl Replicated for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset-controller";
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        self.spec.as_ref().is_some_and(|s| {
            !client::labels::is_empty(&s.selector) && client::labels::matches(&s.selector, labels)
        })
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

impl Replicated for ReplicationController {
    const CONTROLLER: &'static str = "replication-controller";
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref().and_then(|s| s.template.as_ref())
    }
    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        // The API defaults an RC's selector to its template's labels.
        match self.spec.as_ref().and_then(|s| s.selector.as_ref()) {
            Some(sel) if !sel.is_empty() => client::labels::matches_set(sel, labels),
            _ => false,
        }
    }
    fn status_json(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

struct Controller<K: Replicated> {
    client: kube::Client,
    owners: Informer<K>,
    pods: Informer<Pod>,
    expectations: Expectations,
    pod_control: PodControl,
    queue: WorkQueue,
}

/// Runs the ReplicaSet controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_kind::<ReplicaSet>(ctx, shutdown, "replicaset").await
}

/// Runs the ReplicationController manager until `shutdown`.
pub async fn run_rc(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_kind::<ReplicationController>(ctx, shutdown, "replicationmanager").await
}

async fn run_kind<K: Replicated>(
    ctx: Context,
    shutdown: CancellationToken,
    name: &'static str,
) -> anyhow::Result<()> {
    let c = Arc::new(Controller::<K> {
        client: ctx.client.clone(),
        owners: ctx.informers.get::<K>(),
        pods: ctx.informers.pods(),
        expectations: Expectations::new(),
        pod_control: PodControl::new(ctx.client.clone(), ctx.recorder(K::CONTROLLER)),
        queue: WorkQueue::new(name),
    });
    {
        let c2 = c.clone();
        c.owners.on_change(move |change| {
            let key = key_of(change.object().as_ref());
            if matches!(change, Change::Deleted(_)) {
                c2.expectations.forget(&key);
            }
            c2.queue.add(key);
        });
    }
    {
        let c2 = c.clone();
        c.pods.on_change(move |change| c2.pod_changed(change));
    }
    c.owners.wait_synced().await;
    c.pods.wait_synced().await;
    let c2 = c.clone();
    c.queue
        .clone()
        .run(WORKERS, shutdown, move |key| {
            let c = c2.clone();
            async move { c.sync(&key).await }
        })
        .await;
    Ok(())
}

impl<K: Replicated> Controller<K> {
    /// Owners in the pod's namespace whose selector picks it (for orphans).
    fn selecting(&self, pod: &Pod) -> Vec<String> {
        self.owners
            .list_namespace(&pod.namespace().unwrap_or_default())
            .iter()
            .filter(|o| o.selects(pod.labels()))
            .map(|o| key_of(o.as_ref()))
            .collect()
    }

    fn pod_changed(&self, change: &Change<Pod>) {
        let pod = change.object();
        let pod_key = key_of(pod.as_ref());
        match change {
            Change::Deleted(_) => {
                if let Some(key) = self.owners.controller_key(&pod.metadata) {
                    self.expectations.deletion_observed(&key, &pod_key);
                    self.queue.add(key);
                }
            }
            Change::Applied { old, new } => {
                let owner = self.owners.controller_key(&new.metadata);
                if let Some(key) = &owner {
                    if old.is_none() {
                        self.expectations.creation_observed(key);
                    }
                    // A pod being deleted counts as deleted (`updatePod`).
                    if new.metadata.deletion_timestamp.is_some() {
                        self.expectations.deletion_observed(key, &pod_key);
                    }
                    // Becoming available minReadySeconds after Ready is
                    // scheduled by the sync itself.
                    self.queue.add(key.clone());
                } else if controller_of(&new.metadata).is_none() {
                    for key in self.selecting(new) {
                        self.queue.add(key);
                    }
                }
                // A changed controller or labels wake the old owner too.
                if let Some(old) = old {
                    if let Some(key) = self.owners.controller_key(&old.metadata) {
                        if Some(&key) != owner.as_ref() {
                            self.queue.add(key);
                        }
                    }
                    if old.labels() != new.labels() && controller_of(&new.metadata).is_none() {
                        for key in self.selecting(old) {
                            self.queue.add(key);
                        }
                    }
                }
            }
        }
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let Some(owner) = self.owners.get(key) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let ns = owner.namespace().unwrap_or_default();
        let uid = owner.meta().uid.clone().unwrap_or_default();
        let candidates: Vec<Arc<Pod>> = self
            .pods
            .owned_or_orphaned(&ns, &uid)
            .into_iter()
            .filter(|p| pod_control::is_pod_active(p))
            .collect();
        let deleting = owner.meta().deletion_timestamp.is_some();
        let pods = pod_control::claim_for(&self.client, owner.as_ref(), candidates, |p| {
            owner.selects(p.labels())
        })
        .await?;
        let mut failure = None;
        if self.expectations.satisfied(key) && !deleting {
            if let Err(e) = self.manage_replicas(key, &owner, &pods).await {
                failure = Some(e);
            }
        }
        let requeue = self.update_status(&owner, &pods, failure.as_ref()).await?;
        match failure {
            Some(e) => Err(e),
            None => Ok(requeue),
        }
    }

    /// Creates or deletes pods towards `spec.replicas` (`manageReplicas`).
    async fn manage_replicas(
        &self,
        key: &str,
        owner: &Arc<K>,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<()> {
        let want = owner.replicas().max(0) as usize;
        let ns = owner.namespace().unwrap_or_default();
        let owner_obj = pod_control::object_ref(owner.as_ref());
        if pods.len() < want {
            let Some(template) = owner.template() else {
                return Ok(());
            };
            let n = (want - pods.len()).min(BURST_REPLICAS);
            self.expectations.expect_creations(key, n);
            let owner_ref = pod_control::controller_ref(owner.as_ref());
            let created = slow_start_batch(n, SLOW_START_INITIAL_BATCH, || {
                self.pod_control
                    .create(&ns, template, owner_obj.clone(), owner_ref.clone(), None)
            })
            .await;
            // Creations never attempted or failed will not be observed.
            for _ in created.ok..n {
                self.expectations.creation_observed(key);
            }
            if let Some(e) = created.error {
                if pod_control::is_namespace_terminating(&e) {
                    return Ok(());
                }
                return Err(e.into());
            }
        } else if pods.len() > want {
            let n = (pods.len() - want).min(BURST_REPLICAS);
            let victims = pods_to_delete(pods, n);
            let keys: Vec<String> = victims.iter().map(|p| key_of(p.as_ref())).collect();
            self.expectations.expect_deletions(key, keys);
            let results: Vec<(String, Result<(), kube::Error>)> = stream::iter(victims)
                .map(|p| {
                    let (owner_obj, ns) = (owner_obj.clone(), &ns);
                    async move {
                        let r = self.pod_control.delete(ns, &p.name_any(), owner_obj).await;
                        (key_of(p.as_ref()), r)
                    }
                })
                .buffer_unordered(64)
                .collect()
                .await;
            let mut first_error = None;
            for (pod_key, r) in results {
                if let Err(e) = r {
                    self.expectations.deletion_observed(key, &pod_key);
                    first_error.get_or_insert(e);
                }
            }
            if let Some(e) = first_error {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Writes the counts to `status` when they changed; returns when to
    /// look again for pods about to become available.
    async fn update_status(
        &self,
        owner: &Arc<K>,
        pods: &[Arc<Pod>],
        failure: Option<&anyhow::Error>,
    ) -> anyhow::Result<Option<Duration>> {
        let now = Timestamp::now();
        let min_ready = owner.min_ready_seconds();
        let template_labels = owner
            .template()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let fully_labeled = pods
            .iter()
            .filter(|p| client::labels::matches_set(&template_labels, p.labels()))
            .count();
        let ready = pods.iter().filter(|p| is_pod_ready(p)).count();
        let available = pods
            .iter()
            .filter(|p| is_pod_available(p, min_ready, now))
            .count();
        let old = owner.status_json();
        let mut conditions: Vec<Value> = old["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["type"] != "ReplicaFailure")
            .collect();
        if let Some(e) = failure {
            let reason = if pods.len() < owner.replicas().max(0) as usize {
                "FailedCreate"
            } else {
                "FailedDelete"
            };
            let since = old["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "ReplicaFailure"))
                .map(|c| c["lastTransitionTime"].clone())
                .unwrap_or_else(|| json!(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
            conditions.push(json!({
                "type": "ReplicaFailure",
                "status": "True",
                "reason": reason,
                "message": e.to_string(),
                "lastTransitionTime": since,
            }));
        }
        let mut status = json!({
            "replicas": pods.len(),
            "fullyLabeledReplicas": fully_labeled,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": owner.meta().generation.unwrap_or(0),
        });
        if !conditions.is_empty() {
            status["conditions"] = Value::Array(conditions);
        }
        if !same_status(&old, &status) {
            let api: Api<K> =
                Api::namespaced(self.client.clone(), &owner.namespace().unwrap_or_default());
            let mut patch_status = status.clone();
            // Zero counts are omitted by the API: say them explicitly.
            if patch_status.get("conditions").is_none() {
                patch_status["conditions"] = Value::Null;
            }
            let patch = json!({"status": patch_status});
            api.patch_status(
                &owner.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        }
        Ok(next_available_check(pods, min_ready, now))
    }
}

/// How long until the first Ready pod that is not yet available becomes
/// available, so its owner is synced again then.
fn next_available_check(
    pods: &[Arc<Pod>],
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<Duration> {
    if min_ready_seconds <= 0 {
        return None;
    }
    let min_ready = Duration::from_secs(min_ready_seconds as u64);
    pods.iter()
        .filter_map(|p| match ready_since(p)? {
            // Ready without a transition time never becomes available.
            None => None,
            Some(t) => {
                let ready_for = Duration::try_from(now.duration_since(t)).unwrap_or_default();
                (ready_for < min_ready).then(|| min_ready - ready_for)
            }
        })
        .min()
        .map(|d| d + Duration::from_millis(100))
}

/// Whether the stored status already says `new` (absent counts are 0).
fn same_status(old: &Value, new: &Value) -> bool {
    let n = |v: &Value, k: &str| v[k].as_i64().unwrap_or(0);
    [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .all(|k| n(old, k) == n(new, k))
        && old["conditions"].as_array().map(Vec::len).unwrap_or(0)
            == new["conditions"].as_array().map(Vec::len).unwrap_or(0)
        && old["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(new["conditions"].as_array().into_iter().flatten())
            .all(|(a, b)| {
                a["type"] == b["type"] && a["reason"] == b["reason"] && a["message"] == b["message"]
            })
}

/// What [`slow_start_batch`] did.
pub struct BatchOutcome<E> {
    pub ok: usize,
    pub error: Option<E>,
}

/// Runs `count` calls in batches of 1, 2, 4, … (each batch concurrent),
/// stopping after the first batch with a failure (`slowStartBatch`): a
/// create that fails (quota, admission) fails fast instead of 500 times.
pub async fn slow_start_batch<F, Fut, T, E>(
    count: usize,
    initial: usize,
    call: F,
) -> BatchOutcome<E>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let mut ok = 0;
    let mut batch = initial.min(count);
    while ok < count && batch > 0 {
        let results: Vec<Result<T, E>> = stream::iter(0..batch)
            .map(|_| call())
            .buffer_unordered(batch)
            .collect()
            .await;
        let mut error = None;
        for r in results {
            match r {
                Ok(_) => ok += 1,
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        if error.is_some() {
            return BatchOutcome { ok, error };
        }
        batch = (2 * batch).min(count - ok);
    }
    BatchOutcome { ok, error: None }
}

/// `IsPodReady`.
pub fn is_pod_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the pod's Ready condition last turned True, if it is True.
fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let c = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?;
    Some(c.last_transition_time.as_ref().map(|t| t.0))
}

/// `IsPodAvailable`: Ready for at least `min_ready_seconds`.
pub fn is_pod_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(t)) => now.duration_since(t).as_secs() >= min_ready_seconds as i64,
    }
}

/// The `n` pods to delete first on scale-down (`getPodsToDelete` with
/// `ActivePodsWithRanks`): unscheduled before scheduled; Pending, then
/// Unknown, then Running; not ready before ready; lower
/// `controller.kubernetes.io/pod-deletion-cost` first; pods sharing a node
/// with more of their siblings first; ready for less time first; more restarts
/// first; newer first.
pub fn pods_to_delete(pods: &[Arc<Pod>], n: usize) -> Vec<Arc<Pod>> {
    let mut per_node: HashMap<&str, i64> = HashMap::new();
    for p in pods {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            *per_node.entry(node).or_insert(0) += 1;
        }
    }
    let mut ranked: Vec<(DeletionRank, &Arc<Pod>)> = pods
        .iter()
        .map(|p| (deletion_rank(p, &per_node), p))
        .collect();
    ranked.sort_by_key(|r| r.0);
    ranked.into_iter().take(n).map(|(_, p)| p.clone()).collect()
}

/// Lower sorts first, i.e. is deleted first.
type DeletionRank = (
    u8,
    u8,
    u8,
    i32,
    i64,
    std::cmp::Reverse<Option<Timestamp>>,
    i64,
    std::cmp::Reverse<Option<Timestamp>>,
);

fn deletion_rank(pod: &Pod, per_node: &HashMap<&str, i64>) -> DeletionRank {
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .filter(|n| !n.is_empty());
    let phase = match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    };
    let ready = ready_since(pod);
    let restarts: i64 = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().map(|c| c.restart_count as i64).max())
        .unwrap_or(0);
    (
        u8::from(node.is_some()),
        phase,
        u8::from(ready.is_some()),
        deletion_cost(pod),
        -node.and_then(|n| per_node.get(n)).copied().unwrap_or(0),
        std::cmp::Reverse(ready.flatten()),
        -restarts,
        std::cmp::Reverse(pod.metadata.creation_timestamp.as_ref().map(|t| t.0)),
    )
}

/// The `controller.kubernetes.io/pod-deletion-cost` annotation; absent or
/// not an int32 counts as 0 (`getDeletionCostFromPodAnnotations`).
fn deletion_cost(pod: &Pod) -> i32 {
    pod.annotations()
        .get("controller.kubernetes.io/pod-deletion-cost")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pod(name: &str, node: Option<&str>, phase: &str, ready: bool, created: i64) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(Timestamp::from_second(created).unwrap())),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(String::from),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        })
    }

    fn names(pods: Vec<Arc<Pod>>) -> Vec<String> {
        pods.iter().map(|p| p.name_any()).collect()
    }

    #[test]
    fn scale_down_picks_unscheduled_then_not_ready_then_newest() {
        let pods = vec![
            pod("old-ready", Some("n1"), "Running", true, 100),
            pod("new-ready", Some("n2"), "Running", true, 200),
            pod("not-ready", Some("n3"), "Running", false, 50),
            pod("pending", None, "Pending", false, 10),
        ];
        assert_eq!(
            names(pods_to_delete(&pods, 4)),
            ["pending", "not-ready", "new-ready", "old-ready"]
        );
    }

    #[test]
    fn crowded_nodes_lose_pods_first() {
        let pods = vec![
            pod("alone", Some("n1"), "Running", true, 300),
            pod("shared-a", Some("n2"), "Running", true, 100),
            pod("shared-b", Some("n2"), "Running", true, 100),
        ];
        // "alone" is newer, yet the doubled-up pods go first.
        let victim = &names(pods_to_delete(&pods, 1))[0];
        assert!(victim.starts_with("shared"), "{victim}");
    }

    /// `pod` made Ready at second `ready_at`, with `restarts` restarts.
    fn ready_pod(name: &str, ready_at: i64, restarts: i32) -> Arc<Pod> {
        let mut p = (*pod(name, Some(name), "Running", true, 0)).clone();
        let status = p.status.as_mut().unwrap();
        status.conditions.as_mut().unwrap()[0].last_transition_time =
            Some(Time(Timestamp::from_second(ready_at).unwrap()));
        status.container_statuses = Some(vec![k8s_openapi::api::core::v1::ContainerStatus {
            restart_count: restarts,
            ..Default::default()
        }]);
        Arc::new(p)
    }

    #[test]
    fn scale_down_prefers_recently_ready_then_more_restarts() {
        let pods = vec![
            ready_pod("long-ready", 100, 0),
            ready_pod("just-ready", 900, 0),
            ready_pod("restarting", 100, 5),
        ];
        assert_eq!(
            names(pods_to_delete(&pods, 3)),
            ["just-ready", "restarting", "long-ready"]
        );
    }

    #[test]
    fn lower_deletion_cost_goes_first() {
        let mut cheap = (*ready_pod("cheap", 100, 0)).clone();
        cheap.metadata.annotations = Some(BTreeMap::from([(
            "controller.kubernetes.io/pod-deletion-cost".to_string(),
            "-10".to_string(),
        )]));
        let pods = vec![ready_pod("just-ready", 900, 3), Arc::new(cheap)];
        assert_eq!(names(pods_to_delete(&pods, 1)), ["cheap"]);
    }

    #[test]
    fn available_after_min_ready_seconds() {
        let now = Timestamp::from_second(1000).unwrap();
        let p = ready_pod("p", 990, 0);
        assert!(is_pod_available(&p, 0, now));
        assert!(is_pod_available(&p, 10, now));
        assert!(!is_pod_available(&p, 30, now));
        let not_ready = pod("q", Some("n"), "Running", false, 0);
        assert!(!is_pod_available(&not_ready, 0, now));
        // Look again when the 30 s are over: 20 s from now.
        let next = next_available_check(&[p, not_ready], 30, now).unwrap();
        assert!(
            next >= Duration::from_secs(20) && next < Duration::from_secs(21),
            "{next:?}"
        );
        assert_eq!(next_available_check(&[], 30, now), None);
    }

    #[tokio::test]
    async fn slow_start_last_batch_is_the_remainder() {
        // 10 = 1 + 2 + 4 + 3: the call numbered 8 starts the last batch; its
        // failure still lets the rest of that batch (9 and 10) run.
        let calls = AtomicUsize::new(0);
        let out = slow_start_batch(10, SLOW_START_INITIAL_BATCH, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 8 {
                Err("quota")
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!((calls.load(Ordering::SeqCst), out.ok), (10, 9));
        assert!(out.error.is_some());

        let calls = AtomicUsize::new(0);
        let out = slow_start_batch(BURST_REPLICAS, SLOW_START_INITIAL_BATCH, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<(), ()>(())
        })
        .await;
        assert_eq!((calls.load(Ordering::SeqCst), out.ok), (500, 500));
    }

    #[tokio::test]
    async fn slow_start_doubles_and_stops_on_failure() {
        let calls = AtomicUsize::new(0);
        let out = slow_start_batch(10, 1, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<(), ()>(())
        })
        .await;
        assert_eq!((out.ok, calls.load(Ordering::SeqCst)), (10, 10));

        let calls = AtomicUsize::new(0);
        let out = slow_start_batch(100, 1, || async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n >= 3 {
                Err("quota")
            } else {
                Ok(())
            }
        })
        .await;
        // Batches 1 and 2 succeed; the batch of 4 has failures and is the last.
        assert_eq!(calls.load(Ordering::SeqCst), 7);
        assert_eq!(out.ok, 3);
        assert!(out.error.is_some());
    }
}
