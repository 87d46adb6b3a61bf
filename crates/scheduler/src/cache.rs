//! The scheduler's cache: every node, the pods bound to it, and the pods
//! this scheduler has *assumed* onto a node while their binding is in
//! flight (so the next cycle already counts them, as upstream's cache does).
//! A pod bound to a node not seen yet is kept until the node appears.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};

use crate::framework::{NodeInfo, PodInfo, Resource, Snapshot};
use crate::resource::node_allocatable;

struct NodeEntry {
    info: Arc<NodeInfo>,
    /// False while only pods name the node (no Node object seen yet).
    exists: bool,
}

struct PodEntry {
    node: String,
    assumed: bool,
}

#[derive(Default)]
pub struct Cache {
    nodes: BTreeMap<String, NodeEntry>,
    pods: HashMap<String, PodEntry>,
    namespace_labels: Arc<HashMap<String, BTreeMap<String, String>>>,
    image_nodes: Arc<HashMap<String, usize>>,
    /// Pods nominated to a node by preemption, by node.
    nominated: HashMap<String, Vec<Arc<PodInfo>>>,
}

fn empty_node(name: &str) -> NodeInfo {
    let mut node = Node::default();
    node.metadata.name = Some(name.to_string());
    NodeInfo {
        node: Arc::new(node),
        name: name.to_string(),
        pods: Vec::new(),
        requested: Resource::default(),
        non_zero_requested: Resource::default(),
        allocatable: Resource::default(),
        used_ports: Default::default(),
        pods_with_affinity: 0,
        pods_with_required_anti_affinity: 0,
    }
}

/// Whether a pod still holds resources on its node: terminal pods do not.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn images(node: &Node) -> Vec<String> {
    node.status
        .as_ref()
        .and_then(|s| s.images.as_ref())
        .map(|imgs| {
            imgs.iter()
                .flat_map(|i| i.names.iter().flatten().cloned())
                .collect()
        })
        .unwrap_or_default()
}

impl Cache {
    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|p| p.assumed)
    }

    /// The cycle's view: every existing node (pods shared, not copied).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            nodes: self
                .nodes
                .values()
                .filter(|n| n.exists)
                .map(|n| n.info.clone())
                .collect(),
            namespace_labels: self.namespace_labels.clone(),
            image_nodes: self.image_nodes.clone(),
        }
    }

    fn node_mut(&mut self, name: &str) -> &mut NodeInfo {
        let e = self
            .nodes
            .entry(name.to_string())
            .or_insert_with(|| NodeEntry {
                info: Arc::new(empty_node(name)),
                exists: false,
            });
        Arc::make_mut(&mut e.info)
    }

    fn detach(&mut self, uid: &str) -> Option<PodEntry> {
        let entry = self.pods.remove(uid)?;
        if let Some(n) = self.nodes.get_mut(&entry.node) {
            Arc::make_mut(&mut n.info).remove_pod(uid);
            if !n.exists && n.info.pods.is_empty() {
                self.nodes.remove(&entry.node);
            }
        }
        Some(entry)
    }

    /// A bound pod as the API reports it (confirms an assumed pod).
    /// Terminal pods free their node's resources.
    pub fn add_or_update_pod(&mut self, info: Arc<PodInfo>) {
        let Some(node) = info.node_name().map(str::to_string) else {
            return;
        };
        self.detach(&info.uid);
        if is_terminal(&info.pod) {
            return;
        }
        self.pods.insert(
            info.uid.clone(),
            PodEntry {
                node: node.clone(),
                assumed: false,
            },
        );
        self.node_mut(&node).add_pod(info);
    }

    pub fn remove_pod(&mut self, uid: &str) {
        self.detach(uid);
    }

    /// Drops bound pods for which `keep(uid)` does not hold (after a relist).
    pub fn retain_pods(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let gone: Vec<String> = self.pods.keys().filter(|u| !keep(u)).cloned().collect();
        for uid in gone {
            self.detach(&uid);
        }
    }

    /// Counts `info` on `node` before the API confirms the binding.
    pub fn assume(&mut self, info: Arc<PodInfo>, node: &str) {
        self.detach(&info.uid);
        self.pods.insert(
            info.uid.clone(),
            PodEntry {
                node: node.to_string(),
                assumed: true,
            },
        );
        self.node_mut(node).add_pod(info);
    }

    /// The binding failed: the assumed pod leaves its node again.
    pub fn forget(&mut self, uid: &str) {
        if self.is_assumed(uid) {
            self.detach(uid);
        }
    }

    /// Adds or updates a node; returns whether anything that scheduling
    /// looks at changed (labels, taints, allocatable, unschedulable,
    /// conditions), i.e. whether waiting pods deserve another try.
    pub fn upsert_node(&mut self, node: Node) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let relevant = |n: &Node| {
            (
                n.metadata.labels.clone(),
                n.spec.as_ref().map(|s| (s.taints.clone(), s.unschedulable)),
                n.status.as_ref().map(|s| {
                    (
                        s.allocatable.clone(),
                        s.conditions
                            .iter()
                            .flatten()
                            .map(|c| (c.type_.clone(), c.status.clone()))
                            .collect::<Vec<_>>(),
                    )
                }),
            )
        };
        let old = self
            .nodes
            .get(&name)
            .filter(|e| e.exists)
            .map(|e| e.info.node.clone());
        let changed = old.as_ref().is_none_or(|o| relevant(o) != relevant(&node));
        let old_images = old.as_deref().map(images).unwrap_or_default();
        let new_images = images(&node);
        if old_images != new_images {
            let counts = Arc::make_mut(&mut self.image_nodes);
            for i in old_images {
                if let Some(c) = counts.get_mut(&i) {
                    *c -= 1;
                    if *c == 0 {
                        counts.remove(&i);
                    }
                }
            }
            for i in new_images {
                *counts.entry(i).or_default() += 1;
            }
        }
        let allocatable = node_allocatable(&node);
        let info = self.node_mut(&name);
        info.node = Arc::new(node);
        info.allocatable = allocatable;
        if let Some(e) = self.nodes.get_mut(&name) {
            e.exists = true;
        }
        changed
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(e) = self.nodes.get_mut(name) else {
            return;
        };
        let imgs = images(&e.info.node);
        if e.info.pods.is_empty() {
            self.nodes.remove(name);
        } else {
            e.exists = false;
        }
        let counts = Arc::make_mut(&mut self.image_nodes);
        for i in imgs {
            if let Some(c) = counts.get_mut(&i) {
                *c -= 1;
                if *c == 0 {
                    counts.remove(&i);
                }
            }
        }
    }

    pub fn node_names(&self) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, e)| e.exists)
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn upsert_namespace(&mut self, ns: &Namespace) {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let labels = ns.metadata.labels.clone().unwrap_or_default();
        if self.namespace_labels.get(&name) != Some(&labels) {
            Arc::make_mut(&mut self.namespace_labels).insert(name, labels);
        }
    }

    pub fn remove_namespace(&mut self, name: &str) {
        if self.namespace_labels.contains_key(name) {
            Arc::make_mut(&mut self.namespace_labels).remove(name);
        }
    }

    pub fn namespace_names(&self) -> Vec<String> {
        self.namespace_labels.keys().cloned().collect()
    }

    /// Records that `info` waits for room on `node` made by preemption
    /// (`status.nominatedNodeName`).
    pub fn nominate(&mut self, info: &Arc<PodInfo>, node: &str) {
        self.clear_nominated(&info.uid);
        self.nominated
            .entry(node.to_string())
            .or_default()
            .push(info.clone());
    }

    pub fn clear_nominated(&mut self, uid: &str) {
        if self.nominated.is_empty() {
            return;
        }
        for pods in self.nominated.values_mut() {
            pods.retain(|p| p.uid != uid);
        }
        self.nominated.retain(|_, v| !v.is_empty());
    }

    /// Pods nominated to `node` with at least `priority`, other than `uid`:
    /// the room preemption made for them is not given away.
    pub fn nominated_for(&self, node: &str, priority: i32, uid: &str) -> Vec<Arc<PodInfo>> {
        self.nominated
            .get(node)
            .map(|v| {
                v.iter()
                    .filter(|p| p.priority >= priority && p.uid != uid)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn has_nominated(&self) -> bool {
        !self.nominated.is_empty()
    }
}
