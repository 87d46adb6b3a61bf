//! The scheduling framework: what a plugin sees (the pod being scheduled,
//! one node's view, the cluster snapshot), what it answers (a `Status`),
//! and the per-cycle state plugins share between their phases.
//!
//! As in kube-scheduler, a cycle runs PreFilter once, Filter per node,
//! PreScore once over the feasible nodes, Score per feasible node, then
//! NormalizeScore; each plugin implements only the phases it needs.

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

/// The highest score a plugin gives a node after normalization.
pub const MAX_NODE_SCORE: i64 = 100;

/// Requests of CPU (millicores), memory and ephemeral storage (bytes), the
/// pod count, and any extended resource (`example.com/gpu`, hugepages).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Element-wise maximum (init containers run one at a time).
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }
}

/// A host port a pod asks for: (hostIP, protocol, port). An empty or
/// `0.0.0.0` hostIP means every address.
pub type HostPort = (String, String, i32);

/// A pod as the scheduler keeps it: the object and what is derived from it
/// once, not per node.
#[derive(Debug)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    /// `namespace/name`.
    pub key: String,
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub priority: i32,
    /// Effective requests (containers, init containers, sidecars, overhead).
    pub requests: Resource,
    /// As `requests`, with the scoring defaults (100m CPU, 200 MiB) for
    /// containers that request nothing.
    pub non_zero_requests: Resource,
    pub host_ports: Vec<HostPort>,
    /// Whether the pod has any pod affinity / anti-affinity term (required
    /// or preferred), and required anti-affinity terms in particular.
    pub has_affinity: bool,
    pub has_required_anti_affinity: bool,
    /// Whether the pod's terms add to other pods' scores (required
    /// affinity, or any preferred term); required anti-affinity does not.
    pub scores_others: bool,
    /// Identifies the pod's namespace and labels: pods with equal keys match
    /// any term alike, so a cycle evaluates a term once per distinct key
    /// (replicas of one template share it).
    pub label_key: u128,
    /// Identifies namespace, labels and required anti-affinity terms
    /// together (what decides whether those terms match another pod).
    pub anti_affinity_key: u128,
}

impl PodInfo {
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.pod.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    pub fn node_name(&self) -> Option<&str> {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty())
    }
}

/// One node and the pods on it (bound, or assumed by this scheduler while
/// their binding is in flight).
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub name: String,
    pub pods: Vec<Arc<PodInfo>>,
    /// Sum of the pods' requests; `allowed_pod_number` holds the pod count.
    pub requested: Resource,
    pub non_zero_requested: Resource,
    /// `status.allocatable`; `allowed_pod_number` is the pods limit.
    pub allocatable: Resource,
    pub used_ports: HashSet<HostPort>,
    /// Pods with any affinity term, and with required anti-affinity.
    pub pods_with_affinity: usize,
    pub pods_with_required_anti_affinity: usize,
}

impl NodeInfo {
    pub fn labels(&self) -> &BTreeMap<String, String> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        self.node.metadata.labels.as_ref().unwrap_or(&EMPTY)
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.requested.allowed_pod_number += 1;
        self.non_zero_requested.add(&pod.non_zero_requests);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        self.pods_with_affinity += usize::from(pod.has_affinity);
        self.pods_with_required_anti_affinity += usize::from(pod.has_required_anti_affinity);
        self.pods.push(pod);
    }

    /// Removes the pod with `uid`; returns whether it was there.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid == uid) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.requested.sub(&pod.requests);
        self.requested.allowed_pod_number -= 1;
        self.non_zero_requested.sub(&pod.non_zero_requests);
        for p in &pod.host_ports {
            // Another pod may hold the same port only if it was forced onto
            // the node; recount rather than forget a port still in use.
            if !self.pods.iter().any(|q| q.host_ports.contains(p)) {
                self.used_ports.remove(p);
            }
        }
        self.pods_with_affinity -= usize::from(pod.has_affinity);
        self.pods_with_required_anti_affinity -= usize::from(pod.has_required_anti_affinity);
        true
    }
}

/// The cluster as one scheduling cycle sees it.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub nodes: Vec<Arc<NodeInfo>>,
    /// Namespace name → labels, for `namespaceSelector` in affinity terms.
    pub namespace_labels: Arc<HashMap<String, BTreeMap<String, String>>>,
    /// Image name → how many nodes report it (ImageLocality's spread).
    pub image_nodes: Arc<HashMap<String, usize>>,
}

impl Snapshot {
    /// Whether any node holds a pod with any pod (anti-)affinity term; the
    /// InterPodAffinity plugin skips its work when none does.
    pub fn any_pods_with_affinity(&self) -> bool {
        self.nodes.iter().any(|n| n.pods_with_affinity > 0)
    }
}

/// Why a node (or every node) cannot take the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Preempting lower-priority pods might make room.
    Unschedulable,
    /// Nothing on this node could change that (affinity, taints, name):
    /// preemption skips such nodes.
    UnschedulableAndUnresolvable,
}

/// A plugin's refusal: the code and the reasons counted in the
/// `0/N nodes are available: ...` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    pub reasons: Vec<String>,
    pub plugin: &'static str,
}

impl Status {
    pub fn unschedulable(plugin: &'static str, reason: impl Into<String>) -> Status {
        Status {
            code: Code::Unschedulable,
            reasons: vec![reason.into()],
            plugin,
        }
    }

    pub fn unresolvable(plugin: &'static str, reason: impl Into<String>) -> Status {
        Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![reason.into()],
            plugin,
        }
    }
}

/// Data a plugin computes in PreFilter/PreScore for its later phases.
/// Clone is needed because preemption tries nodes on copies of the state.
pub trait StateData: Any + Send + Sync {
    fn clone_box(&self) -> Box<dyn StateData>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Any + Clone + Send + Sync> StateData for T {
    fn clone_box(&self) -> Box<dyn StateData> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Per-cycle state, keyed by a name (by convention the plugin's name and
/// phase, e.g. `"PreFilterInterPodAffinity"`).
#[derive(Default)]
pub struct CycleState {
    data: HashMap<&'static str, Box<dyn StateData>>,
}

impl Clone for CycleState {
    fn clone(&self) -> Self {
        CycleState {
            data: self
                .data
                .iter()
                .map(|(k, v)| (*k, (**v).clone_box()))
                .collect(),
        }
    }
}

impl CycleState {
    pub fn write<T: StateData>(&mut self, key: &'static str, value: T) {
        self.data.insert(key, Box::new(value));
    }

    pub fn read<T: 'static>(&self, key: &'static str) -> Option<&T> {
        self.data
            .get(key)
            .and_then(|b| (**b).as_any().downcast_ref::<T>())
    }

    pub fn read_mut<T: 'static>(&mut self, key: &'static str) -> Option<&mut T> {
        self.data
            .get_mut(key)
            .and_then(|b| (**b).as_any_mut().downcast_mut::<T>())
    }
}

/// A scheduling plugin. Every phase has a default that does nothing, so a
/// plugin implements only what it takes part in. Plugins are stateless
/// between cycles; anything per-cycle goes in `CycleState`.
pub trait Plugin: Send + Sync {
    /// Kubernetes' name for the plugin (`NodeResourcesFit`, ...).
    fn name(&self) -> &'static str;

    /// Once per cycle before filtering. An error makes the pod
    /// unschedulable on every node with that status.
    fn pre_filter(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> Result<(), Status> {
        Ok(())
    }

    /// Whether `node` can take `pod`.
    fn filter(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> Result<(), Status> {
        Ok(())
    }

    /// PreFilter extensions: keep the PreFilter state right when preemption
    /// (or a nominated pod) adds or removes `other` on `node` during the cycle.
    fn add_pod(&self, _state: &mut CycleState, _pod: &PodInfo, _other: &PodInfo, _node: &NodeInfo) {
    }
    fn remove_pod(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _other: &PodInfo,
        _node: &NodeInfo,
    ) {
    }

    /// Once per cycle over the feasible nodes, before scoring.
    fn pre_score(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _snapshot: &Snapshot,
        _nodes: &[Arc<NodeInfo>],
    ) {
    }

    /// A raw score for `node`; whether the plugin scores at all is said by
    /// its weight in the profile.
    fn score(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> i64 {
        0
    }

    /// Brings raw scores (one per feasible node, in order) to 0..=100.
    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [i64]) {}
}

/// The plugins of one scheduler profile, in the order they run.
pub struct Profile {
    pub scheduler_name: String,
    /// PreFilter and Filter, in upstream's default order.
    pub filters: Vec<Arc<dyn Plugin>>,
    /// PreScore, Score and NormalizeScore, with each plugin's weight.
    pub scorers: Vec<(Arc<dyn Plugin>, i64)>,
}
