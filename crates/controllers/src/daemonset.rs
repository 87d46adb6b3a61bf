//! DaemonSetsController (`pkg/controller/daemon`): one pod per eligible node.
//!
//! A node is eligible when the DaemonSet's pod would fit it: its
//! `nodeSelector` and required node affinity match, and every NoSchedule or
//! NoExecute taint is tolerated — counting the tolerations Kubernetes adds to
//! every daemon pod (not-ready, unreachable, pressure, unschedulable). A node
//! whose only untolerated taints are NoSchedule keeps a pod it already has.
//! Pods are created unbound with a required node affinity on the node's
//! `metadata.name`, so the scheduler places them; failed pods are deleted and
//! recreated. Template changes roll out under `RollingUpdate`
//! (`maxUnavailable`, `maxSurge`) or wait for deletions under `OnDelete`;
//! each template is kept as a ControllerRevision.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodTemplateSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::expectations::Expectations;
use crate::history::{self, CONTROLLER_REVISION_HASH_LABEL};
use crate::informer::{key_of, Change, Informer};
use crate::pod_control::{self, controller_of, PodControl};
use crate::replicaset::{is_pod_available, is_pod_ready};
use crate::workqueue::WorkQueue;
use crate::Context;

const CONTROLLER: &str = "daemonset-controller";
const WORKERS: usize = 2;
/// The deprecated label upstream still puts on daemon pods.
const POD_TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

struct Controller {
    client: kube::Client,
    sets: Informer<DaemonSet>,
    nodes: Informer<Node>,
    pods: Informer<Pod>,
    revisions: Informer<ControllerRevision>,
    expectations: Expectations,
    pod_control: PodControl,
    queue: WorkQueue,
}

/// Runs the DaemonSet controller until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let c = Arc::new(Controller {
        client: ctx.client.clone(),
        sets: ctx.informers.get::<DaemonSet>(),
        nodes: ctx.informers.get::<Node>(),
        pods: ctx.informers.pods(),
        revisions: ctx.informers.get::<ControllerRevision>(),
        expectations: Expectations::new(),
        pod_control: PodControl::new(ctx.client.clone(), ctx.recorder(CONTROLLER)),
        queue: WorkQueue::new("daemonset"),
    });
    {
        let c2 = c.clone();
        c.sets.on_change(move |change| {
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
    {
        let c2 = c.clone();
        c.nodes.on_change(move |change| {
            if node_changed_for_daemons(change) {
                c2.sets
                    .list()
                    .iter()
                    .for_each(|s| c2.queue.add(key_of(s.as_ref())));
            }
        });
    }
    {
        let c2 = c.clone();
        c.revisions.on_change(move |change| {
            let rev = change.object();
            if let Some(key) = c2.sets.controller_key(&rev.metadata) {
                c2.queue.add(key);
            }
        });
    }
    c.sets.wait_synced().await;
    c.nodes.wait_synced().await;
    c.pods.wait_synced().await;
    c.revisions.wait_synced().await;
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

/// Whether a node change can change which nodes run daemons: added,
/// deleted, or new labels, taints or spec.
fn node_changed_for_daemons(change: &Change<Node>) -> bool {
    match change {
        Change::Deleted(_) => true,
        Change::Applied { old: None, .. } => true,
        Change::Applied { old: Some(o), new } => o.labels() != new.labels() || o.spec != new.spec,
    }
}

/// The pods of a DaemonSet grouped by the node they are (or will be) on.
type PodsByNode = HashMap<String, Vec<Arc<Pod>>>;

/// What one sync decided to create and delete.
#[derive(Default)]
struct Plan {
    create_on: Vec<String>,
    delete: Vec<Arc<Pod>>,
}

impl Controller {
    fn pod_changed(&self, change: &Change<Pod>) {
        let pod = change.object();
        let pod_key = key_of(pod.as_ref());
        match change {
            Change::Deleted(_) => {
                if let Some(key) = self.sets.controller_key(&pod.metadata) {
                    self.expectations.deletion_observed(&key, &pod_key);
                    self.queue.add(key);
                }
            }
            Change::Applied { old, new } => {
                if let Some(key) = self.sets.controller_key(&new.metadata) {
                    if old.is_none() {
                        self.expectations.creation_observed(&key);
                    }
                    if new.metadata.deletion_timestamp.is_some() {
                        self.expectations.deletion_observed(&key, &pod_key);
                    }
                    self.queue.add(key.clone());
                    if let Some(ds) = self.sets.get(&key) {
                        let min_ready = min_ready_seconds(&ds);
                        if min_ready > 0 {
                            self.queue
                                .add_after(key, Duration::from_secs(min_ready as u64 + 1));
                        }
                    }
                } else if controller_of(&new.metadata).is_none() {
                    for ds in self
                        .sets
                        .list_namespace(&new.namespace().unwrap_or_default())
                    {
                        if selects(&ds, new.labels()) {
                            self.queue.add(key_of(ds.as_ref()));
                        }
                    }
                }
            }
        }
    }

    async fn sync(&self, key: &str) -> anyhow::Result<Option<Duration>> {
        let Some(ds) = self.sets.get(key) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        let ns = ds.namespace().unwrap_or_default();
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let deleting = ds.metadata.deletion_timestamp.is_some();
        let owner_ref = pod_control::controller_ref(ds.as_ref());
        let Some(template) = ds.spec.as_ref().map(|s| &s.template) else {
            return Ok(None);
        };
        let candidates = self.pods.owned_or_orphaned(&ns, &uid);
        let pods = pod_control::claim_for(&self.client, ds.as_ref(), candidates, |p| {
            selects(&ds, p.labels())
        })
        .await?;
        let rev_candidates = self.revisions.owned_or_orphaned(&ns, &uid);
        let revisions = pod_control::claim_for(&self.client, ds.as_ref(), rev_candidates, |r| {
            selects(&ds, r.labels())
        })
        .await?;
        if deleting {
            return Ok(None);
        }
        let collision_count = ds
            .status
            .as_ref()
            .and_then(|s| s.collision_count)
            .unwrap_or(0);
        let revs_api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &ns);
        let revs = history::sync_revisions(
            &revs_api,
            &owner_ref,
            revisions,
            template,
            &history::history_annotations(&ds.metadata),
            None,
            collision_count,
        )
        .await?;
        let hash = revs
            .update
            .labels()
            .get(CONTROLLER_REVISION_HASH_LABEL)
            .cloned()
            .unwrap_or_default();
        let nodes = self.nodes.list();
        let by_node = pods_by_node(&pods);

        if self.expectations.satisfied(key) {
            let mut plan = manage(&ds, &nodes, &by_node);
            if plan.create_on.is_empty() && plan.delete.is_empty() && is_rolling_update(&ds) {
                plan = self.rolling_update(&ds, &nodes, &by_node, &hash);
            }
            self.execute(key, &ds, &plan, &hash).await?;
        }
        self.cleanup_history(&ds, &revs, &pods).await?;
        self.update_status(&ds, &nodes, &by_node, &hash, revs.collision_count)
            .await?;
        let min_ready = min_ready_seconds(&ds);
        Ok((min_ready > 0).then(|| Duration::from_secs(1)))
    }

    /// `rollingUpdate`: replaces old pods node by node, keeping at most
    /// `maxUnavailable` nodes without an available pod, or (with `maxSurge`)
    /// starting the new pod beside the old one on up to `maxSurge` nodes.
    fn rolling_update(
        &self,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        by_node: &PodsByNode,
        hash: &str,
    ) -> Plan {
        let now = Timestamp::now();
        let min_ready = min_ready_seconds(ds);
        let available = |p: &Pod| is_pod_available(p, min_ready, now);
        let desired: Vec<&Arc<Node>> = nodes
            .iter()
            .filter(|n| node_should_run_daemon_pod(n, ds).0)
            .collect();
        let (max_surge, max_unavailable) = surge_and_unavailable(ds, desired.len());
        let mut plan = Plan::default();
        let mut unavailable = 0;
        let mut surging = 0;
        let mut old_only = Vec::new();
        for node in &desired {
            let name = node.name_any();
            let pods: Vec<&Arc<Pod>> = by_node
                .get(&name)
                .into_iter()
                .flatten()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let new = pods.iter().find(|p| pod_hash(p) == Some(hash));
            let old = pods.iter().find(|p| pod_hash(p) != Some(hash));
            match (old, new) {
                (None, None) => unavailable += 1,
                (None, Some(n)) => {
                    if !available(n) {
                        unavailable += 1
                    }
                }
                (Some(o), Some(n)) => {
                    surging += 1;
                    if available(n) {
                        plan.delete.push((*o).clone());
                    } else if !available(o) {
                        unavailable += 1;
                    }
                }
                (Some(o), None) => {
                    if available(o) {
                        old_only.push((name, (*o).clone()));
                    } else {
                        // Already unavailable: replacing it costs nothing.
                        unavailable += 1;
                        if max_surge > 0 {
                            plan.create_on.push(name);
                        } else {
                            plan.delete.push((*o).clone());
                        }
                    }
                }
            }
        }
        for (node, old) in old_only {
            if max_surge > 0 {
                if surging < max_surge {
                    surging += 1;
                    plan.create_on.push(node);
                }
            } else if unavailable < max_unavailable {
                unavailable += 1;
                plan.delete.push(old);
            }
        }
        plan
    }

    /// Creates and deletes what `plan` says, awaiting the changes in the cache.
    async fn execute(
        &self,
        key: &str,
        ds: &DaemonSet,
        plan: &Plan,
        hash: &str,
    ) -> anyhow::Result<()> {
        if plan.create_on.is_empty() && plan.delete.is_empty() {
            return Ok(());
        }
        let ns = ds.namespace().unwrap_or_default();
        let owner_obj = pod_control::object_ref(ds);
        let owner_ref = pod_control::controller_ref(ds);
        // Creations matter most to await: a second create makes a second pod.
        if plan.create_on.is_empty() {
            self.expectations
                .expect_deletions(key, plan.delete.iter().map(|p| key_of(p.as_ref())));
        } else {
            self.expectations
                .expect_creations(key, plan.create_on.len());
        }
        for p in plan.delete.iter().filter(|p| is_finished(p)) {
            self.pod_control.recorder().record(
                owner_obj.clone(),
                client::events::EventType::Warning,
                "FailedDaemonPod",
                "Delete",
                format!(
                    "Found failed daemon pod {} on node {}, will try to kill it",
                    key_of(p.as_ref()),
                    target_node(p).unwrap_or_default()
                ),
            );
        }
        let mut first_error: Option<kube::Error> = None;
        let deletes: Vec<(String, Result<(), kube::Error>)> = stream::iter(plan.delete.clone())
            .map(|p| {
                let (owner_obj, ns) = (owner_obj.clone(), &ns);
                async move {
                    let r = self.pod_control.delete(ns, &p.name_any(), owner_obj).await;
                    (key_of(p.as_ref()), r)
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (pod_key, r) in deletes {
            if let Err(e) = r {
                self.expectations.deletion_observed(key, &pod_key);
                first_error.get_or_insert(e);
            }
        }
        let Some(template) = ds.spec.as_ref().map(|s| &s.template) else {
            return Ok(());
        };
        let generation = ds.metadata.generation.unwrap_or(0);
        let creates: Vec<Result<Pod, kube::Error>> = stream::iter(plan.create_on.clone())
            .map(|node| {
                let t = daemon_pod_template(template, &node, hash, generation);
                let (owner_obj, owner_ref, ns) = (owner_obj.clone(), owner_ref.clone(), &ns);
                async move {
                    self.pod_control
                        .create(ns, &t, owner_obj, owner_ref, None)
                        .await
                }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for r in creates {
            if let Err(e) = r {
                self.expectations.creation_observed(key);
                if !pod_control::is_namespace_terminating(&e) {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Deletes revisions beyond `revisionHistoryLimit` that no pod runs.
    async fn cleanup_history(
        &self,
        ds: &DaemonSet,
        revs: &history::Revisions,
        pods: &[Arc<Pod>],
    ) -> anyhow::Result<()> {
        let limit = ds
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(history::DEFAULT_REVISION_HISTORY_LIMIT);
        let hashes: HashSet<&str> = pods.iter().filter_map(|p| pod_hash(p)).collect();
        let mut live: HashSet<String> = revs
            .all
            .iter()
            .filter(|r| {
                r.labels()
                    .get(CONTROLLER_REVISION_HASH_LABEL)
                    .is_some_and(|h| hashes.contains(h.as_str()))
            })
            .map(|r| r.name_any())
            .collect();
        live.insert(revs.update.name_any());
        let api: Api<ControllerRevision> =
            Api::namespaced(self.client.clone(), &ds.namespace().unwrap_or_default());
        history::truncate_history(&api, &revs.all, &live, limit).await?;
        Ok(())
    }

    /// `updateDaemonSetStatus`: the per-node counts, written when changed.
    async fn update_status(
        &self,
        ds: &DaemonSet,
        nodes: &[Arc<Node>],
        by_node: &PodsByNode,
        hash: &str,
        collision_count: i32,
    ) -> anyhow::Result<()> {
        let status = daemon_status(ds, nodes, by_node, hash, collision_count, Timestamp::now());
        let old = serde_json::to_value(&ds.status).unwrap_or_default();
        let same = status
            .as_object()
            .into_iter()
            .flatten()
            .all(|(k, v)| old[k].as_i64().unwrap_or(0) == v.as_i64().unwrap_or(0));
        if same {
            return Ok(());
        }
        let api: Api<DaemonSet> =
            Api::namespaced(self.client.clone(), &ds.namespace().unwrap_or_default());
        api.patch_status(
            &ds.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await?;
        Ok(())
    }
}

/// The status counts of a DaemonSet over its nodes.
fn daemon_status(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    by_node: &PodsByNode,
    hash: &str,
    collision_count: i32,
    now: Timestamp,
) -> serde_json::Value {
    let min_ready = min_ready_seconds(ds);
    let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
    let (mut ready, mut available, mut updated) = (0, 0, 0);
    for node in nodes {
        let (should_run, _) = node_should_run_daemon_pod(node, ds);
        let mut pods: Vec<&Arc<Pod>> = by_node
            .get(&node.name_any())
            .into_iter()
            .flatten()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let scheduled = !pods.is_empty();
        if should_run {
            desired += 1;
            if scheduled {
                current += 1;
                pods.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
                let oldest = pods[0];
                if is_pod_ready(oldest) {
                    ready += 1;
                    if is_pod_available(oldest, min_ready, now) {
                        available += 1;
                    }
                }
                if pods.iter().any(|p| pod_hash(p) == Some(hash)) {
                    updated += 1;
                }
            }
        } else if scheduled {
            misscheduled += 1;
        }
    }
    let mut status = json!({
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "numberAvailable": available,
        "updatedNumberScheduled": updated,
        "numberUnavailable": (desired - available).max(0),
        "observedGeneration": ds.metadata.generation.unwrap_or(0),
    });
    if collision_count > 0 {
        status["collisionCount"] = json!(collision_count);
    }
    status
}

/// `manage`: per node, the pod to create or the pods to delete so that each
/// eligible node runs exactly one healthy daemon pod and no other node runs
/// any. Pods on nodes that are gone are the pod GC's to delete.
fn manage(ds: &DaemonSet, nodes: &[Arc<Node>], by_node: &PodsByNode) -> Plan {
    let mut plan = Plan::default();
    for node in nodes {
        let name = node.name_any();
        let (should_run, should_continue) = node_should_run_daemon_pod(node, ds);
        let pods: Vec<&Arc<Pod>> = by_node
            .get(&name)
            .into_iter()
            .flatten()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        if should_continue {
            let (finished, mut running): (Vec<&Arc<Pod>>, Vec<&Arc<Pod>>) =
                pods.into_iter().partition(|p| is_finished(p));
            // A failed pod is replaced: deleted now, recreated next sync.
            plan.delete.extend(finished.into_iter().cloned());
            if running.is_empty() && should_run && plan_deletes_nothing_on(&plan, &name) {
                plan.create_on.push(name);
            } else if running.len() > 1 {
                // Keep the oldest; a surge pod is the rolling update's to retire.
                if !is_rolling_update_with_surge(ds) {
                    running.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
                    plan.delete
                        .extend(running[1..].iter().map(|p| (*p).clone()));
                }
            }
        } else {
            plan.delete.extend(pods.into_iter().cloned());
        }
    }
    plan
}

fn plan_deletes_nothing_on(plan: &Plan, node: &str) -> bool {
    !plan
        .delete
        .iter()
        .any(|p| target_node(p).as_deref() == Some(node))
}

fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed") | Some("Succeeded")
    )
}

fn is_rolling_update(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

fn is_rolling_update_with_surge(ds: &DaemonSet) -> bool {
    is_rolling_update(ds) && surge_and_unavailable(ds, 1).0 > 0
}

/// `maxSurge` and `maxUnavailable` scaled to `desired` nodes (percentages
/// round up); with both zero, one node at a time may be unavailable.
fn surge_and_unavailable(ds: &DaemonSet, desired: usize) -> (usize, usize) {
    let ru = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref());
    let scaled = |v: Option<&IntOrString>, default: i32| match v {
        None => default.max(0) as usize,
        Some(IntOrString::Int(i)) => (*i).max(0) as usize,
        Some(IntOrString::String(s)) => {
            let pct: usize = s.trim_end_matches('%').parse().unwrap_or(0);
            (pct * desired).div_ceil(100)
        }
    };
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), 0);
    let unavailable = scaled(ru.and_then(|r| r.max_unavailable.as_ref()), 1);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn min_ready_seconds(ds: &DaemonSet) -> i32 {
    ds.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// Whether the DaemonSet's selector picks these labels (an empty one picks none).
fn selects(ds: &DaemonSet, labels: &BTreeMap<String, String>) -> bool {
    ds.spec.as_ref().is_some_and(|s| {
        !client::labels::is_empty(&s.selector) && client::labels::matches(&s.selector, labels)
    })
}

fn pod_hash(pod: &Pod) -> Option<&str> {
    pod.labels()
        .get(CONTROLLER_REVISION_HASH_LABEL)
        .map(String::as_str)
}

/// `GetTargetNodeName`: the node a pod is bound to, or the one its
/// `metadata.name` node affinity pins it to while unscheduled.
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|f| f.key == "metadata.name" && f.operator == "In")
        .and_then(|f| f.values.as_ref()?.first().cloned())
}

fn pods_by_node(pods: &[Arc<Pod>]) -> PodsByNode {
    let mut m: PodsByNode = HashMap::new();
    for p in pods {
        if let Some(node) = target_node(p) {
            m.entry(node).or_default().push(p.clone());
        }
    }
    m
}

/// The pod template for `node`: the DaemonSet's template with the daemon
/// tolerations, pinned to the node, labelled with the revision hash.
fn daemon_pod_template(
    template: &PodTemplateSpec,
    node: &str,
    hash: &str,
    generation: i64,
) -> PodTemplateSpec {
    let mut t = template.clone();
    let meta = t.metadata.get_or_insert_with(Default::default);
    let labels = meta.labels.get_or_insert_with(Default::default);
    labels.insert(CONTROLLER_REVISION_HASH_LABEL.into(), hash.into());
    labels.insert(POD_TEMPLATE_GENERATION_LABEL.into(), generation.to_string());
    let spec = t.spec.get_or_insert_with(Default::default);
    add_daemon_tolerations(spec);
    replace_node_name_affinity(spec, node);
    t
}

/// `AddOrUpdateDaemonPodTolerations`: daemon pods survive node conditions
/// and cordons that would evict or keep out other pods.
pub fn add_daemon_tolerations(spec: &mut k8s_openapi::api::core::v1::PodSpec) {
    let mut wanted = vec![
        (TAINT_NOT_READY, "NoExecute"),
        (TAINT_UNREACHABLE, "NoExecute"),
        (TAINT_DISK_PRESSURE, "NoSchedule"),
        (TAINT_MEMORY_PRESSURE, "NoSchedule"),
        (TAINT_PID_PRESSURE, "NoSchedule"),
        (TAINT_UNSCHEDULABLE, "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push((TAINT_NETWORK_UNAVAILABLE, "NoSchedule"));
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        // The same toleration already there is replaced, not repeated.
        match tolerations.iter_mut().find(|x| same_toleration(x, &t)) {
            Some(x) => *x = t,
            None => tolerations.push(t),
        }
    }
}

/// `Toleration.MatchToleration`: the same key, operator, value and effect.
fn same_toleration(a: &Toleration, b: &Toleration) -> bool {
    let op = |t: &Toleration| t.operator.clone().unwrap_or_else(|| "Equal".into());
    a.key == b.key && op(a) == op(b) && a.value == b.value && a.effect == b.effect
}

/// `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity
/// becomes one term selecting `metadata.name` = `node`; the rest of the
/// affinity is kept.
pub fn replace_node_name_affinity(spec: &mut k8s_openapi::api::core::v1::PodSpec, node: &str) {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.into()]),
        }]),
        match_expressions: None,
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let na = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
}

/// `NodeShouldRunDaemonPod`: (should run a pod there, may keep one that is
/// there). A nodeName, selector or affinity mismatch or an untolerated
/// NoExecute taint answers (false, false); untolerated NoSchedule taints
/// alone answer (false, true).
pub fn node_should_run_daemon_pod(node: &Node, ds: &DaemonSet) -> (bool, bool) {
    let Some(mut spec) = ds.spec.as_ref().and_then(|s| s.template.spec.clone()) else {
        return (false, false);
    };
    let name = node.name_any();
    if spec
        .node_name
        .as_ref()
        .is_some_and(|n| !n.is_empty() && *n != name)
    {
        return (false, false);
    }
    add_daemon_tolerations(&mut spec);
    if !fits_node_selector_and_affinity(&spec, node) {
        return (false, false);
    }
    let tolerations = spec.tolerations.unwrap_or_default();
    let untolerated: Vec<&Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .filter(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
        .collect();
    if untolerated.iter().any(|t| t.effect == "NoExecute") {
        return (false, false);
    }
    (untolerated.is_empty(), true)
}

/// `Toleration.ToleratesTaint`.
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    if tol
        .effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    let key = tol.key.as_deref().unwrap_or_default();
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match tol.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            tol.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// The pod's `nodeSelector` (every pair) and required node affinity (any
/// term) match the node.
fn fits_node_selector_and_affinity(
    spec: &k8s_openapi::api::core::v1::PodSpec,
    node: &Node,
) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    if let Some(sel) = &spec.node_selector {
        if !client::labels::matches_set(sel, labels) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(sel) => sel
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, labels, &node.name_any())),
    }
}

/// A node selector term: all its expressions and fields hold; an empty
/// term matches nothing.
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, node: &str) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            r.key == "metadata.name" && requirement_matches(r, Some(node)) && r.operator != "Exists"
        })
}

fn requirement_matches(r: &NodeSelectorRequirement, have: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match (r.operator.as_str(), have) {
        ("In", Some(v)) => values.iter().any(|x| x == v),
        ("In", None) => false,
        ("NotIn", Some(v)) => !values.iter().any(|x| x == v),
        ("NotIn", None) => true,
        ("Exists", h) => h.is_some(),
        ("DoesNotExist", h) => h.is_none(),
        ("Gt", Some(v)) => {
            matches!((number(v), values.first().and_then(|x| number(x))), (Some(a), Some(b)) if a > b)
        }
        ("Lt", Some(v)) => {
            matches!((number(v), values.first().and_then(|x| number(x))), (Some(a), Some(b)) if a < b)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSetSpec;
    use k8s_openapi::api::core::v1::{NodeSpec, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(k, e)| Taint {
                            key: k.to_string(),
                            effect: e.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn ds(spec: PodSpec) -> DaemonSet {
        DaemonSet {
            spec: Some(DaemonSetSpec {
                template: PodTemplateSpec {
                    metadata: None,
                    spec: Some(spec),
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn node_selector_and_affinity_decide_eligibility() {
        let d = ds(PodSpec {
            node_selector: Some([("disk".to_string(), "ssd".to_string())].into()),
            ..Default::default()
        });
        assert_eq!(
            node_should_run_daemon_pod(&node("a", &[("disk", "ssd")], &[]), &d),
            (true, true)
        );
        assert_eq!(
            node_should_run_daemon_pod(&node("b", &[], &[]), &d),
            (false, false)
        );

        let mut spec = PodSpec::default();
        replace_node_name_affinity(&mut spec, "a");
        let pinned = ds(spec);
        assert_eq!(
            node_should_run_daemon_pod(&node("a", &[], &[]), &pinned),
            (true, true)
        );
        assert_eq!(
            node_should_run_daemon_pod(&node("b", &[], &[]), &pinned),
            (false, false)
        );

        let spec = PodSpec {
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![NodeSelectorRequirement {
                                key: "rank".into(),
                                operator: "Gt".into(),
                                values: Some(vec!["3".into()]),
                            }]),
                            match_fields: None,
                        }],
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ranked = ds(spec);
        assert!(node_should_run_daemon_pod(&node("a", &[("rank", "4")], &[]), &ranked).0);
        assert!(!node_should_run_daemon_pod(&node("a", &[("rank", "3")], &[]), &ranked).0);
    }

    #[test]
    fn taints_keep_daemons_out_unless_tolerated_or_added_automatically() {
        let plain = ds(PodSpec::default());
        assert_eq!(
            node_should_run_daemon_pod(&node("a", &[], &[("dedicated", "NoSchedule")]), &plain),
            (false, true),
            "NoSchedule keeps new pods out but not running ones"
        );
        assert_eq!(
            node_should_run_daemon_pod(&node("a", &[], &[("dedicated", "NoExecute")]), &plain),
            (false, false)
        );
        assert_eq!(
            node_should_run_daemon_pod(
                &node("a", &[], &[("dedicated", "PreferNoSchedule")]),
                &plain
            ),
            (true, true)
        );
        // The daemon tolerations: cordoned, not-ready and pressured nodes still run daemons.
        for (key, effect) in [
            (TAINT_UNSCHEDULABLE, "NoSchedule"),
            (TAINT_NOT_READY, "NoExecute"),
            (TAINT_UNREACHABLE, "NoExecute"),
            (TAINT_DISK_PRESSURE, "NoSchedule"),
        ] {
            assert_eq!(
                node_should_run_daemon_pod(&node("a", &[], &[(key, effect)]), &plain),
                (true, true),
                "{key}"
            );
        }
        let net = node("a", &[], &[(TAINT_NETWORK_UNAVAILABLE, "NoSchedule")]);
        assert!(!node_should_run_daemon_pod(&net, &plain).0);
        let host = ds(PodSpec {
            host_network: Some(true),
            ..Default::default()
        });
        assert!(
            node_should_run_daemon_pod(&net, &host).0,
            "hostNetwork tolerates network-unavailable"
        );

        let tolerant = ds(PodSpec {
            tolerations: Some(vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert_eq!(
            node_should_run_daemon_pod(&node("a", &[], &[("dedicated", "NoExecute")]), &tolerant),
            (true, true)
        );
    }

    #[test]
    fn daemon_tolerations_are_not_repeated() {
        let mut spec = PodSpec::default();
        add_daemon_tolerations(&mut spec);
        add_daemon_tolerations(&mut spec);
        assert_eq!(spec.tolerations.as_ref().unwrap().len(), 6);
        let unreachable = spec
            .tolerations
            .unwrap()
            .into_iter()
            .find(|t| t.key.as_deref() == Some(TAINT_UNREACHABLE))
            .unwrap();
        assert_eq!(
            unreachable.toleration_seconds, None,
            "daemons are never evicted"
        );
    }

    #[test]
    fn pods_are_pinned_by_affinity_and_found_by_it() {
        let t = daemon_pod_template(&PodTemplateSpec::default(), "n1", "abc", 2);
        let pod = Pod {
            metadata: ObjectMeta::default(),
            spec: t.spec.clone(),
            status: None,
        };
        assert_eq!(target_node(&pod).as_deref(), Some("n1"));
        assert_eq!(
            t.metadata.unwrap().labels.unwrap()[CONTROLLER_REVISION_HASH_LABEL],
            "abc"
        );
    }

    #[test]
    fn rolling_update_budget_scales_percentages_up() {
        use k8s_openapi::api::apps::v1::{DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
        let mut d = ds(PodSpec::default());
        assert_eq!(surge_and_unavailable(&d, 10), (0, 1));
        d.spec.as_mut().unwrap().update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDaemonSet {
                max_unavailable: Some(IntOrString::String("25%".into())),
                max_surge: Some(IntOrString::Int(0)),
            }),
        });
        assert_eq!(surge_and_unavailable(&d, 10), (0, 3));
    }
}
