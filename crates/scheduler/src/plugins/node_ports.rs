//! NodePorts: a host port (protocol, port) is free on a node only if no pod
//! there holds it on the same address; `0.0.0.0` stands for every address,
//! so it conflicts with any use of the port and any use conflicts with it.

use crate::framework::{CycleState, HostPort, NodeInfo, Plugin, PodInfo, Status};

pub const NAME: &str = "NodePorts";
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

const ANY_IP: &str = "0.0.0.0";

pub struct NodePorts;

fn conflicts(want: &HostPort, used: &HostPort) -> bool {
    let (ip, proto, port) = want;
    let (uip, uproto, uport) = used;
    port == uport && proto == uproto && (ip == ANY_IP || uip == ANY_IP || ip == uip)
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
        let taken = pod
            .host_ports
            .iter()
            .any(|w| node.used_ports.iter().any(|u| conflicts(w, u)));
        if taken {
            Err(Status::unschedulable(NAME, ERR_REASON))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::framework::Code;
    use crate::plugins::testutil::*;

    fn with_ports(name: &str, ports: Value) -> std::sync::Arc<PodInfo> {
        pod(
            json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "x", "ports": ports}]}}),
        )
    }

    fn fits(existing: Value, wanted: Value) -> Result<(), Status> {
        let n = node_info(labeled_node("n", &[]), &[with_ports("old", existing)]);
        NodePorts.filter(&CycleState::default(), &with_ports("new", wanted), &n)
    }

    #[test]
    fn host_port_conflicts() {
        // Same port and protocol on every address.
        let err = fits(
            json!([{"containerPort": 80, "hostPort": 8080}]),
            json!([{"containerPort": 80, "hostPort": 8080}]),
        )
        .unwrap_err();
        assert_eq!(err.code, Code::Unschedulable);
        assert_eq!(err.reasons, vec![ERR_REASON.to_string()]);
        // Another protocol or port is free.
        assert!(fits(
            json!([{"containerPort": 80, "hostPort": 8080}]),
            json!([{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}])
        )
        .is_ok());
        assert!(fits(
            json!([{"containerPort": 80, "hostPort": 8080}]),
            json!([{"containerPort": 80, "hostPort": 8081}])
        )
        .is_ok());
        // 0.0.0.0 against a specific address, both ways.
        assert!(fits(
            json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]),
            json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "0.0.0.0"}])
        )
        .is_err());
        assert!(fits(
            json!([{"containerPort": 80, "hostPort": 8080}]),
            json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}])
        )
        .is_err());
        // Two different specific addresses do not conflict.
        assert!(fits(
            json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.1"}]),
            json!([{"containerPort": 80, "hostPort": 8080, "hostIP": "10.0.0.2"}])
        )
        .is_ok());
        // Container ports without a host port take nothing.
        assert!(fits(
            json!([{"containerPort": 80}]),
            json!([{"containerPort": 80}])
        )
        .is_ok());
    }
}
