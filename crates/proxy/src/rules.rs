//! The rules the proxier wants, as data: the table's fixed skeleton and, per
//! Service, its chains, affinity sets and verdict-map elements. Pure: no I/O.
//!
//! The layout is upstream's nftables proxier (`pkg/proxy/nftables/proxier.go`):
//! packets are dispatched by verdict maps keyed by
//! `ip daddr . meta l4proto . th dport` (and `meta l4proto . th dport` for
//! NodePorts on any local address) to a per-Service-port chain, which
//! spreads with `numgen random mod N vmap` over per-endpoint chains that DNAT.
//! Masquerading is a packet mark set in `mark-for-masquerade` and acted on in
//! `masquerading` (nat postrouting). Services without usable endpoints get
//! entries in the `no-endpoint-*` maps, checked by filter chains before DNAT,
//! and whatever is still addressed to the service CIDR after DNAT is
//! rejected by `cluster-ips-check`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::cidr::Ipv4Cidr;
use crate::endpoints::{categorize, Endpoint};
use crate::names;
use crate::service::{Protocol, ServicePortInfo};

/// The packet mark bit that asks for masquerading (upstream's default
/// `--masquerade-bit` 14).
pub const MASQUERADE_MARK: &str = "0x4000";

pub const MARK_FOR_MASQUERADE_CHAIN: &str = "mark-for-masquerade";
pub const MASQUERADING_CHAIN: &str = "masquerading";
pub const SERVICES_CHAIN: &str = "services";
pub const ENDPOINTS_CHECK_CHAIN: &str = "endpoints-check";
pub const CLUSTER_IPS_CHECK_CHAIN: &str = "cluster-ips-check";
pub const REJECT_CHAIN: &str = "reject-chain";

/// The verdict maps every Service puts elements in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Map {
    /// ClusterIP, external IP and load-balancer IP traffic.
    ServiceIps,
    /// NodePort traffic, on any local address.
    ServiceNodePorts,
    /// Drop or reject for service IPs without usable endpoints.
    NoEndpointServices,
    /// Drop or reject for NodePorts without usable endpoints.
    NoEndpointNodePorts,
}

impl Map {
    pub const ALL: [Map; 4] = [
        Map::ServiceIps,
        Map::ServiceNodePorts,
        Map::NoEndpointServices,
        Map::NoEndpointNodePorts,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Map::ServiceIps => "service-ips",
            Map::ServiceNodePorts => "service-nodeports",
            Map::NoEndpointServices => "no-endpoint-services",
            Map::NoEndpointNodePorts => "no-endpoint-nodeports",
        }
    }

    fn declaration(self) -> &'static str {
        match self {
            Map::ServiceIps => {
                "type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ;"
            }
            Map::ServiceNodePorts => {
                "type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ;"
            }
            Map::NoEndpointServices => {
                "type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ;"
            }
            Map::NoEndpointNodePorts => {
                "type inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ;"
            }
        }
    }
}

/// A destination a Service claims. Two Services may claim the same one (two
/// LoadBalancer Services on one port of the same node address); only one of
/// them gets it (see the proxier), the other's elements are left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dest {
    Ip(Ipv4Addr, Protocol, u16),
    NodePort(Protocol, u16),
}

/// One verdict-map element a Service wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub value: String,
    pub dest: Dest,
}

/// Everything one Service puts in the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServiceRules {
    /// Chain name → its rules, in order.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Affinity set name → its declaration.
    pub sets: BTreeMap<String, String>,
    /// (map, key) → element.
    pub elements: BTreeMap<(Map, String), Element>,
}

impl ServiceRules {
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty() && self.sets.is_empty() && self.elements.is_empty()
    }

    /// The destinations this Service claims.
    pub fn dests(&self) -> impl Iterator<Item = Dest> + '_ {
        self.elements.values().map(|e| e.dest)
    }

    /// These rules without the elements for destinations `keep` refuses.
    pub fn retain_dests(&self, keep: impl Fn(&Dest) -> bool) -> ServiceRules {
        ServiceRules {
            chains: self.chains.clone(),
            sets: self.sets.clone(),
            elements: self
                .elements
                .iter()
                .filter(|(_, e)| keep(&e.dest))
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect(),
        }
    }

    fn chain(&mut self, name: &str) -> &mut Vec<String> {
        self.chains.entry(name.to_string()).or_default()
    }

    fn element(&mut self, map: Map, key: String, value: String, dest: Dest) {
        self.elements.insert((map, key), Element { value, dest });
    }
}

/// What rendering needs to know of the node.
#[derive(Clone, Debug, Default)]
pub struct RenderContext {
    /// The pod network: traffic from it is "local" (`--cluster-cidr`).
    pub cluster_cidrs: Vec<Ipv4Cidr>,
}

impl RenderContext {
    /// `ip saddr 10.42.0.0/16` or `ip saddr != ...`; None without a cluster CIDR.
    fn saddr_match(&self, negate: bool) -> Option<String> {
        let op = if negate { "!= " } else { "" };
        match self.cluster_cidrs.as_slice() {
            [] => None,
            [one] => Some(format!("ip saddr {op}{one}")),
            many => {
                let list: Vec<String> = many.iter().map(|c| c.to_string()).collect();
                Some(format!("ip saddr {op}{{ {} }}", list.join(", ")))
            }
        }
    }
}

fn ip_key(ip: Ipv4Addr, protocol: Protocol, port: u16) -> String {
    format!("{ip} . {protocol} . {port}")
}

fn node_port_key(protocol: Protocol, port: u16) -> String {
    format!("{protocol} . {port}")
}

/// The rules of one Service: each port with its endpoints.
pub fn render_service(
    ports: &[(ServicePortInfo, Vec<Endpoint>)],
    ctx: &RenderContext,
) -> ServiceRules {
    let mut out = ServiceRules::default();
    for (svc, endpoints) in ports {
        render_port(&mut out, svc, endpoints, ctx);
    }
    out
}

fn render_port(
    out: &mut ServiceRules,
    svc: &ServicePortInfo,
    endpoints: &[Endpoint],
    ctx: &RenderContext,
) {
    let proto = svc.protocol;
    let cat = categorize(endpoints, svc);

    let cluster_chain = names::cluster_policy_chain(svc);
    let uses_cluster_chain = !cat.cluster.is_empty() && svc.uses_cluster_endpoints();
    let local_chain = names::local_policy_chain(svc);
    let uses_local_chain = !cat.local.is_empty() && svc.uses_local_endpoints();

    let (internal_chain, has_internal) = if svc.internal_policy_local {
        (&local_chain, cat.has_any && !cat.local.is_empty())
    } else {
        (&cluster_chain, cat.has_any)
    };
    let (external_policy_chain, has_external) = if svc.external_policy_local {
        (&local_chain, cat.has_any && !cat.local.is_empty())
    } else {
        (&cluster_chain, cat.has_any)
    };
    let external_chain = names::external_chain(svc);
    // Even without external endpoints, pods and the node itself are
    // short-circuited to the Cluster endpoints through this chain.
    let uses_external_chain = cat.has_any && svc.externally_accessible();

    // No endpoints at all: reject. Endpoints, but none this policy may use:
    // drop (what did not match a short-circuit rule), as upstream.
    let no_endpoint_verdict = |has: bool| -> Option<String> {
        if !cat.has_any {
            Some(format!("goto {REJECT_CHAIN}"))
        } else if !has {
            Some("drop".to_string())
        } else {
            None
        }
    };
    let internal_verdict = no_endpoint_verdict(has_internal);
    let external_verdict = no_endpoint_verdict(has_external);

    // The cluster IP.
    let dest = Dest::Ip(svc.cluster_ip, proto, svc.port);
    let key = ip_key(svc.cluster_ip, proto, svc.port);
    match &internal_verdict {
        None => out.element(Map::ServiceIps, key, format!("goto {internal_chain}"), dest),
        Some(v) => out.element(Map::NoEndpointServices, key, v.clone(), dest),
    }

    // External IPs and load-balancer IPs: external traffic.
    for ip in svc.external_ips.iter().chain(&svc.load_balancer_ips) {
        let dest = Dest::Ip(*ip, proto, svc.port);
        let key = ip_key(*ip, proto, svc.port);
        if cat.has_any {
            out.element(
                Map::ServiceIps,
                key.clone(),
                format!("goto {external_chain}"),
                dest,
            );
        }
        if let Some(v) = &external_verdict {
            out.element(Map::NoEndpointServices, key, v.clone(), dest);
        }
    }

    // The NodePort, on every local address.
    if let Some(node_port) = svc.node_port {
        let dest = Dest::NodePort(proto, node_port);
        let key = node_port_key(proto, node_port);
        if cat.has_any {
            out.element(
                Map::ServiceNodePorts,
                key.clone(),
                format!("goto {external_chain}"),
                dest,
            );
        }
        if let Some(v) = &external_verdict {
            out.element(Map::NoEndpointNodePorts, key, v.clone(), dest);
        }
    }

    // Internal traffic from outside the pod network (the node itself, or a
    // router sending the service CIDR here) is masqueraded, so replies come
    // back through this node.
    if has_internal {
        let head = format!("ip daddr {} {proto} dport {}", svc.cluster_ip, svc.port);
        let rule = match ctx.saddr_match(true) {
            Some(not_local) => format!("{head} {not_local} jump {MARK_FOR_MASQUERADE_CHAIN}"),
            None => format!("{head} jump {MARK_FOR_MASQUERADE_CHAIN}"),
        };
        out.chain(internal_chain).push(rule);
    }

    if uses_external_chain {
        let rules = out.chain(&external_chain);
        if !svc.external_policy_local {
            // The endpoint may be on another node: masquerade so replies
            // come back here.
            rules.push(format!("jump {MARK_FOR_MASQUERADE_CHAIN}"));
        } else {
            // Pods and the node reaching an external address act as if the
            // traffic went out to the load balancer and came back: Cluster
            // policy, no source to keep.
            if let Some(local) = ctx.saddr_match(false) {
                rules.push(format!(
                    "{local} goto {cluster_chain} comment \"short-circuit pod traffic\""
                ));
            }
            rules.push(format!(
                "fib saddr type local jump {MARK_FOR_MASQUERADE_CHAIN} comment \"masquerade local traffic\""
            ));
            rules.push(format!(
                "fib saddr type local goto {cluster_chain} comment \"short-circuit local traffic\""
            ));
        }
        if has_external {
            rules.push(format!("goto {external_policy_chain}"));
        }
    }

    if let Some(timeout) = svc.affinity_timeout {
        for ep in &cat.reachable {
            out.sets.insert(
                names::affinity_set(svc, ep),
                format!("type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ;"),
            );
        }
    }

    if uses_cluster_chain {
        service_to_endpoint_rules(out, svc, &cluster_chain, &cat.cluster);
    }
    if uses_local_chain {
        service_to_endpoint_rules(out, svc, &local_chain, &cat.local);
    }

    for ep in &cat.reachable {
        let rules = out.chain(&names::endpoint_chain(svc, ep));
        // Hairpin: a pod reaching itself through the Service must see the
        // reply come from the Service, so masquerade.
        rules.push(format!(
            "ip saddr {} jump {MARK_FOR_MASQUERADE_CHAIN}",
            ep.ip
        ));
        if svc.affinity_timeout.is_some() {
            rules.push(format!(
                "update @{} {{ ip saddr }}",
                names::affinity_set(svc, ep)
            ));
        }
        rules.push(format!("meta l4proto {proto} dnat to {}", ep.address()));
    }
}

/// Affinity lookups, then the random spread over `endpoints`.
fn service_to_endpoint_rules(
    out: &mut ServiceRules,
    svc: &ServicePortInfo,
    chain: &str,
    endpoints: &[Endpoint],
) {
    let mut rules = Vec::with_capacity(endpoints.len() + 1);
    if svc.affinity_timeout.is_some() {
        for ep in endpoints {
            rules.push(format!(
                "ip saddr @{} goto {}",
                names::affinity_set(svc, ep),
                names::endpoint_chain(svc, ep)
            ));
        }
    }
    let mut spread = format!("numgen random mod {} vmap {{ ", endpoints.len());
    for (i, ep) in endpoints.iter().enumerate() {
        if i > 0 {
            spread.push_str(", ");
        }
        let _ = write!(spread, "{i} : goto {}", names::endpoint_chain(svc, ep));
    }
    spread.push_str(" }");
    rules.push(spread);
    out.chain(chain).extend(rules);
}

/// The table's skeleton: base chains on the netfilter hooks, the dispatch
/// and check chains, the masquerade chains and the (empty) verdict maps.
/// Written as nft commands for table `table`.
pub fn skeleton(table: &str, service_cidrs: &[Ipv4Cidr]) -> String {
    let mut s = String::new();
    let mut line = |l: String| {
        s.push_str(&l);
        s.push('\n');
    };
    line(format!(
        "add table ip {table} {{ comment \"rules for skiff's service proxy\" ; }}"
    ));
    // Filter chains run before DNAT (dstnat - 10) to see the service address;
    // the post-DNAT output chain (dstnat + 10) sees what DNAT left alone.
    for (name, kind, hook, priority) in [
        ("filter-input", "filter", "input", -110),
        ("filter-forward", "filter", "forward", -110),
        ("filter-output", "filter", "output", -110),
        ("filter-output-post-dnat", "filter", "output", -90),
        ("nat-prerouting", "nat", "prerouting", -100),
        ("nat-output", "nat", "output", -100),
        ("nat-postrouting", "nat", "postrouting", 100),
    ] {
        line(format!(
            "add chain ip {table} {name} {{ type {kind} hook {hook} priority {priority} ; }}"
        ));
    }
    for chain in [
        ENDPOINTS_CHECK_CHAIN,
        CLUSTER_IPS_CHECK_CHAIN,
        SERVICES_CHAIN,
        MASQUERADING_CHAIN,
        MARK_FOR_MASQUERADE_CHAIN,
        REJECT_CHAIN,
    ] {
        line(format!("add chain ip {table} {chain}"));
    }
    for map in Map::ALL {
        line(format!(
            "add map ip {table} {} {{ {} }}",
            map.name(),
            map.declaration()
        ));
    }
    let rule = |chain: &str, rule: &str| format!("add rule ip {table} {chain} {rule}");
    for chain in ["filter-input", "filter-forward", "filter-output"] {
        line(rule(
            chain,
            &format!("ct state new jump {ENDPOINTS_CHECK_CHAIN}"),
        ));
    }
    for chain in ["filter-input", "filter-forward", "filter-output-post-dnat"] {
        line(rule(chain, &format!("jump {CLUSTER_IPS_CHECK_CHAIN}")));
    }
    line(rule("nat-prerouting", &format!("jump {SERVICES_CHAIN}")));
    line(rule("nat-output", &format!("jump {SERVICES_CHAIN}")));
    line(rule(
        "nat-postrouting",
        &format!("jump {MASQUERADING_CHAIN}"),
    ));
    line(rule(
        MARK_FOR_MASQUERADE_CHAIN,
        &format!("mark set mark or {MASQUERADE_MARK}"),
    ));
    line(rule(
        MASQUERADING_CHAIN,
        &format!("mark and {MASQUERADE_MARK} == 0 return"),
    ));
    line(rule(
        MASQUERADING_CHAIN,
        &format!("mark set mark xor {MASQUERADE_MARK}"),
    ));
    line(rule(MASQUERADING_CHAIN, "masquerade fully-random"));
    // A TCP reset or ICMP port-unreachable: connect() fails at once.
    line(rule(REJECT_CHAIN, "meta l4proto tcp reject with tcp reset"));
    line(rule(REJECT_CHAIN, "reject"));
    line(rule(
        ENDPOINTS_CHECK_CHAIN,
        &format!(
            "ip daddr . meta l4proto . th dport vmap @{}",
            Map::NoEndpointServices.name()
        ),
    ));
    line(rule(
        ENDPOINTS_CHECK_CHAIN,
        &format!(
            "fib daddr type local meta l4proto . th dport vmap @{}",
            Map::NoEndpointNodePorts.name()
        ),
    ));
    if !service_cidrs.is_empty() {
        let list: Vec<String> = service_cidrs.iter().map(|c| c.to_string()).collect();
        line(rule(
            CLUSTER_IPS_CHECK_CHAIN,
            &format!(
                "ip daddr {{ {} }} goto {REJECT_CHAIN} comment \"nothing answers this service address and port\"",
                list.join(", ")
            ),
        ));
    }
    line(rule(
        SERVICES_CHAIN,
        &format!(
            "ip daddr . meta l4proto . th dport vmap @{}",
            Map::ServiceIps.name()
        ),
    ));
    line(rule(
        SERVICES_CHAIN,
        &format!(
            "fib daddr type local meta l4proto . th dport vmap @{}",
            Map::ServiceNodePorts.name()
        ),
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::endpoints_for_port;
    use crate::service::service_ports;
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use std::sync::Arc;

    fn ctx() -> RenderContext {
        RenderContext {
            cluster_cidrs: vec!["10.42.0.0/16".parse().unwrap()],
        }
    }

    /// Renders a Service with endpoints `(ip, node, ready)` on port 8080 and
    /// returns the rules as `nft list`-like text, one `chain: rule` per line.
    fn render(svc: serde_json::Value, eps: &[(&str, &str, bool)]) -> String {
        let svc: Service = serde_json::from_value(svc).unwrap();
        let endpoints: Vec<serde_json::Value> = eps
            .iter()
            .map(|(ip, node, ready)| {
                serde_json::json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": ready}})
            })
            .collect();
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s-1"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints
        }))
        .unwrap();
        let slices = vec![Arc::new(slice)];
        let ports: Vec<_> = service_ports(&svc)
            .into_iter()
            .map(|p| {
                let e = endpoints_for_port(&slices, &p.port_name, p.protocol, "node-a");
                (p, e)
            })
            .collect();
        dump(&render_service(&ports, &ctx()))
    }

    /// Chain names shortened to their prefix and the part after the hash.
    fn dump(r: &ServiceRules) -> String {
        let short = |s: &str| {
            let mut out = String::new();
            for word in s.split(' ') {
                if !out.is_empty() {
                    out.push(' ');
                }
                match word.split_once('-') {
                    Some((p, rest))
                        if [
                            "service",
                            "local",
                            "external",
                            "endpoint",
                            "@affinity",
                            "affinity",
                        ]
                        .contains(&p)
                            && rest.len() > 9 =>
                    {
                        out.push_str(p);
                        out.push(':');
                        out.push_str(&rest[9..]);
                    }
                    _ => out.push_str(word),
                }
            }
            out
        };
        let mut s = String::new();
        for ((map, key), e) in &r.elements {
            let _ = writeln!(s, "{} {key} : {}", map.name(), short(&e.value));
        }
        for (name, decl) in &r.sets {
            let _ = writeln!(s, "set {} {decl}", short(name));
        }
        // By the readable part of the name, not the hash.
        let mut chains: Vec<(String, &Vec<String>)> =
            r.chains.iter().map(|(c, rs)| (short(c), rs)).collect();
        chains.sort_by(|a, b| a.0.cmp(&b.0));
        for (chain, rules) in chains {
            for rule in rules {
                let _ = writeln!(s, "{chain}: {}", short(rule));
            }
        }
        s
    }

    fn check(svc: serde_json::Value, eps: &[(&str, &str, bool)], expect: &str) {
        let got = render(svc, eps);
        let expect: String = expect
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(got, expect, "got:\n{got}");
    }

    fn cluster_ip_svc() -> serde_json::Value {
        serde_json::json!({
            "metadata": {"namespace": "ns", "name": "web"},
            "spec": {"clusterIP": "10.43.0.10", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        })
    }

    #[test]
    fn cluster_ip_spreads_over_ready_endpoints() {
        check(
            cluster_ip_svc(),
            &[("10.42.0.11", "node-a", true), ("10.42.1.12", "node-b", true), ("10.42.1.13", "node-b", false)],
            "
            service-ips 10.43.0.10 . tcp . 80 : goto service:ns/web/tcp/http
            endpoint:ns/web/tcp/http__10.42.0.11/8080: ip saddr 10.42.0.11 jump mark-for-masquerade
            endpoint:ns/web/tcp/http__10.42.0.11/8080: meta l4proto tcp dnat to 10.42.0.11:8080
            endpoint:ns/web/tcp/http__10.42.1.12/8080: ip saddr 10.42.1.12 jump mark-for-masquerade
            endpoint:ns/web/tcp/http__10.42.1.12/8080: meta l4proto tcp dnat to 10.42.1.12:8080
            service:ns/web/tcp/http: ip daddr 10.43.0.10 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade
            service:ns/web/tcp/http: numgen random mod 2 vmap { 0 : goto endpoint:ns/web/tcp/http__10.42.0.11/8080, 1 : goto endpoint:ns/web/tcp/http__10.42.1.12/8080 }
            ",
        );
    }

    #[test]
    fn no_endpoints_rejects() {
        check(
            cluster_ip_svc(),
            &[("10.42.0.11", "node-a", false)],
            "no-endpoint-services 10.43.0.10 . tcp . 80 : goto reject-chain",
        );
    }

    #[test]
    fn session_affinity_sticks() {
        let mut svc = cluster_ip_svc();
        svc["spec"]["sessionAffinity"] = "ClientIP".into();
        svc["spec"]["sessionAffinityConfig"] =
            serde_json::json!({"clientIP": {"timeoutSeconds": 60}});
        check(
            svc,
            &[("10.42.0.11", "node-a", true)],
            "
            service-ips 10.43.0.10 . tcp . 80 : goto service:ns/web/tcp/http
            set affinity:ns/web/tcp/http__10.42.0.11/8080 type ipv4_addr ; flags dynamic,timeout ; timeout 60s ;
            endpoint:ns/web/tcp/http__10.42.0.11/8080: ip saddr 10.42.0.11 jump mark-for-masquerade
            endpoint:ns/web/tcp/http__10.42.0.11/8080: update @affinity:ns/web/tcp/http__10.42.0.11/8080 { ip saddr }
            endpoint:ns/web/tcp/http__10.42.0.11/8080: meta l4proto tcp dnat to 10.42.0.11:8080
            service:ns/web/tcp/http: ip daddr 10.43.0.10 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade
            service:ns/web/tcp/http: ip saddr @affinity:ns/web/tcp/http__10.42.0.11/8080 goto endpoint:ns/web/tcp/http__10.42.0.11/8080
            service:ns/web/tcp/http: numgen random mod 1 vmap { 0 : goto endpoint:ns/web/tcp/http__10.42.0.11/8080 }
            ",
        );
    }

    #[test]
    fn internal_traffic_policy_local() {
        let mut svc = cluster_ip_svc();
        svc["spec"]["internalTrafficPolicy"] = "Local".into();
        check(
            svc.clone(),
            &[("10.42.0.11", "node-a", true), ("10.42.1.12", "node-b", true)],
            "
            service-ips 10.43.0.10 . tcp . 80 : goto local:ns/web/tcp/http
            endpoint:ns/web/tcp/http__10.42.0.11/8080: ip saddr 10.42.0.11 jump mark-for-masquerade
            endpoint:ns/web/tcp/http__10.42.0.11/8080: meta l4proto tcp dnat to 10.42.0.11:8080
            local:ns/web/tcp/http: ip daddr 10.43.0.10 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade
            local:ns/web/tcp/http: numgen random mod 1 vmap { 0 : goto endpoint:ns/web/tcp/http__10.42.0.11/8080 }
            ",
        );
        // Endpoints only elsewhere: dropped, as upstream.
        check(
            svc,
            &[("10.42.1.12", "node-b", true)],
            "no-endpoint-services 10.43.0.10 . tcp . 80 : drop",
        );
    }

    fn node_port_svc(local: bool) -> serde_json::Value {
        serde_json::json!({
            "metadata": {"namespace": "ns", "name": "np"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.20",
                     "externalTrafficPolicy": if local { "Local" } else { "Cluster" },
                     "ports": [{"name": "http", "port": 80, "nodePort": 30080}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "172.30.0.2"}]}}
        })
    }

    #[test]
    fn node_port_and_load_balancer_cluster_policy() {
        check(
            node_port_svc(false),
            &[("10.42.1.12", "node-b", true)],
            "
            service-ips 10.43.0.20 . tcp . 80 : goto service:ns/np/tcp/http
            service-ips 172.30.0.2 . tcp . 80 : goto external:ns/np/tcp/http
            service-nodeports tcp . 30080 : goto external:ns/np/tcp/http
            endpoint:ns/np/tcp/http__10.42.1.12/8080: ip saddr 10.42.1.12 jump mark-for-masquerade
            endpoint:ns/np/tcp/http__10.42.1.12/8080: meta l4proto tcp dnat to 10.42.1.12:8080
            external:ns/np/tcp/http: jump mark-for-masquerade
            external:ns/np/tcp/http: goto service:ns/np/tcp/http
            service:ns/np/tcp/http: ip daddr 10.43.0.20 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade
            service:ns/np/tcp/http: numgen random mod 1 vmap { 0 : goto endpoint:ns/np/tcp/http__10.42.1.12/8080 }
            ",
        );
    }

    #[test]
    fn external_traffic_policy_local_keeps_client_address() {
        check(
            node_port_svc(true),
            &[
                ("10.42.0.11", "node-a", true),
                ("10.42.1.12", "node-b", true),
            ],
            r#"
            service-ips 10.43.0.20 . tcp . 80 : goto service:ns/np/tcp/http
            service-ips 172.30.0.2 . tcp . 80 : goto external:ns/np/tcp/http
            service-nodeports tcp . 30080 : goto external:ns/np/tcp/http
            endpoint:ns/np/tcp/http__10.42.0.11/8080: ip saddr 10.42.0.11 jump mark-for-masquerade
            endpoint:ns/np/tcp/http__10.42.0.11/8080: meta l4proto tcp dnat to 10.42.0.11:8080
            endpoint:ns/np/tcp/http__10.42.1.12/8080: ip saddr 10.42.1.12 jump mark-for-masquerade
            endpoint:ns/np/tcp/http__10.42.1.12/8080: meta l4proto tcp dnat to 10.42.1.12:8080
            external:ns/np/tcp/http: ip saddr 10.42.0.0/16 goto service:ns/np/tcp/http comment "short-circuit pod traffic"
            external:ns/np/tcp/http: fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
            external:ns/np/tcp/http: fib saddr type local goto service:ns/np/tcp/http comment "short-circuit local traffic"
            external:ns/np/tcp/http: goto local:ns/np/tcp/http
            local:ns/np/tcp/http: numgen random mod 1 vmap { 0 : goto endpoint:ns/np/tcp/http__10.42.0.11/8080 }
            service:ns/np/tcp/http: ip daddr 10.43.0.20 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade
            service:ns/np/tcp/http: numgen random mod 2 vmap { 0 : goto endpoint:ns/np/tcp/http__10.42.0.11/8080, 1 : goto endpoint:ns/np/tcp/http__10.42.1.12/8080 }
            "#,
        );
        // No local endpoint: external traffic that is not short-circuited
        // is dropped before DNAT.
        check(
            node_port_svc(true),
            &[("10.42.1.12", "node-b", true)],
            r#"
            service-ips 10.43.0.20 . tcp . 80 : goto service:ns/np/tcp/http
            service-ips 172.30.0.2 . tcp . 80 : goto external:ns/np/tcp/http
            service-nodeports tcp . 30080 : goto external:ns/np/tcp/http
            no-endpoint-services 172.30.0.2 . tcp . 80 : drop
            no-endpoint-nodeports tcp . 30080 : drop
            endpoint:ns/np/tcp/http__10.42.1.12/8080: ip saddr 10.42.1.12 jump mark-for-masquerade
            endpoint:ns/np/tcp/http__10.42.1.12/8080: meta l4proto tcp dnat to 10.42.1.12:8080
            external:ns/np/tcp/http: ip saddr 10.42.0.0/16 goto service:ns/np/tcp/http comment "short-circuit pod traffic"
            external:ns/np/tcp/http: fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
            external:ns/np/tcp/http: fib saddr type local goto service:ns/np/tcp/http comment "short-circuit local traffic"
            service:ns/np/tcp/http: ip daddr 10.43.0.20 tcp dport 80 ip saddr != 10.42.0.0/16 jump mark-for-masquerade
            service:ns/np/tcp/http: numgen random mod 1 vmap { 0 : goto endpoint:ns/np/tcp/http__10.42.1.12/8080 }
            "#,
        );
    }

    #[test]
    fn udp_and_sctp_ports() {
        let svc = serde_json::json!({
            "metadata": {"namespace": "ns", "name": "multi"},
            "spec": {"clusterIP": "10.43.0.30", "ports": [
                {"name": "http", "port": 53, "protocol": "UDP"},
                {"name": "http", "port": 99, "protocol": "SCTP"}]}
        });
        let got = render(svc, &[("10.42.0.11", "node-a", true)]);
        // The test slice only has a TCP port: no endpoints for either.
        assert!(got.contains("no-endpoint-services 10.43.0.30 . udp . 53 : goto reject-chain"));
        assert!(got.contains("no-endpoint-services 10.43.0.30 . sctp . 99 : goto reject-chain"));
    }

    #[test]
    fn skeleton_has_fixed_chains() {
        let s = skeleton("skiff", &["10.43.0.0/16".parse().unwrap()]);
        assert!(s.starts_with("add table ip skiff"));
        assert!(s.contains(
            "add rule ip skiff cluster-ips-check ip daddr { 10.43.0.0/16 } goto reject-chain"
        ));
        assert!(
            s.contains("add chain ip skiff nat-output { type nat hook output priority -100 ; }")
        );
        assert!(s.contains("add rule ip skiff services fib daddr type local meta l4proto . th dport vmap @service-nodeports"));
    }
}
