//! NodeName: a pod that names its node (`spec.nodeName`) fits only there.

use crate::framework::{CycleState, NodeInfo, Plugin, PodInfo, Status};

pub const NAME: &str = "NodeName";
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        match pod.node_name() {
            Some(name) if name != node.name => Err(Status::unresolvable(NAME, ERR_REASON)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plugins::testutil::*;

    #[test]
    fn requested_node() {
        let snap = snapshot(vec![
            node_info(labeled_node("a", &[]), &[]),
            node_info(labeled_node("b", &[]), &[]),
        ]);
        let named = pod(json!({"metadata": {"name": "p"}, "spec": {"nodeName": "b"}}));
        assert_eq!(feasible(&NodeName, &named, &snap), vec!["b"]);
        let free = pod(json!({"metadata": {"name": "q"}}));
        assert_eq!(feasible(&NodeName, &free, &snap), vec!["a", "b"]);
    }
}
