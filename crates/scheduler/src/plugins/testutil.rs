//! Builders for plugin tests: pods and nodes from JSON, a snapshot, and a
//! small driver that runs a plugin's phases the way the cycle does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};

use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Resource, Snapshot, Status};
use crate::resource::node_allocatable;

/// A pod from JSON; namespace `default`, uid = name and one container are
/// filled in when missing.
pub fn pod(mut v: Value) -> Arc<PodInfo> {
    let name = v["metadata"]["name"].as_str().unwrap_or("p").to_string();
    if v["metadata"]["namespace"].is_null() {
        v["metadata"]["namespace"] = json!("default");
    }
    if v["metadata"]["uid"].is_null() {
        v["metadata"]["uid"] = json!(format!("uid-{name}"));
    }
    if v["spec"]["containers"].is_null() {
        v["spec"]["containers"] = json!([{"name": "c", "image": "busybox"}]);
    }
    let p: Pod = serde_json::from_value(v).expect("pod json");
    Arc::new(PodInfo::new(Arc::new(p)))
}

/// A pod named `name` with `labels` and the given `spec` fields merged in.
pub fn labeled_pod(name: &str, labels: Value, spec: Value) -> Arc<PodInfo> {
    let mut s = json!({"containers": [{"name": "c", "image": "busybox"}]});
    if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    pod(json!({"metadata": {"name": name, "labels": labels}, "spec": s}))
}

/// A node from JSON; when it reports no allocatable, 4 CPUs, 8Gi and 110
/// pods are filled in.
pub fn node(mut v: Value) -> Node {
    if v["status"]["allocatable"].is_null() {
        v["status"]["allocatable"] = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
    }
    serde_json::from_value(v).expect("node json")
}

/// A node named `name` with `labels` (and `kubernetes.io/hostname`).
pub fn labeled_node(name: &str, labels: &[(&str, &str)]) -> Node {
    let mut l: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.entry("kubernetes.io/hostname".into())
        .or_insert_with(|| name.to_string());
    node(json!({"metadata": {"name": name, "labels": l}}))
}

pub fn node_info(node: Node, pods: &[Arc<PodInfo>]) -> NodeInfo {
    let mut info = NodeInfo {
        name: node.metadata.name.clone().unwrap_or_default(),
        allocatable: node_allocatable(&node),
        node: Arc::new(node),
        pods: Vec::new(),
        requested: Resource::default(),
        non_zero_requested: Resource::default(),
        used_ports: Default::default(),
        pods_with_affinity: 0,
        pods_with_required_anti_affinity: 0,
    };
    for p in pods {
        info.add_pod(p.clone());
    }
    info
}

pub fn snapshot(nodes: Vec<NodeInfo>) -> Snapshot {
    Snapshot {
        nodes: nodes.into_iter().map(Arc::new).collect(),
        ..Default::default()
    }
}

pub fn with_namespaces(mut s: Snapshot, ns: &[(&str, &[(&str, &str)])]) -> Snapshot {
    let map: HashMap<String, BTreeMap<String, String>> = ns
        .iter()
        .map(|(n, l)| {
            (
                n.to_string(),
                l.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        })
        .collect();
    s.namespace_labels = Arc::new(map);
    s
}

/// PreFilter once, then Filter on every node (an error in PreFilter fails
/// every node), as the cycle does for one plugin.
pub fn run_filter(
    pl: &dyn Plugin,
    pod: &PodInfo,
    snap: &Snapshot,
) -> (CycleState, Vec<Result<(), Status>>) {
    let mut state = CycleState::default();
    if let Err(s) = pl.pre_filter(&mut state, pod, snap) {
        return (state, snap.nodes.iter().map(|_| Err(s.clone())).collect());
    }
    let res = snap
        .nodes
        .iter()
        .map(|n| pl.filter(&state, pod, n))
        .collect();
    (state, res)
}

/// Which nodes pass, by name.
pub fn feasible(pl: &dyn Plugin, pod: &PodInfo, snap: &Snapshot) -> Vec<String> {
    let (_, res) = run_filter(pl, pod, snap);
    snap.nodes
        .iter()
        .zip(res)
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| n.name.clone())
        .collect()
}

/// PreScore, Score and NormalizeScore over all the snapshot's nodes.
pub fn run_score(pl: &dyn Plugin, pod: &PodInfo, snap: &Snapshot) -> Vec<i64> {
    run_score_on(pl, pod, snap, &snap.nodes)
}

pub fn run_score_on(
    pl: &dyn Plugin,
    pod: &PodInfo,
    snap: &Snapshot,
    nodes: &[Arc<NodeInfo>],
) -> Vec<i64> {
    let mut state = CycleState::default();
    pl.pre_score(&mut state, pod, snap, nodes);
    let mut scores: Vec<i64> = nodes.iter().map(|n| pl.score(&state, pod, n)).collect();
    pl.normalize_score(&state, pod, &mut scores);
    scores
}
