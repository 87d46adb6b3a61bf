//! The endpoints of a Service port, read from its EndpointSlices, and their
//! split by traffic policy: upstream's `EndpointsMap` and
//! `CategorizeEndpoints` (`pkg/proxy/topology.go`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::service::{Protocol, ServicePortInfo};

/// One endpoint (`ip:port`) of a Service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
    /// Whether it runs on this node (`nodeName` is the proxy's node).
    pub is_local: bool,
    /// `conditions.ready` (unset counts as ready).
    pub ready: bool,
    /// `conditions.serving` (unset: as ready).
    pub serving: bool,
    /// `conditions.terminating` (unset: false).
    pub terminating: bool,
}

impl Endpoint {
    /// `ip:port`, as the endpoint appears in chain names and DNAT rules.
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// The endpoints for the Service port `port_name`/`protocol` in `slices`
/// (the IPv4 slices of one Service), sorted and without duplicates. As
/// upstream, only an endpoint's first address is used; a duplicate (the same
/// address in two slices during a move) is kept once, ready if either says so.
pub fn endpoints_for_port(
    slices: &[Arc<EndpointSlice>],
    port_name: &str,
    protocol: Protocol,
    node_name: &str,
) -> Vec<Endpoint> {
    let mut found: BTreeMap<(Ipv4Addr, u16), Endpoint> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let port = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        });
        let Some(port) = port
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for ep in &slice.endpoints {
            let Some(ip) = ep
                .addresses
                .first()
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let cond = ep.conditions.as_ref();
            let ready = cond.and_then(|c| c.ready) != Some(false);
            let endpoint = Endpoint {
                ip,
                port,
                is_local: !node_name.is_empty() && ep.node_name.as_deref() == Some(node_name),
                ready,
                serving: cond.and_then(|c| c.serving).unwrap_or(ready),
                terminating: cond.and_then(|c| c.terminating).unwrap_or(false),
            };
            found
                .entry((ip, port))
                .and_modify(|e| {
                    if endpoint.ready && !e.ready {
                        *e = endpoint.clone();
                    }
                })
                .or_insert(endpoint);
        }
    }
    found.into_values().collect()
}

/// The endpoints each traffic policy sends to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Categorized {
    /// For Cluster policy: the ready endpoints, or if none, the serving
    /// terminating ones.
    pub cluster: Vec<Endpoint>,
    /// For Local policy: the same choice among this node's endpoints.
    pub local: Vec<Endpoint>,
    /// Every endpoint some rule of this port can send to (each gets a chain).
    pub reachable: Vec<Endpoint>,
    /// Whether any endpoint anywhere can serve.
    pub has_any: bool,
}

/// Splits `endpoints` by traffic policy, as upstream's `CategorizeEndpoints`
/// (without topology hints).
pub fn categorize(endpoints: &[Endpoint], svc: &ServicePortInfo) -> Categorized {
    let mut out = Categorized::default();
    let pick = |filter: &dyn Fn(&Endpoint) -> bool| -> Vec<Endpoint> {
        let ready: Vec<Endpoint> = endpoints
            .iter()
            .filter(|e| filter(e) && e.ready)
            .cloned()
            .collect();
        if !ready.is_empty() {
            return ready;
        }
        endpoints
            .iter()
            .filter(|e| filter(e) && e.serving && e.terminating)
            .cloned()
            .collect()
    };
    if svc.uses_cluster_endpoints() {
        out.cluster = pick(&|_| true);
        out.has_any = !out.cluster.is_empty();
    }
    if !svc.uses_local_endpoints() {
        out.reachable = out.cluster.clone();
        return out;
    }
    out.has_any = out.has_any
        || endpoints
            .iter()
            .any(|e| e.ready || (e.serving && e.terminating));
    out.local = pick(&|e| e.is_local);
    if !svc.uses_cluster_endpoints() {
        out.reachable = out.local.clone();
        return out;
    }
    out.reachable = out.cluster.clone();
    for e in &out.local {
        if !out.reachable.contains(e) {
            out.reachable.push(e.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::service_ports;

    fn slice(json: serde_json::Value) -> Arc<EndpointSlice> {
        Arc::new(serde_json::from_value(json).unwrap())
    }

    fn ep(ip: &str, local: bool, ready: bool, serving: bool, terminating: bool) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            port: 8080,
            is_local: local,
            ready,
            serving,
            terminating,
        }
    }

    #[test]
    fn reads_slices() {
        let slices = vec![
            slice(serde_json::json!({
                "metadata": {"name": "a"}, "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [
                    {"addresses": ["10.42.0.12"], "nodeName": "n1"},
                    {"addresses": ["10.42.0.11"], "nodeName": "n2", "conditions": {"ready": false}},
                    {"addresses": ["not-an-ip"]}]
            })),
            slice(serde_json::json!({
                "metadata": {"name": "b"}, "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [{"addresses": ["10.42.0.11"], "conditions": {"ready": true}}]
            })),
            slice(serde_json::json!({
                "metadata": {"name": "c"}, "addressType": "IPv6",
                "ports": [{"name": "http", "port": 8080}],
                "endpoints": [{"addresses": ["fd00::1"]}]
            })),
        ];
        let eps = endpoints_for_port(&slices, "http", Protocol::Tcp, "n1");
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].address(), "10.42.0.11:8080");
        assert!(eps[0].ready && !eps[0].is_local);
        assert!(eps[1].is_local);
        assert!(endpoints_for_port(&slices, "http", Protocol::Udp, "n1").is_empty());
        assert!(endpoints_for_port(&slices, "", Protocol::Tcp, "n1").is_empty());
    }

    fn port(json: serde_json::Value) -> ServicePortInfo {
        service_ports(&serde_json::from_value(json).unwrap()).remove(0)
    }

    #[test]
    fn cluster_policy_falls_back_to_serving_terminating() {
        let p = port(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "s"},
            "spec": {"clusterIP": "10.43.0.5", "ports": [{"port": 80}]}
        }));
        let all = vec![
            ep("10.42.0.1", false, false, true, true),
            ep("10.42.0.2", false, false, false, true),
        ];
        let c = categorize(&all, &p);
        assert_eq!(c.cluster, vec![all[0].clone()]);
        assert!(c.has_any && c.local.is_empty());
        let with_ready = vec![all[0].clone(), ep("10.42.0.3", false, true, true, false)];
        assert_eq!(categorize(&with_ready, &p).cluster.len(), 1);
        assert!(!categorize(&[], &p).has_any);
    }

    #[test]
    fn local_policies() {
        let itp = port(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "s"},
            "spec": {"clusterIP": "10.43.0.5", "internalTrafficPolicy": "Local", "ports": [{"port": 80}]}
        }));
        let all = vec![
            ep("10.42.0.1", false, true, true, false),
            ep("10.42.0.2", true, true, true, false),
        ];
        let c = categorize(&all, &itp);
        assert!(c.cluster.is_empty());
        assert_eq!(c.local, vec![all[1].clone()]);
        assert_eq!(c.reachable, c.local);
        assert!(c.has_any);

        let etp = port(serde_json::json!({
            "metadata": {"namespace": "ns", "name": "s"},
            "spec": {"type": "NodePort", "clusterIP": "10.43.0.5", "externalTrafficPolicy": "Local",
                     "ports": [{"port": 80, "nodePort": 30001}]}
        }));
        let c = categorize(&all, &etp);
        assert_eq!(c.cluster.len(), 2);
        assert_eq!(c.local.len(), 1);
        assert_eq!(c.reachable.len(), 2);
    }
}
