//! Quality of service: the pod's cgroup parent and the runtime resources of
//! a container, as the kubelet's container manager and kuberuntime compute
//! them (cgroupfs driver: `/kubepods[/burstable|/besteffort]/pod<uid>`).

use k8s_openapi::api::core::v1::{Container, Pod};
use resources::validation::quantity::parse_quantity;

use crate::cri::api::LinuxContainerResources;

pub const CPU_PERIOD: i64 = 100_000;
const MIN_SHARES: i64 = 2;
const MAX_SHARES: i64 = 262_144;

pub fn qos_class(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.qos_class.as_deref())
        .unwrap_or("BestEffort")
}

/// The pod's cgroup under `root` (normally `/kubepods`).
pub fn pod_cgroup_parent(root: &str, pod: &Pod) -> String {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    match qos_class(pod) {
        "Guaranteed" => format!("{root}/pod{uid}"),
        "Burstable" => format!("{root}/burstable/pod{uid}"),
        _ => format!("{root}/besteffort/pod{uid}"),
    }
}

fn quantity(c: &Container, limits: bool, name: &str) -> Option<i128> {
    let r = c.resources.as_ref()?;
    let map = if limits {
        r.limits.as_ref()?
    } else {
        r.requests.as_ref()?
    };
    let q = parse_quantity(&map.get(name)?.0).ok()?;
    Some(if name == "cpu" {
        q.milli_value()
    } else {
        q.value()
    })
}

/// CPU shares from the request (or the limit when only that is set, as
/// defaulting copies it), quota from the limit, memory limit, and the OOM
/// score adjustment of the pod's QoS class.
pub fn container_resources(
    pod: &Pod,
    c: &Container,
    node_memory_bytes: u64,
) -> LinuxContainerResources {
    let cpu_request = quantity(c, false, "cpu").or_else(|| quantity(c, true, "cpu"));
    let cpu_limit = quantity(c, true, "cpu");
    let memory_limit = quantity(c, true, "memory").unwrap_or(0);
    let memory_request = quantity(c, false, "memory")
        .or_else(|| quantity(c, true, "memory"))
        .unwrap_or(0);
    let shares = match cpu_request {
        Some(m) if m > 0 => ((m as i64) * 1024 / 1000).clamp(MIN_SHARES, MAX_SHARES),
        _ => MIN_SHARES,
    };
    let quota = cpu_limit
        .filter(|m| *m > 0)
        .map(|m| ((m as i64) * CPU_PERIOD / 1000).max(1000))
        .unwrap_or(0);
    LinuxContainerResources {
        cpu_period: if quota > 0 { CPU_PERIOD } else { 0 },
        cpu_quota: quota,
        cpu_shares: shares,
        memory_limit_in_bytes: memory_limit as i64,
        oom_score_adj: oom_score_adj(pod, memory_request as u64, node_memory_bytes),
        ..Default::default()
    }
}

/// As the kubelet's qos policy: Guaranteed -997, BestEffort 1000, Burstable
/// scaled by the share of node memory requested (within 2..=999).
pub fn oom_score_adj(pod: &Pod, memory_request: u64, node_memory_bytes: u64) -> i64 {
    match qos_class(pod) {
        "Guaranteed" => -997,
        "BestEffort" => 1000,
        _ => {
            if node_memory_bytes == 0 {
                return 999;
            }
            let adj = 1000 - (1000 * memory_request as i128 / node_memory_bytes as i128) as i64;
            adj.clamp(2, 999)
        }
    }
}

/// Removes the pod's cgroup directories in every hierarchy (runc leaves the
/// pod level behind; the kubelet's pod container manager owns it).
pub fn remove_pod_cgroups(root: &str, uid: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let rel = root.trim_start_matches('/');
    for h in hierarchies.flatten() {
        for class in ["", "burstable/", "besteffort/"] {
            let dir = h.path().join(format!("{rel}/{class}pod{uid}"));
            if dir.exists() {
                // Children first (containers' dirs left by runc).
                if let Ok(children) = std::fs::read_dir(&dir) {
                    for c in children.flatten().filter(|c| c.path().is_dir()) {
                        let _ = std::fs::remove_dir(c.path());
                    }
                }
                let _ = std::fs::remove_dir(&dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn container(req: &[(&str, &str)], lim: &[(&str, &str)]) -> Container {
        let m = |v: &[(&str, &str)]| {
            Some(
                v.iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            k8s_openapi::apimachinery::pkg::api::resource::Quantity(v.to_string()),
                        )
                    })
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        Container {
            name: "c".into(),
            resources: Some(k8s_openapi::api::core::v1::ResourceRequirements {
                requests: m(req),
                limits: m(lim),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(qos: &str) -> Pod {
        Pod {
            metadata: kube::api::ObjectMeta {
                uid: Some("u1".into()),
                ..Default::default()
            },
            status: Some(k8s_openapi::api::core::v1::PodStatus {
                qos_class: Some(qos.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn cgroup_parents_by_class() {
        assert_eq!(
            pod_cgroup_parent("/kubepods", &pod("Guaranteed")),
            "/kubepods/podu1"
        );
        assert_eq!(
            pod_cgroup_parent("/kubepods", &pod("Burstable")),
            "/kubepods/burstable/podu1"
        );
        assert_eq!(
            pod_cgroup_parent("/kubepods", &pod("BestEffort")),
            "/kubepods/besteffort/podu1"
        );
    }

    #[test]
    fn shares_quota_and_memory() {
        let c = container(
            &[("cpu", "250m"), ("memory", "64Mi")],
            &[("cpu", "500m"), ("memory", "128Mi")],
        );
        let r = container_resources(&pod("Burstable"), &c, 1 << 30);
        assert_eq!(r.cpu_shares, 256);
        assert_eq!(r.cpu_quota, 50_000);
        assert_eq!(r.cpu_period, 100_000);
        assert_eq!(r.memory_limit_in_bytes, 128 << 20);
        assert_eq!(r.oom_score_adj, 1000 - 1000 * 64 / 1024);
        let none = container_resources(&pod("BestEffort"), &container(&[], &[]), 1 << 30);
        assert_eq!(
            (none.cpu_shares, none.cpu_quota, none.memory_limit_in_bytes),
            (2, 0, 0)
        );
        assert_eq!(none.oom_score_adj, 1000);
    }
}
