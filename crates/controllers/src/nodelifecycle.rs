//! The node lifecycle controller
//! (`pkg/controller/nodelifecycle/node_lifecycle_controller.go`).
//!
//! Per node it takes the last sign of life — the later of the node Lease's
//! `renewTime` and the Ready condition's `lastHeartbeatTime` — and once that
//! is older than `--node-monitor-grace-period` sets the kubelet's conditions
//! to `Unknown` ("Kubelet stopped posting node status."). From the
//! conditions it keeps the node's taints: `unreachable` / `not-ready` with
//! NoExecute (which the taint eviction controller acts on) and the
//! NoSchedule taints of TaintNodesByCondition; they go again when the node is
//! healthy. Pods on a node that is not Ready are marked not Ready.
//!
//! NoExecute taints are added at a limited rate per zone, by the zone's
//! disruption state (upstream's `handleDisruption`): a zone with most of its
//! nodes unhealthy (PartialDisruption) slows down or stops, and when every
//! zone is wholly unhealthy (the control plane is more likely cut off than
//! the nodes dead) no node is tainted and NoExecute taints are removed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, PodCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use client::events::{EventType, Recorder};

use crate::informer::{key_of, Change, Informer, NODE_INDEX};
use crate::pod_control::{is_conflict, is_not_found};
use crate::workqueue::WorkQueue;
use crate::Context;

pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// The taints this controller owns: (key, effect).
const MANAGED_TAINTS: [(&str, &str); 9] = [
    (TAINT_NOT_READY, "NoExecute"),
    (TAINT_UNREACHABLE, "NoExecute"),
    (TAINT_NOT_READY, "NoSchedule"),
    (TAINT_UNREACHABLE, "NoSchedule"),
    (TAINT_MEMORY_PRESSURE, "NoSchedule"),
    (TAINT_DISK_PRESSURE, "NoSchedule"),
    (TAINT_PID_PRESSURE, "NoSchedule"),
    (TAINT_NETWORK_UNAVAILABLE, "NoSchedule"),
    (TAINT_UNSCHEDULABLE, "NoSchedule"),
];

/// The conditions the kubelet owns, which go Unknown when it falls silent.
const KUBELET_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// How often every node is looked at even without a change (`--node-monitor-period`).
const NODE_MONITOR_PERIOD: Duration = Duration::from_secs(5);

/// `--node-eviction-rate`: nodes per second tainted NoExecute in a zone.
const NODE_EVICTION_RATE: f64 = 0.1;
/// `--secondary-node-eviction-rate`: the rate in a partly disrupted large zone.
const SECONDARY_NODE_EVICTION_RATE: f64 = 0.01;
/// `--unhealthy-zone-threshold`: the share of unhealthy nodes (at least 3)
/// that makes a zone partly disrupted.
const UNHEALTHY_ZONE_THRESHOLD: f64 = 0.55;
/// `--large-cluster-size-threshold`: smaller zones stop evicting when partly
/// disrupted instead of slowing down.
const LARGE_CLUSTER_SIZE_THRESHOLD: usize = 50;

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
const REGION_LABEL: &str = "topology.kubernetes.io/region";

/// A zone's health (`ZoneState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// `ComputeZoneState`, from the zone's Ready and not Ready node counts.
pub fn compute_zone_state(ready: usize, not_ready: usize) -> ZoneState {
    if not_ready > 0 && ready == 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2
        && not_ready as f64 / (ready + not_ready) as f64 >= UNHEALTHY_ZONE_THRESHOLD
    {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Nodes per second that may be tainted NoExecute in a zone of that state
/// and size.
pub fn eviction_rate(state: ZoneState, zone_size: usize) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => NODE_EVICTION_RATE,
        ZoneState::PartialDisruption if zone_size > LARGE_CLUSTER_SIZE_THRESHOLD => {
            SECONDARY_NODE_EVICTION_RATE
        }
        ZoneState::PartialDisruption => 0.0,
    }
}

/// The zone key of a node (`GetZoneKey`): region and zone labels.
fn zone_of(node: &Node) -> String {
    let labels = node.metadata.labels.as_ref();
    let get = |k: &str| labels.and_then(|l| l.get(k)).cloned().unwrap_or_default();
    format!("{}:\x00:{}", get(REGION_LABEL), get(ZONE_LABEL))
}

/// What may happen to a node's NoExecute taints now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoExecute {
    /// Add and remove as the node's state says.
    Add,
    /// Keep those present, add none (the zone's rate is used up).
    Hold,
    /// Remove them all (every zone is wholly disrupted).
    Remove,
}

#[derive(Default)]
struct Zone {
    state: Option<ZoneState>,
    size: usize,
    /// When the next NoExecute taint may be added (a token bucket of one).
    next_taint: Option<std::time::Instant>,
}

/// The zones' states and their tainting rate limits.
#[derive(Default)]
struct Disruption {
    zones: Mutex<std::collections::HashMap<String, Zone>>,
    all_fully_disrupted: std::sync::atomic::AtomicBool,
}

impl Disruption {
    /// Recomputes every zone's state from the cache (`handleDisruption`);
    /// true when "every zone fully disrupted" flipped.
    fn update(&self, nodes: &[Arc<Node>]) -> bool {
        let mut counts: std::collections::HashMap<String, (usize, usize)> = Default::default();
        for n in nodes {
            let c = counts.entry(zone_of(n)).or_default();
            if condition_status(n, "Ready") == Some("True") {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        }
        let mut zones = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        zones.retain(|k, _| counts.contains_key(k));
        for (key, (ready, not_ready)) in &counts {
            let state = compute_zone_state(*ready, *not_ready);
            let zone = zones.entry(key.clone()).or_default();
            if zone.state != Some(state) {
                tracing::info!(zone = %key.replace('\x00', ""), ?state, "zone state changed");
            }
            zone.state = Some(state);
            zone.size = ready + not_ready;
        }
        let all = !counts.is_empty()
            && zones
                .values()
                .all(|z| z.state == Some(ZoneState::FullDisruption));
        let was = self
            .all_fully_disrupted
            .swap(all, std::sync::atomic::Ordering::Relaxed);
        if all != was {
            tracing::warn!(
                all_fully_disrupted = all,
                "controller sees every zone disrupted: {all}"
            );
        }
        all != was
    }

    fn policy(&self) -> NoExecute {
        if self
            .all_fully_disrupted
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            NoExecute::Remove
        } else {
            NoExecute::Add
        }
    }

    /// Takes the zone's permission to taint one more node NoExecute.
    fn try_taint(&self, node: &Node) -> bool {
        let mut zones = self.zones.lock().unwrap_or_else(|e| e.into_inner());
        let zone = zones.entry(zone_of(node)).or_default();
        let rate = eviction_rate(zone.state.unwrap_or(ZoneState::Normal), zone.size);
        if rate <= 0.0 {
            return false;
        }
        let now = std::time::Instant::now();
        if zone.next_taint.is_some_and(|t| now < t) {
            return false;
        }
        zone.next_taint = Some(now + Duration::from_secs_f64(1.0 / rate));
        true
    }
}

pub async fn run(ctx: Context, shutdown: CancellationToken) -> anyhow::Result<()> {
    let nodes: Informer<Node> = ctx.informers.get();
    let leases: Informer<Lease> = ctx.informers.get();
    let pods = ctx.informers.pods();
    let queue = WorkQueue::new("nodelifecycle");
    let recorder = ctx.recorder("node-controller");
    // Nodes seen, for the RegisteredNode / RemovingNode events.
    let known: Arc<Mutex<HashSet<String>>> = Default::default();
    nodes.on_change({
        let (queue, recorder, known) = (queue.clone(), recorder.clone(), known.clone());
        move |c: &Change<Node>| {
            let node = c.object();
            let name = key_of(node.as_ref());
            let mut known = known.lock().unwrap_or_else(|e| e.into_inner());
            match c {
                Change::Applied { .. } if known.insert(name.clone()) => {
                    record_node_event(
                        &recorder,
                        node,
                        &format!("Registered Node {name} in Controller"),
                        "RegisteredNode",
                    );
                }
                Change::Deleted(_) if known.remove(&name) => {
                    record_node_event(
                        &recorder,
                        node,
                        &format!("Removing Node {name} from Controller"),
                        "RemovingNode",
                    );
                }
                _ => {}
            }
            queue.add(name);
        }
    });
    leases.on_change({
        let queue = queue.clone();
        move |c: &Change<Lease>| {
            let lease = c.object();
            if lease.metadata.namespace.as_deref() == Some(NODE_LEASE_NAMESPACE) {
                queue.add(lease.metadata.name.clone().unwrap_or_default());
            }
        }
    });
    tokio::select! {
        _ = async { tokio::join!(nodes.wait_synced(), leases.wait_synced(), pods.wait_synced()) } => {}
        _ = shutdown.cancelled() => return Ok(()),
    }
    let grace = ctx.config.node_monitor_grace_period;
    let client = ctx.client.clone();
    let disruption = Arc::new(Disruption::default());
    disruption.update(&nodes.list());
    tokio::spawn(watch_zones(
        nodes.clone(),
        disruption.clone(),
        queue.clone(),
        shutdown.clone(),
    ));
    queue
        .run(2, shutdown, move |name| {
            let monitor = Monitor {
                nodes: nodes.clone(),
                leases: leases.clone(),
                pods: pods.clone(),
                client: client.clone(),
                recorder: recorder.clone(),
                disruption: disruption.clone(),
                grace,
            };
            async move { monitor.sync(&name).await }
        })
        .await;
    Ok(())
}

/// Keeps the zone states current; when "every zone disrupted" flips, every
/// node is looked at again (its NoExecute taints go or may come back).
async fn watch_zones(
    nodes: Informer<Node>,
    disruption: Arc<Disruption>,
    queue: WorkQueue,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(NODE_MONITOR_PERIOD.min(Duration::from_secs(1)));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let all = nodes.list();
        if disruption.update(&all) {
            for n in &all {
                queue.add(key_of(n.as_ref()));
            }
        }
    }
}

fn record_node_event(recorder: &Recorder, node: &Node, event: &str, reason: &str) {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    recorder.record(
        client::events::reference(node),
        EventType::Normal,
        reason,
        reason,
        format!("Node {name} event: {event}"),
    );
}

struct Monitor {
    nodes: Informer<Node>,
    leases: Informer<Lease>,
    pods: Informer<Pod>,
    client: kube::Client,
    recorder: Recorder,
    disruption: Arc<Disruption>,
    grace: Duration,
}

impl Monitor {
    /// One pass over one node (`monitorNodeHealth` + the tainting passes).
    async fn sync(&self, name: &str) -> Result<Option<Duration>, kube::Error> {
        let Some(node) = self.nodes.get(name) else {
            return Ok(None);
        };
        let lease = self.leases.get(&format!("{NODE_LEASE_NAMESPACE}/{name}"));
        let now = Timestamp::now();
        let probe = probe_time(&node, lease.as_deref());
        let silent_for = now.duration_since(probe).unsigned_abs();
        if silent_for > self.grace {
            if let Some(conditions) = unknown_conditions(&node, now) {
                return self.post_unknown_status(&node, conditions).await;
            }
        }
        let mut policy = self.disruption.policy();
        let mut held = false;
        if policy == NoExecute::Add
            && adds_first_no_execute(&node, now)
            && !self.disruption.try_taint(&node)
        {
            policy = NoExecute::Hold;
            held = true;
        }
        if let Some(taints) = reconcile_taints(&node, now, policy) {
            let api: Api<Node> = Api::all(self.client.clone());
            let patch = json!({
                "metadata": { "resourceVersion": node.metadata.resource_version },
                "spec": { "taints": taints },
            });
            return match api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                // The change comes back through the informer.
                Ok(_) => Ok(None),
                Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(None),
                Err(e) => Err(e),
            };
        }
        if condition_status(&node, "Ready") != Some("True") {
            self.mark_pods_not_ready(name).await?;
        }
        if held {
            return Ok(Some(Duration::from_secs(1)));
        }
        let until_expiry = self.grace.saturating_sub(silent_for) + Duration::from_millis(200);
        Ok(Some(until_expiry.min(NODE_MONITOR_PERIOD)))
    }

    /// Writes the Unknown conditions; `NodeNotReady` when Ready was True.
    async fn post_unknown_status(
        &self,
        node: &Node,
        conditions: Vec<NodeCondition>,
    ) -> Result<Option<Duration>, kube::Error> {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let api: Api<Node> = Api::all(self.client.clone());
        let patch = json!({
            "metadata": { "resourceVersion": node.metadata.resource_version },
            "status": { "conditions": conditions },
        });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(node = name, "node stopped posting status; marked Unknown");
                if condition_status(node, "Ready") == Some("True") {
                    self.recorder.record(
                        client::events::reference(node),
                        EventType::Normal,
                        "NodeNotReady",
                        "NodeNotReady",
                        format!("Node {name} status is now: NodeNotReady"),
                    );
                }
                Ok(None)
            }
            Err(e) if is_conflict(&e) || is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `MarkPodsNotReady`: pods on a node that is not Ready are not Ready.
    async fn mark_pods_not_ready(&self, node_name: &str) -> Result<(), kube::Error> {
        for pod in self.pods.by_index(NODE_INDEX, node_name) {
            let Some(conditions) = pod_not_ready_conditions(&pod, Timestamp::now()) else {
                continue;
            };
            let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
            let patch = json!({
                "metadata": { "resourceVersion": pod.metadata.resource_version },
                "status": { "conditions": conditions },
            });
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => self.recorder.record(
                    client::events::reference(pod.as_ref()),
                    EventType::Warning,
                    "NodeNotReady",
                    "NodeNotReady",
                    "Node is not ready".into(),
                ),
                Err(e) if is_conflict(&e) || is_not_found(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn condition_status<'a>(node: &'a Node, type_: &str) -> Option<&'a str> {
    condition(node, type_).map(|c| c.status.as_str())
}

/// The node's last sign of life: the later of its Lease renewal and its
/// Ready heartbeat; its creation when it never gave one.
pub fn probe_time(node: &Node, lease: Option<&Lease>) -> Timestamp {
    let renewed = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    let heartbeat = condition(node, "Ready")
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    let created = node.metadata.creation_timestamp.as_ref().map(|t| t.0);
    [renewed, heartbeat]
        .into_iter()
        .flatten()
        .max()
        .or(created)
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The conditions after the kubelet fell silent: its four conditions
/// Unknown (added when it never posted them). `None` when they already are.
pub fn unknown_conditions(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for type_ in KUBELET_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            None => {
                conditions.push(NodeCondition {
                    type_: type_.into(),
                    status: "Unknown".into(),
                    reason: Some("NodeStatusNeverUpdated".into()),
                    message: Some("Kubelet never posted node status.".into()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
        }
    }
    changed.then_some(conditions)
}

/// The managed taints the node's state calls for, as (key, effect).
pub fn desired_taints(node: &Node) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match condition_status(node, "Ready") {
        Some("False") => out.extend([
            (TAINT_NOT_READY, "NoExecute"),
            (TAINT_NOT_READY, "NoSchedule"),
        ]),
        Some("Unknown") => out.extend([
            (TAINT_UNREACHABLE, "NoExecute"),
            (TAINT_UNREACHABLE, "NoSchedule"),
        ]),
        _ => {}
    }
    for (type_, key) in [
        ("MemoryPressure", TAINT_MEMORY_PRESSURE),
        ("DiskPressure", TAINT_DISK_PRESSURE),
        ("PIDPressure", TAINT_PID_PRESSURE),
        ("NetworkUnavailable", TAINT_NETWORK_UNAVAILABLE),
    ] {
        if condition_status(node, type_) == Some("True") {
            out.push((key, "NoSchedule"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push((TAINT_UNSCHEDULABLE, "NoSchedule"));
    }
    out
}

fn is_managed(t: &Taint) -> bool {
    MANAGED_TAINTS
        .iter()
        .any(|(k, e)| t.key == *k && t.effect == *e)
}

fn current_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
}

/// Whether reconciling would give a node that has no managed NoExecute
/// taint its first one (swapping unreachable for not-ready is not limited).
fn adds_first_no_execute(node: &Node, now: Timestamp) -> bool {
    let managed_no_execute = |t: &Taint| is_managed(t) && t.effect == "NoExecute";
    !current_taints(node).iter().any(managed_no_execute)
        && reconcile_taints(node, now, NoExecute::Add)
            .is_some_and(|ts| ts.iter().any(managed_no_execute))
}

/// The node's taints with the managed ones brought in line with its state
/// (others kept as they are; NoExecute taints stamped with the time they
/// were added), as far as `no_execute` allows. `None` when nothing changes.
pub fn reconcile_taints(node: &Node, now: Timestamp, no_execute: NoExecute) -> Option<Vec<Taint>> {
    let current = current_taints(node);
    let present = |k: &str, e: &str| current.iter().any(|t| t.key == k && t.effect == e);
    let desired: Vec<_> = desired_taints(node)
        .into_iter()
        .filter(|(k, e)| match (no_execute, *e) {
            (NoExecute::Add, _) | (_, "NoSchedule") => true,
            (NoExecute::Hold, _) => present(k, e),
            (NoExecute::Remove, _) => false,
        })
        .collect();
    let has = |key: &str, effect: &str| current.iter().any(|t| t.key == key && t.effect == effect);
    let stale = current
        .iter()
        .any(|t| is_managed(t) && !desired.contains(&(t.key.as_str(), t.effect.as_str())));
    let missing: Vec<_> = desired.iter().filter(|(k, e)| !has(k, e)).collect();
    if !stale && missing.is_empty() {
        return None;
    }
    let mut taints: Vec<Taint> = current
        .into_iter()
        .filter(|t| !is_managed(t) || desired.contains(&(t.key.as_str(), t.effect.as_str())))
        .collect();
    for (key, effect) in missing {
        taints.push(Taint {
            key: key.to_string(),
            effect: effect.to_string(),
            value: None,
            time_added: (*effect == "NoExecute").then_some(Time(now)),
        });
    }
    Some(taints)
}

/// The pod's conditions with Ready False; `None` when it already is.
pub fn pod_not_ready_conditions(pod: &Pod, now: Timestamp) -> Option<Vec<PodCondition>> {
    let mut conditions = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let ready = conditions.iter_mut().find(|c| c.type_ == "Ready")?;
    if ready.status == "False" {
        return None;
    }
    ready.status = "False".into();
    ready.last_transition_time = Some(Time(now));
    Some(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn cond(type_: &str, status: &str, heartbeat: &str) -> NodeCondition {
        NodeCondition {
            type_: type_.into(),
            status: status.into(),
            last_heartbeat_time: Some(Time(t(heartbeat))),
            last_transition_time: Some(Time(t("2025-01-01T00:00:00Z"))),
            ..Default::default()
        }
    }

    fn node(conditions: Vec<NodeCondition>, taints: Vec<Taint>) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some("n1".into());
        n.metadata.creation_timestamp = Some(Time(t("2025-01-01T00:00:00Z")));
        n.spec = Some(NodeSpec {
            taints: Some(taints),
            ..Default::default()
        });
        n.status = Some(NodeStatus {
            conditions: Some(conditions),
            ..Default::default()
        });
        n
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn lease(renew: &str) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(t(renew))),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn probe_time_is_the_later_of_lease_and_heartbeat() {
        let n = node(vec![cond("Ready", "True", "2025-01-01T00:01:00Z")], vec![]);
        assert_eq!(probe_time(&n, None), t("2025-01-01T00:01:00Z"));
        let l = lease("2025-01-01T00:05:00Z");
        assert_eq!(probe_time(&n, Some(&l)), t("2025-01-01T00:05:00Z"));
        let old = lease("2024-12-31T00:00:00Z");
        assert_eq!(probe_time(&n, Some(&old)), t("2025-01-01T00:01:00Z"));
        let fresh = node(vec![], vec![]);
        assert_eq!(
            probe_time(&fresh, None),
            t("2025-01-01T00:00:00Z"),
            "creation"
        );
    }

    #[test]
    fn silent_kubelet_conditions_go_unknown_once() {
        let now = t("2025-01-01T01:00:00Z");
        let n = node(
            vec![
                cond("Ready", "True", "2025-01-01T00:01:00Z"),
                cond("MemoryPressure", "False", "2025-01-01T00:01:00Z"),
                cond("NetworkUnavailable", "False", "2025-01-01T00:01:00Z"),
            ],
            vec![],
        );
        let out = unknown_conditions(&n, now).unwrap();
        let get = |ty: &str| out.iter().find(|c| c.type_ == ty).unwrap();
        let ready = get("Ready");
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(ready.last_transition_time, Some(Time(now)));
        assert_eq!(
            ready.last_heartbeat_time,
            Some(Time(t("2025-01-01T00:01:00Z")))
        );
        assert_eq!(get("MemoryPressure").status, "Unknown");
        assert_eq!(
            get("NetworkUnavailable").status,
            "False",
            "not the kubelet's"
        );
        assert_eq!(
            get("DiskPressure").reason.as_deref(),
            Some("NodeStatusNeverUpdated")
        );
        assert_eq!(get("PIDPressure").status, "Unknown");
        let again = node(out, vec![]);
        assert!(unknown_conditions(&again, now).is_none());
    }

    #[test]
    fn taints_follow_ready_and_swap() {
        let now = t("2025-01-01T01:00:00Z");
        let unknown = node(
            vec![cond("Ready", "Unknown", "2025-01-01T00:00:00Z")],
            vec![],
        );
        let taints = reconcile_taints(&unknown, now, NoExecute::Add).unwrap();
        let keys: Vec<_> = taints
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (TAINT_UNREACHABLE, "NoExecute"),
                (TAINT_UNREACHABLE, "NoSchedule")
            ]
        );
        assert_eq!(taints[0].time_added, Some(Time(now)));
        assert_eq!(taints[1].time_added, None);

        // Ready=False: unreachable is swapped for not-ready; others kept.
        let not_ready = node(
            vec![cond("Ready", "False", "2025-01-01T00:00:00Z")],
            vec![
                taint("dedicated", "NoSchedule"),
                taint(TAINT_UNREACHABLE, "NoExecute"),
            ],
        );
        let taints = reconcile_taints(&not_ready, now, NoExecute::Add).unwrap();
        let keys: Vec<_> = taints
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("dedicated", "NoSchedule"),
                (TAINT_NOT_READY, "NoExecute"),
                (TAINT_NOT_READY, "NoSchedule")
            ]
        );

        // Healthy again: all managed taints go; nothing to do afterwards.
        let healthy = node(vec![cond("Ready", "True", "2025-01-01T00:00:00Z")], taints);
        let taints = reconcile_taints(&healthy, now, NoExecute::Add).unwrap();
        assert_eq!(taints.len(), 1);
        let done = node(vec![cond("Ready", "True", "2025-01-01T00:00:00Z")], taints);
        assert_eq!(reconcile_taints(&done, now, NoExecute::Add), None);
    }

    #[test]
    fn no_execute_taints_held_or_removed_in_disruption() {
        let now = t("2025-01-01T01:00:00Z");
        let unknown = node(
            vec![cond("Ready", "Unknown", "2025-01-01T00:00:00Z")],
            vec![],
        );
        assert!(adds_first_no_execute(&unknown, now));
        let held = reconcile_taints(&unknown, now, NoExecute::Hold).unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].effect, "NoSchedule");
        let tainted = node(
            vec![cond("Ready", "Unknown", "2025-01-01T00:00:00Z")],
            vec![
                taint(TAINT_UNREACHABLE, "NoExecute"),
                taint(TAINT_UNREACHABLE, "NoSchedule"),
            ],
        );
        assert!(!adds_first_no_execute(&tainted, now));
        assert_eq!(reconcile_taints(&tainted, now, NoExecute::Hold), None);
        let removed = reconcile_taints(&tainted, now, NoExecute::Remove).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].effect, "NoSchedule");
        // Ready=False on an unreachable node: a swap, not limited.
        let swapped = node(
            vec![cond("Ready", "False", "2025-01-01T00:00:00Z")],
            vec![taint(TAINT_UNREACHABLE, "NoExecute")],
        );
        assert!(!adds_first_no_execute(&swapped, now));
    }

    #[test]
    fn zone_states_and_rates() {
        assert_eq!(compute_zone_state(3, 0), ZoneState::Normal);
        assert_eq!(compute_zone_state(2, 1), ZoneState::Normal);
        assert_eq!(compute_zone_state(0, 1), ZoneState::FullDisruption);
        assert_eq!(
            compute_zone_state(1, 2),
            ZoneState::Normal,
            "fewer than 3 unhealthy"
        );
        assert_eq!(compute_zone_state(2, 3), ZoneState::PartialDisruption);
        assert_eq!(compute_zone_state(3, 3), ZoneState::Normal, "below 55%");
        assert_eq!(eviction_rate(ZoneState::Normal, 10), 0.1);
        assert_eq!(eviction_rate(ZoneState::FullDisruption, 10), 0.1);
        assert_eq!(eviction_rate(ZoneState::PartialDisruption, 10), 0.0);
        assert_eq!(eviction_rate(ZoneState::PartialDisruption, 100), 0.01);
    }

    #[test]
    fn disruption_limits_tainting_per_zone() {
        let d = Disruption::default();
        let zoned = |zone: &str, ready: &str| {
            let mut n = node(vec![cond("Ready", ready, "2025-01-01T00:00:00Z")], vec![]);
            n.metadata.labels = Some([(ZONE_LABEL.to_string(), zone.to_string())].into());
            Arc::new(n)
        };
        let nodes = vec![
            zoned("a", "True"),
            zoned("a", "Unknown"),
            zoned("b", "Unknown"),
        ];
        assert!(!d.update(&nodes));
        assert_eq!(d.policy(), NoExecute::Add);
        // One token per zone at the normal rate (0.1/s).
        assert!(d.try_taint(&nodes[1]));
        assert!(!d.try_taint(&nodes[1]));
        assert!(d.try_taint(&nodes[2]), "another zone");
        // Every zone wholly down: NoExecute taints are removed.
        let down = vec![zoned("a", "Unknown"), zoned("b", "Unknown")];
        assert!(d.update(&down));
        assert_eq!(d.policy(), NoExecute::Remove);
        assert!(!d.update(&down), "no flip");
        // A small zone partly disrupted stops tainting.
        let partial: Vec<_> = (0..5)
            .map(|i| zoned("c", if i < 3 { "Unknown" } else { "True" }))
            .collect();
        assert!(d.update(&partial));
        assert!(!d.try_taint(&partial[0]));
    }

    #[test]
    fn condition_and_unschedulable_taints() {
        let mut n = node(
            vec![
                cond("Ready", "True", "2025-01-01T00:00:00Z"),
                cond("MemoryPressure", "True", "2025-01-01T00:00:00Z"),
                cond("DiskPressure", "False", "2025-01-01T00:00:00Z"),
                cond("PIDPressure", "True", "2025-01-01T00:00:00Z"),
                cond("NetworkUnavailable", "True", "2025-01-01T00:00:00Z"),
            ],
            vec![],
        );
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        assert_eq!(
            desired_taints(&n),
            [
                (TAINT_MEMORY_PRESSURE, "NoSchedule"),
                (TAINT_PID_PRESSURE, "NoSchedule"),
                (TAINT_NETWORK_UNAVAILABLE, "NoSchedule"),
                (TAINT_UNSCHEDULABLE, "NoSchedule"),
            ]
        );
        // A user's taint with a managed key but another effect is not ours.
        let user = node(vec![], vec![taint(TAINT_NOT_READY, "PreferNoSchedule")]);
        assert_eq!(
            reconcile_taints(&user, t("2025-01-01T00:00:00Z"), NoExecute::Add),
            None
        );
    }

    #[test]
    fn pods_are_marked_not_ready_once() {
        let now = t("2025-01-01T01:00:00Z");
        let mut pod = Pod {
            status: Some(PodStatus {
                conditions: Some(vec![
                    PodCondition {
                        type_: "PodScheduled".into(),
                        status: "True".into(),
                        ..Default::default()
                    },
                    PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let out = pod_not_ready_conditions(&pod, now).unwrap();
        assert_eq!(out[1].status, "False");
        assert_eq!(out[0].status, "True");
        pod.status.as_mut().unwrap().conditions = Some(out);
        assert!(pod_not_ready_conditions(&pod, now).is_none());
        assert!(pod_not_ready_conditions(&Pod::default(), now).is_none());
    }
}
