//! What the proxier needs of a Service, one entry per port: upstream's
//! `ServicePort` (`pkg/proxy/serviceport.go`). Headless and ExternalName
//! Services have no ports here, so they get no rules.

use std::fmt;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;

/// The session affinity timeout when `sessionAffinityConfig` leaves it out
/// (`DefaultClientIPServiceAffinitySeconds`, 3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT_SECONDS: u32 = 10800;

/// A Service port's protocol, as nft spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// `TCP` (the default when unset), `UDP` or `SCTP`.
    pub fn parse(p: Option<&str>) -> Option<Protocol> {
        match p.unwrap_or("TCP") {
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One port of a Service, with everything that shapes its rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePortInfo {
    pub namespace: String,
    pub name: String,
    /// `spec.ports[].name` (empty for a single unnamed port).
    pub port_name: String,
    pub protocol: Protocol,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    /// Set for NodePort and LoadBalancer Services.
    pub node_port: Option<u16>,
    pub external_ips: Vec<Ipv4Addr>,
    /// `status.loadBalancer.ingress[].ip` of a LoadBalancer Service
    /// (except `ipMode: Proxy`, which the load balancer itself terminates).
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// `sessionAffinity: ClientIP`: the stickiness timeout in seconds.
    pub affinity_timeout: Option<u32>,
    /// `internalTrafficPolicy: Local`.
    pub internal_policy_local: bool,
    /// `externalTrafficPolicy: Local`, on a Service reachable from outside.
    pub external_policy_local: bool,
}

impl ServicePortInfo {
    /// `ns/name/protocol/port-name`: what names this port in chain names.
    pub fn port_name_string(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.namespace, self.name, self.protocol, self.port_name
        )
    }

    /// Reachable through a NodePort, an external IP or a load balancer.
    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some()
            || !self.external_ips.is_empty()
            || !self.load_balancer_ips.is_empty()
    }

    /// Whether any traffic uses the Cluster-policy endpoints: internal traffic
    /// under Cluster policy, or external traffic at all (pods and the node
    /// itself short-circuit to them even under `externalTrafficPolicy: Local`).
    pub fn uses_cluster_endpoints(&self) -> bool {
        !self.internal_policy_local || self.externally_accessible()
    }

    /// Whether any traffic uses only node-local endpoints.
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_policy_local || self.external_policy_local
    }
}

/// The ports of `svc` the proxier programs: none for ExternalName and
/// headless Services, or while the cluster IP is not allocated (or IPv6).
pub fn service_ports(svc: &Service) -> Vec<ServicePortInfo> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    if type_ == "ExternalName" {
        return Vec::new();
    }
    // The first IPv4 cluster IP; "None" (headless) and "" do not parse.
    let cluster_ip = spec
        .cluster_ips
        .iter()
        .flatten()
        .chain(spec.cluster_ip.iter())
        .find_map(|ip| ip.parse::<Ipv4Addr>().ok());
    let Some(cluster_ip) = cluster_ip else {
        return Vec::new();
    };
    let external_ips: Vec<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let load_balancer_ips: Vec<Ipv4Addr> = if type_ == "LoadBalancer" {
        svc.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter(|i| i.ip_mode.as_deref() != Some("Proxy"))
            .filter_map(|i| i.ip.as_deref()?.parse().ok())
            .collect()
    } else {
        Vec::new()
    };
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT_SECONDS)
    });
    let internal_policy_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let external_local = spec.external_traffic_policy.as_deref() == Some("Local");
    let node_ports_apply = matches!(type_, "NodePort" | "LoadBalancer");

    let namespace = svc.metadata.namespace.clone().unwrap_or_default();
    let name = svc.metadata.name.clone().unwrap_or_default();
    let mut out = Vec::new();
    for p in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(p.protocol.as_deref()) else {
            continue;
        };
        let Ok(port) = u16::try_from(p.port) else {
            continue;
        };
        let node_port = if node_ports_apply {
            p.node_port
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n != 0)
        } else {
            None
        };
        let mut info = ServicePortInfo {
            namespace: namespace.clone(),
            name: name.clone(),
            port_name: p.name.clone().unwrap_or_default(),
            protocol,
            cluster_ip,
            port,
            node_port,
            external_ips: external_ips.clone(),
            load_balancer_ips: load_balancer_ips.clone(),
            affinity_timeout,
            internal_policy_local,
            external_policy_local: false,
        };
        info.external_policy_local = external_local && info.externally_accessible();
        out.push(info);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(json: serde_json::Value) -> Service {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn headless_and_external_name_get_nothing() {
        let headless = svc(serde_json::json!({
            "metadata": {"namespace": "default", "name": "h"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
        }));
        assert!(service_ports(&headless).is_empty());
        let ext = svc(serde_json::json!({
            "metadata": {"namespace": "default", "name": "e"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}
        }));
        assert!(service_ports(&ext).is_empty());
    }

    #[test]
    fn load_balancer_port() {
        let s = svc(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "web"},
            "spec": {
                "type": "LoadBalancer", "clusterIP": "10.43.0.9",
                "externalTrafficPolicy": "Local", "sessionAffinity": "ClientIP",
                "ports": [{"name": "http", "port": 80, "nodePort": 30080},
                          {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053},
                          {"name": "odd", "port": 1, "protocol": "ICMP"}]
            },
            "status": {"loadBalancer": {"ingress": [
                {"ip": "172.30.0.2"}, {"ip": "172.30.0.3", "ipMode": "Proxy"}, {"hostname": "x"}]}}
        }));
        let ports = service_ports(&s);
        assert_eq!(ports.len(), 2);
        let p = &ports[0];
        assert_eq!(p.port_name_string(), "ns/web/tcp/http");
        assert_eq!(p.node_port, Some(30080));
        assert_eq!(
            p.load_balancer_ips,
            vec!["172.30.0.2".parse::<Ipv4Addr>().unwrap()]
        );
        assert_eq!(p.affinity_timeout, Some(DEFAULT_AFFINITY_TIMEOUT_SECONDS));
        assert!(p.external_policy_local && !p.internal_policy_local);
        assert!(p.uses_cluster_endpoints() && p.uses_local_endpoints());
        assert_eq!(ports[1].protocol, Protocol::Udp);
    }

    #[test]
    fn external_policy_needs_external_access() {
        let s = svc(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "c"},
            "spec": {"clusterIP": "10.43.0.5", "externalTrafficPolicy": "Local",
                     "internalTrafficPolicy": "Local",
                     "ports": [{"port": 80, "nodePort": 30000}]}
        }));
        let p = &service_ports(&s)[0];
        // A ClusterIP Service ignores nodePort and externalTrafficPolicy.
        assert_eq!(p.node_port, None);
        assert!(!p.external_policy_local);
        assert!(!p.uses_cluster_endpoints() && p.uses_local_endpoints());
    }
}
