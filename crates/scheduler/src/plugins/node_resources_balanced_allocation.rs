//! NodeResourcesBalancedAllocation: favours nodes whose CPU and memory
//! would be used in equal fractions once the pod is there,
//! `(1 - std deviation of the fractions) * 100`.
//!
//! As upstream (since the scorer uses `useRequested`), the fractions are
//! taken from the real requests of the node's pods plus the pod's, not
//! the non-zero scoring defaults, and a pod requesting neither CPU nor
//! memory is not scored at all (every node gets 0), so best-effort pods do
//! not pile onto one node (kubernetes#129138).

use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, MAX_NODE_SCORE};

pub const NAME: &str = "NodeResourcesBalancedAllocation";

pub struct NodeResourcesBalancedAllocation;

/// `(1 - std) * 100` over the fractions `requested / allocatable` (capped
/// at 1) of the resources the node offers.
fn balanced_score(pairs: &[(i64, i64)]) -> i64 {
    let fractions: Vec<f64> = pairs
        .iter()
        .filter(|(_, alloc)| *alloc != 0)
        .map(|(req, alloc)| (*req as f64 / *alloc as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            (fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64)
                .sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

impl Plugin for NodeResourcesBalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let req = &pod.requests;
        if req.milli_cpu == 0 && req.memory == 0 {
            return 0;
        }
        let alloc = &node.allocatable;
        balanced_score(&[
            (node.requested.milli_cpu + req.milli_cpu, alloc.milli_cpu),
            (node.requested.memory + req.memory, alloc.memory),
        ])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::plugins::testutil::*;

    fn requesting(name: &str, requests: Value) -> std::sync::Arc<PodInfo> {
        pod(json!({"metadata": {"name": name}, "spec": {"containers": [
            {"name": "c", "image": "x", "resources": {"requests": requests}}]}}))
    }

    #[test]
    fn balance() {
        let n = |existing: &[std::sync::Arc<PodInfo>]| {
            node_info(
                node(
                    json!({"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"}}}),
                ),
                existing,
            )
        };
        let snap = snapshot(vec![
            n(&[]),
            n(&[requesting("cpu-heavy", json!({"cpu": "2"}))]),
        ]);
        let p = requesting("p", json!({"cpu": "1", "memory": "1Gi"}));
        // Empty: 1/4 and 1/4 → 100. cpu-heavy: 3/4 and 1/4 → std 0.25 → 75.
        assert_eq!(
            run_score(&NodeResourcesBalancedAllocation, &p, &snap),
            vec![100, 75]
        );
        // Best-effort pods are not scored.
        let be = requesting("be", json!({}));
        assert_eq!(
            run_score(&NodeResourcesBalancedAllocation, &be, &snap),
            vec![0, 0]
        );
        // Three resources: the population standard deviation of .5, .25, 1.
        assert_eq!(balanced_score(&[(1, 2), (1, 4), (1, 1)]), 68);
    }
}
