//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only
//! pods that tolerate the `node.kubernetes.io/unschedulable:NoSchedule`
//! taint.

use k8s_openapi::api::core::v1::Taint;

use super::helper::{pod_tolerations, tolerations_tolerate, EFFECT_NO_SCHEDULE};
use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Status};

pub const NAME: &str = "NodeUnschedulable";
pub const ERR_REASON: &str = "node(s) were unschedulable";
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        if !node
            .node
            .spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
        {
            return Ok(());
        }
        let taint = Taint {
            key: TAINT_NODE_UNSCHEDULABLE.into(),
            effect: EFFECT_NO_SCHEDULE.into(),
            ..Default::default()
        };
        if tolerations_tolerate(pod_tolerations(&pod.pod), &taint) {
            return Ok(());
        }
        Err(Status::unresolvable(NAME, ERR_REASON))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    #[test]
    fn cordoned_node() {
        let cordoned = node_info(
            node(json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}})),
            &[],
        );
        let open = node_info(node(json!({"metadata": {"name": "m"}})), &[]);
        let p = pod(json!({"metadata": {"name": "p"}}));
        let st = CycleState::default();
        let err = NodeUnschedulable.filter(&st, &p, &cordoned).unwrap_err();
        assert_eq!(err.code, Code::UnschedulableAndUnresolvable);
        assert_eq!(err.reasons, vec![ERR_REASON.to_string()]);
        assert!(NodeUnschedulable.filter(&st, &p, &open).is_ok());
        let tolerant = pod(json!({"metadata": {"name": "t"}, "spec": {"tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}}));
        assert!(NodeUnschedulable.filter(&st, &tolerant, &cordoned).is_ok());
        let wrong_effect = pod(json!({"metadata": {"name": "w"}, "spec": {"tolerations": [
            {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}]}}));
        assert!(NodeUnschedulable
            .filter(&st, &wrong_effect, &cordoned)
            .is_err());
    }
}
