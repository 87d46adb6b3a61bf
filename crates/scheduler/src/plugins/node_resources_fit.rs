//! NodeResourcesFit: the pod's requests must fit in what the node's
//! allocatable leaves after the pods already there; every shortage is
//! reported. Scoring is upstream's default `LeastAllocated` over CPU and
//! memory (weight 1 each), on the scoring (non-zero) requests.

use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Status, MAX_NODE_SCORE};

pub const NAME: &str = "NodeResourcesFit";

pub struct NodeResourcesFit;

/// One shortage: its reason, and whether the request exceeds the node's
/// whole allocatable (then no preemption can help).
struct Shortage {
    reason: String,
    unresolvable: bool,
}

/// The shortages of `pod` on `node`; empty when it fits. A resource the pod
/// does not request is not checked (but every pod takes a pod slot).
fn shortages(pod: &PodInfo, node: &NodeInfo) -> Vec<Shortage> {
    let mut out = Vec::new();
    let alloc = &node.allocatable;
    let used = &node.requested;
    if node.pods.len() as i64 + 1 > alloc.allowed_pod_number {
        out.push(Shortage {
            reason: "Too many pods".into(),
            unresolvable: false,
        });
    }
    let req = &pod.requests;
    let mut check = |name: &str, want: i64, have: i64, used: i64| {
        if want > 0 && want > have - used {
            out.push(Shortage {
                reason: format!("Insufficient {name}"),
                unresolvable: want > have,
            });
        }
    };
    check("cpu", req.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    check("memory", req.memory, alloc.memory, used.memory);
    check(
        "ephemeral-storage",
        req.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, want) in &req.scalar {
        let have = alloc.scalar.get(name).copied().unwrap_or(0);
        let taken = used.scalar.get(name).copied().unwrap_or(0);
        check(name, *want, have, taken);
    }
    out
}

/// `(allocatable - requested) * 100 / allocatable`, 0 when over-committed.
fn least_requested(requested: i64, allocatable: i64) -> i64 {
    if allocatable == 0 || requested > allocatable {
        return 0;
    }
    (allocatable - requested) * MAX_NODE_SCORE / allocatable
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    /// As upstream, the code is UnschedulableAndUnresolvable when some
    /// request exceeds the node's allocatable outright (preemption cannot
    /// help), Unschedulable otherwise.
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let short = shortages(pod, node);
        if short.is_empty() {
            return Ok(());
        }
        let mut status = Status::unschedulable(NAME, "");
        if short.iter().any(|s| s.unresolvable) {
            status.code = crate::framework::Code::UnschedulableAndUnresolvable;
        }
        status.reasons = short.into_iter().map(|s| s.reason).collect();
        Err(status)
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let alloc = &node.allocatable;
        let cpu = node.non_zero_requested.milli_cpu + pod.non_zero_requests.milli_cpu;
        let mem = node.non_zero_requested.memory + pod.non_zero_requests.memory;
        let (mut sum, mut weights) = (0, 0);
        for (requested, allocatable) in [(cpu, alloc.milli_cpu), (mem, alloc.memory)] {
            if allocatable == 0 {
                continue;
            }
            sum += least_requested(requested, allocatable);
            weights += 1;
        }
        if weights == 0 {
            0
        } else {
            sum / weights
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    fn requesting(name: &str, requests: Value) -> std::sync::Arc<PodInfo> {
        pod(json!({"metadata": {"name": name}, "spec": {"containers": [
            {"name": "c", "image": "x", "resources": {"requests": requests}}]}}))
    }

    fn sized(
        cpu: &str,
        memory: &str,
        pods: &str,
        existing: &[std::sync::Arc<PodInfo>],
    ) -> crate::framework::NodeInfo {
        node_info(
            node(
                json!({"metadata": {"name": "n"}, "status": {"allocatable": {
                "cpu": cpu, "memory": memory, "pods": pods, "example.com/gpu": "1"}}}),
            ),
            existing,
        )
    }

    #[test]
    fn fits_and_shortages() {
        let st = CycleState::default();
        let n = sized(
            "2",
            "4Gi",
            "110",
            &[requesting("old", json!({"cpu": "1500m", "memory": "3Gi"}))],
        );
        assert!(NodeResourcesFit
            .filter(
                &st,
                &requesting("p", json!({"cpu": "500m", "memory": "1Gi"})),
                &n
            )
            .is_ok());
        // Both cpu and memory short: both reported, one status.
        let err = NodeResourcesFit
            .filter(
                &st,
                &requesting("p", json!({"cpu": "600m", "memory": "2Gi"})),
                &n,
            )
            .unwrap_err();
        assert_eq!(err.code, Code::Unschedulable);
        assert_eq!(err.reasons, vec!["Insufficient cpu", "Insufficient memory"]);
        // More than the node has at all: preemption cannot help.
        let err = NodeResourcesFit
            .filter(&st, &requesting("p", json!({"cpu": "3"})), &n)
            .unwrap_err();
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(err.reasons, vec!["Insufficient cpu"]);
        // Extended resources.
        let err = NodeResourcesFit
            .filter(&st, &requesting("p", json!({"example.com/gpu": "2"})), &n)
            .unwrap_err();
        assert_eq!(err.reasons, vec!["Insufficient example.com/gpu"]);
        assert!(NodeResourcesFit
            .filter(&st, &requesting("p", json!({"example.com/gpu": "1"})), &n)
            .is_ok());
        let err = NodeResourcesFit
            .filter(
                &st,
                &requesting("p", json!({"ephemeral-storage": "1Gi"})),
                &n,
            )
            .unwrap_err();
        assert_eq!(err.reasons, vec!["Insufficient ephemeral-storage"]);
        // A pod requesting nothing fits a full node but still needs a slot.
        let full = sized(
            "1",
            "1Gi",
            "1",
            &[requesting("old", json!({"cpu": "1", "memory": "1Gi"}))],
        );
        let err = NodeResourcesFit
            .filter(&st, &requesting("p", json!({})), &full)
            .unwrap_err();
        assert_eq!(err.reasons, vec!["Too many pods"]);
        let roomy = sized(
            "1",
            "1Gi",
            "2",
            &[requesting("old", json!({"cpu": "1", "memory": "1Gi"}))],
        );
        assert!(NodeResourcesFit
            .filter(&st, &requesting("p", json!({})), &roomy)
            .is_ok());
        let err = NodeResourcesFit
            .filter(&st, &requesting("p", json!({"cpu": "100m"})), &full)
            .unwrap_err();
        assert_eq!(err.reasons, vec!["Too many pods", "Insufficient cpu"]);
    }

    #[test]
    fn init_containers_count() {
        let st = CycleState::default();
        let n = sized("2", "4Gi", "110", &[]);
        // The init container alone needs 3 CPUs: more than the node has.
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "init", "image": "x", "resources": {"requests": {"cpu": "3"}}}],
            "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "100m"}}}]}}));
        let err = NodeResourcesFit.filter(&st, &p, &n).unwrap_err();
        assert_eq!(err.reasons, vec!["Insufficient cpu"]);
        let p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "init", "image": "x", "resources": {"requests": {"cpu": "2"}}}],
            "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "100m"}}}]}}));
        assert!(NodeResourcesFit.filter(&st, &p, &n).is_ok());
    }

    #[test]
    fn least_allocated() {
        let empty = sized("4", "8Gi", "110", &[]);
        let busy = sized(
            "4",
            "8Gi",
            "110",
            &[requesting("old", json!({"cpu": "2", "memory": "4Gi"}))],
        );
        let snap = snapshot(vec![empty, busy]);
        let p = requesting("p", json!({"cpu": "1", "memory": "2Gi"}));
        // empty: cpu (4-1)/4 = 75, mem 75 → 75; busy: (4-3)/4 = 25 each.
        assert_eq!(run_score(&NodeResourcesFit, &p, &snap), vec![75, 25]);
        // A pod requesting nothing counts as 100m and 200Mi.
        let p = requesting("p", json!({}));
        let cpu = (4000 - 100) * 100 / 4000;
        let mem = (8192 - 200) * 100 / 8192;
        assert_eq!(run_score(&NodeResourcesFit, &p, &snap)[0], (cpu + mem) / 2);
    }
}
