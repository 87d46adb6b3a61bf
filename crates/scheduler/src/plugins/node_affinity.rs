//! NodeAffinity: the pod's `nodeSelector` and required node affinity pick
//! the nodes it may run on; its preferred terms add their weights to the
//! nodes they match.

use super::helper::{
    node_labels, normalize_to_max, pod_matches_node_selector_and_affinity, term_matches,
};
use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Status};

pub const NAME: &str = "NodeAffinity";
pub const ERR_REASON: &str = "node(s) didn't match Pod's node affinity/selector";

pub struct NodeAffinity;

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        if pod_matches_node_selector_and_affinity(&pod.pod, &node.node) {
            Ok(())
        } else {
            Err(Status::unresolvable(NAME, ERR_REASON))
        }
    }

    /// The sum of the weights of the preferred terms the node matches.
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(terms) = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
        else {
            return 0;
        };
        let labels = node_labels(&node.node);
        terms
            .iter()
            .filter(|t| t.weight != 0 && term_matches(&t.preference, labels, &node.name))
            .map(|t| i64::from(t.weight))
            .sum()
    }

    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        normalize_to_max(false, scores);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    fn cluster() -> crate::framework::Snapshot {
        snapshot(vec![
            node_info(
                labeled_node("a", &[("zone", "z1"), ("disk", "ssd"), ("cores", "4")]),
                &[],
            ),
            node_info(
                labeled_node("b", &[("zone", "z2"), ("disk", "hdd"), ("cores", "16")]),
                &[],
            ),
            node_info(labeled_node("c", &[("zone", "z3")]), &[]),
        ])
    }

    fn with_spec(spec: Value) -> std::sync::Arc<PodInfo> {
        pod(json!({"metadata": {"name": "p"}, "spec": spec}))
    }

    fn required(terms: Value) -> std::sync::Arc<PodInfo> {
        with_spec(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": terms}}}}),
        )
    }

    #[test]
    fn node_selector() {
        let snap = cluster();
        let p = with_spec(json!({"nodeSelector": {"disk": "ssd", "zone": "z1"}}));
        assert_eq!(feasible(&NodeAffinity, &p, &snap), vec!["a"]);
        let p = with_spec(json!({"nodeSelector": {"disk": "ssd", "zone": "z2"}}));
        assert!(feasible(&NodeAffinity, &p, &snap).is_empty());
        let err = NodeAffinity
            .filter(&CycleState::default(), &p, &snap.nodes[0])
            .unwrap_err();
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(err.reasons, vec![ERR_REASON.to_string()]);
    }

    #[test]
    fn required_terms() {
        let snap = cluster();
        // Terms are ORed, expressions within a term ANDed.
        let p = required(json!([
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]},
                                  {"key": "disk", "operator": "NotIn", "values": ["hdd"]}]},
            {"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}
        ]));
        assert_eq!(feasible(&NodeAffinity, &p, &snap), vec!["a", "c"]);
        let p = required(
            json!([{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]}]),
        );
        assert_eq!(feasible(&NodeAffinity, &p, &snap), vec!["b"]);
        let p = required(
            json!([{"matchExpressions": [{"key": "cores", "operator": "Lt", "values": ["8"]}]}]),
        );
        assert_eq!(feasible(&NodeAffinity, &p, &snap), vec!["a"]);
        let p = required(json!([{"matchExpressions": [{"key": "disk", "operator": "Exists"}]}]));
        assert_eq!(feasible(&NodeAffinity, &p, &snap), vec!["a", "b"]);
        let p = required(
            json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]}]),
        );
        assert_eq!(feasible(&NodeAffinity, &p, &snap), vec!["c"]);
        // An empty term matches nothing.
        let p = required(json!([{}]));
        assert!(feasible(&NodeAffinity, &p, &snap).is_empty());
        // nodeSelector and affinity must both hold.
        let p = with_spec(
            json!({"nodeSelector": {"zone": "z2"}, "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}]}}}}),
        );
        assert_eq!(feasible(&NodeAffinity, &p, &snap), vec!["b"]);
    }

    #[test]
    fn preferred_score() {
        let snap = cluster();
        let p = with_spec(
            json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 10, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
                {"weight": 30, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1", "z2"]}]}}
            ]}}}),
        );
        // a: 40, b: 30, c: 0 → scaled to the maximum.
        assert_eq!(run_score(&NodeAffinity, &p, &snap), vec![100, 75, 0]);
        let plain = with_spec(json!({}));
        assert_eq!(run_score(&NodeAffinity, &plain, &snap), vec![0, 0, 0]);
    }
}
