//! TaintToleration: a node's NoSchedule and NoExecute taints keep off the
//! pods that do not tolerate them; PreferNoSchedule taints the pod does not
//! tolerate lower the node's score.

use super::helper::{
    find_untolerated_taint, is_do_not_schedule, node_taints, normalize_to_max, pod_tolerations,
    tolerates, EFFECT_PREFER_NO_SCHEDULE,
};
use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Status};

pub const NAME: &str = "TaintToleration";

pub struct TaintToleration;

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let taints = node_taints(&node.node);
        match find_untolerated_taint(taints, pod_tolerations(&pod.pod), is_do_not_schedule) {
            None => Ok(()),
            Some(t) => Err(Status::unresolvable(
                NAME,
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    t.key,
                    t.value.as_deref().unwrap_or("")
                ),
            )),
        }
    }

    /// How many PreferNoSchedule taints the pod does not tolerate; only
    /// tolerations with that effect (or none) count.
    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let tolerations = pod_tolerations(&pod.pod);
        let prefer = |t: &&k8s_openapi::api::core::v1::Toleration| {
            t.effect
                .as_deref()
                .is_none_or(|e| e.is_empty() || e == EFFECT_PREFER_NO_SCHEDULE)
        };
        node_taints(&node.node)
            .iter()
            .filter(|taint| taint.effect == EFFECT_PREFER_NO_SCHEDULE)
            .filter(|taint| {
                !tolerations
                    .iter()
                    .filter(prefer)
                    .any(|t| tolerates(t, taint))
            })
            .count() as i64
    }

    /// Fewer intolerable taints score higher.
    fn normalize_score(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        normalize_to_max(true, scores);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    fn tainted(name: &str, taints: Value) -> crate::framework::NodeInfo {
        node_info(
            node(json!({"metadata": {"name": name}, "spec": {"taints": taints}})),
            &[],
        )
    }

    fn tolerating(tolerations: Value) -> std::sync::Arc<PodInfo> {
        pod(json!({"metadata": {"name": "p"}, "spec": {"tolerations": tolerations}}))
    }

    fn check(taints: Value, tolerations: Value) -> Result<(), Status> {
        TaintToleration.filter(
            &CycleState::default(),
            &tolerating(tolerations),
            &tainted("n", taints),
        )
    }

    #[test]
    fn operators() {
        let gpu = json!([{"key": "gpu", "value": "true", "effect": "NoSchedule"}]);
        // Equal (explicit or default) compares the value.
        assert!(check(
            gpu.clone(),
            json!([{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}])
        )
        .is_ok());
        assert!(check(gpu.clone(), json!([{"key": "gpu", "value": "true"}])).is_ok());
        assert!(check(
            gpu.clone(),
            json!([{"key": "gpu", "value": "false", "effect": "NoSchedule"}])
        )
        .is_err());
        // Exists ignores the value; the empty key with Exists tolerates all.
        assert!(check(gpu.clone(), json!([{"key": "gpu", "operator": "Exists"}])).is_ok());
        assert!(check(gpu.clone(), json!([{"operator": "Exists"}])).is_ok());
        // A different effect does not tolerate.
        assert!(check(
            gpu.clone(),
            json!([{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}])
        )
        .is_err());
        // PreferNoSchedule taints never block.
        assert!(check(
            json!([{"key": "x", "effect": "PreferNoSchedule"}]),
            json!([])
        )
        .is_ok());
        // NoExecute blocks as NoSchedule does.
        assert!(check(json!([{"key": "x", "effect": "NoExecute"}]), json!([])).is_err());
    }

    #[test]
    fn reason_format() {
        let err = check(
            json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
            json!([]),
        )
        .unwrap_err();
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(
            err.reasons,
            vec!["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
        );
        let err = check(
            json!([{"key": "a", "value": "b", "effect": "NoExecute"}]),
            json!([]),
        )
        .unwrap_err();
        assert_eq!(err.reasons, vec!["node(s) had untolerated taint {a: b}"]);
    }

    #[test]
    fn prefer_no_schedule_score() {
        let snap = snapshot(vec![
            tainted("clean", json!([])),
            tainted("one", json!([{"key": "a", "effect": "PreferNoSchedule"}])),
            tainted(
                "two",
                json!([{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}]),
            ),
        ]);
        let p = tolerating(json!([]));
        assert_eq!(run_score(&TaintToleration, &p, &snap), vec![100, 50, 0]);
        // Tolerating "a" with PreferNoSchedule (or no effect) counts; a
        // NoSchedule toleration does not.
        let p =
            tolerating(json!([{"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"}]));
        assert_eq!(run_score(&TaintToleration, &p, &snap), vec![100, 100, 0]);
        let p = tolerating(json!([{"key": "a", "operator": "Exists", "effect": "NoSchedule"}]));
        assert_eq!(run_score(&TaintToleration, &p, &snap), vec![100, 50, 0]);
    }
}
