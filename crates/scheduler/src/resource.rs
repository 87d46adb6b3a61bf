//! What a pod requests and what a node offers, as `Resource` sums
//! (upstream's `resourcehelper.PodRequests` and `NodeInfo.Allocatable`).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::framework::{HostPort, PodInfo, Resource};

/// Scoring treats a container that requests nothing as requesting this
/// much, so empty pods still spread (upstream's non-zero defaults).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

fn milli(q: &Quantity) -> i64 {
    resources::validation::quantity::parse_quantity(&q.0)
        .map(|q| q.milli_value().clamp(0, i64::MAX as i128) as i64)
        .unwrap_or(0)
}

fn value(q: &Quantity) -> i64 {
    resources::validation::quantity::parse_quantity(&q.0)
        .map(|q| q.value().clamp(0, i64::MAX as i128) as i64)
        .unwrap_or(0)
}

/// A resource list (`requests`, `allocatable`, `overhead`) as a `Resource`.
pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resource {
    let mut r = Resource::default();
    for (name, q) in list {
        match name.as_str() {
            "cpu" => r.milli_cpu = milli(q),
            "memory" => r.memory = value(q),
            "ephemeral-storage" => r.ephemeral_storage = value(q),
            "pods" => r.allowed_pod_number = value(q),
            other if is_scalar(other) => {
                r.scalar.insert(other.to_string(), value(q));
            }
            _ => {}
        }
    }
    r
}

/// Extended resources (`domain/name` outside kubernetes.io), hugepages
/// and attachable volumes are counted; anything else is not a resource
/// the scheduler fits.
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
        || (name.contains('/') && !name.starts_with("kubernetes.io/"))
}

fn container_requests(c: &Container) -> Resource {
    c.resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(from_list)
        .unwrap_or_default()
}

fn with_defaults(mut r: Resource) -> Resource {
    if r.milli_cpu == 0 {
        r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
    }
    if r.memory == 0 {
        r.memory = DEFAULT_MEMORY_REQUEST;
    }
    r
}

/// The pod's effective requests: the app containers and restartable init
/// containers (sidecars) run together; each ordinary init container runs
/// alone beside the sidecars started before it; the larger of the two
/// wins, then the pod overhead is added. `non_zero` applies the scoring
/// defaults per container.
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let per = |c: &Container| {
        let r = container_requests(c);
        if non_zero {
            with_defaults(r)
        } else {
            r
        }
    };
    let mut running = Resource::default();
    for c in &spec.containers {
        running.add(&per(c));
    }
    let mut sidecars = Resource::default();
    let mut init_peak = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = per(c);
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            init_peak.set_max(&sidecars);
        } else {
            let mut during = sidecars.clone();
            during.add(&r);
            init_peak.set_max(&during);
        }
    }
    running.add(&sidecars);
    running.set_max(&init_peak);
    if let Some(o) = spec.overhead.as_ref() {
        running.add(&from_list(o));
    }
    running.allowed_pod_number = 0;
    running
}

fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.is_some_and(|h| h > 0))
        .map(|p| {
            let ip = p
                .host_ip
                .clone()
                .filter(|i| !i.is_empty())
                .unwrap_or_else(|| "0.0.0.0".into());
            let proto = p.protocol.clone().unwrap_or_else(|| "TCP".into());
            (ip, proto, p.host_port.unwrap_or_default())
        })
        .collect()
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let has_required_anti_affinity = paa
            .and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .is_some_and(|t| !t.is_empty());
        let has_affinity = has_required_anti_affinity
            || pa.is_some_and(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
                    .is_some_and(|t| !t.is_empty())
                    || a.preferred_during_scheduling_ignored_during_execution
                        .as_ref()
                        .is_some_and(|t| !t.is_empty())
            })
            || paa.is_some_and(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
                    .is_some_and(|t| !t.is_empty())
            });
        let scores_others = pa.is_some_and(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
                .is_some_and(|t| !t.is_empty())
                || a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
                    .is_some_and(|t| !t.is_empty())
        }) || paa.is_some_and(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
                .is_some_and(|t| !t.is_empty())
        });
        let label_key = content_key(&(&namespace, &meta.labels));
        let anti_affinity_key = if has_required_anti_affinity {
            let terms = paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            });
            content_key(&(&namespace, &meta.labels, terms))
        } else {
            0
        };
        PodInfo {
            scores_others,
            label_key,
            anti_affinity_key,
            key: format!("{namespace}/{name}"),
            uid: meta.uid.clone().unwrap_or_default(),
            priority: pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
            requests: pod_requests(&pod, false),
            non_zero_requests: pod_requests(&pod, true),
            host_ports: host_ports(&pod),
            has_affinity,
            has_required_anti_affinity,
            namespace,
            name,
            pod,
        }
    }
}

/// A 128-bit key for a value's JSON form: two independently seeded
/// 64-bit hashes, so distinct contents colliding is not a practical concern.
fn content_key<T: serde::Serialize>(value: &T) -> u128 {
    use std::hash::{Hash, Hasher};
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let half = |seed: u64| {
        let mut h = std::hash::DefaultHasher::new();
        seed.hash(&mut h);
        bytes.hash(&mut h);
        h.finish()
    };
    (u128::from(half(0x5bd1_e995)) << 64) | u128::from(half(0x9e37_79b9_7f4a_7c15))
}

/// What the node offers: `status.allocatable` (capacity if allocatable is
/// not reported).
pub fn node_allocatable(node: &Node) -> Resource {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()))
        .map(from_list)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn init_containers_and_sidecars() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "initContainers": [
                    {"name": "big", "image": "x", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
                    {"name": "side", "image": "x", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
                    {"name": "after", "image": "x", "resources": {"requests": {"cpu": "1800m"}}}
                ],
                "containers": [
                    {"name": "a", "image": "x", "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                    {"name": "b", "image": "x", "resources": {"requests": {"cpu": "250m"}}}
                ],
                "overhead": {"cpu": "10m"}
            }
        }));
        let r = pod_requests(&p, false);
        // max(app 500m + sidecar 500m, init 2000m, sidecar+after 2300m) + 10m
        assert_eq!(r.milli_cpu, 2310);
        assert_eq!(r.memory, 1 << 30);
        let nz = pod_requests(&p, true);
        // "b" requests no memory: it counts as 200Mi for scoring.
        assert_eq!(
            nz.memory,
            (1 << 30).max(64 * 1024 * 1024 + DEFAULT_MEMORY_REQUEST + DEFAULT_MEMORY_REQUEST)
        );
    }
}
