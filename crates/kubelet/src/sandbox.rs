//! The pod sandbox: its CRI config (metadata, hostname, DNS, port mappings,
//! cgroup parent, namespaces), as kuberuntime's generatePodSandboxConfig.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Pod;

use crate::cri::api::{
    DnsConfig, LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, PortMapping, Protocol,
};

/// The labels by which the agent finds a pod's sandboxes and containers
/// again after a restart (the kubelet's own).
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";

/// Node-wide settings the sandbox config needs.
pub struct SandboxSettings<'a> {
    pub cluster_dns: &'a [String],
    pub cluster_domain: &'a str,
    pub cgroup_root: &'a str,
    pub log_root: &'a std::path::Path,
    /// The node's own resolv.conf (for dnsPolicy Default and host search paths).
    pub host_resolv_conf: &'a str,
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The pod's log directory: `<log_root>/<ns>_<name>_<uid>`.
pub fn log_directory(log_root: &std::path::Path, pod: &Pod) -> std::path::PathBuf {
    log_root.join(format!(
        "{}_{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    ))
}

pub fn pod_labels(pod: &Pod) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = pod
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.insert(
        POD_NAME_LABEL.into(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(
        POD_NAMESPACE_LABEL.into(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    labels.insert(
        POD_UID_LABEL.into(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    labels
}

/// The pod's hostname: `spec.hostname` or the pod name (truncated to 63).
/// Empty for hostNetwork pods, as upstream: they share the node's UTS
/// namespace, and runc refuses to set a hostname without a private one.
pub fn hostname(pod: &Pod) -> String {
    if host_network(pod) {
        return String::new();
    }
    let spec = pod.spec.as_ref();
    let name = spec
        .and_then(|s| s.hostname.clone())
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let mut name = name;
    name.truncate(63);
    name.trim_end_matches(['-', '.']).to_string()
}

pub fn config(pod: &Pod, attempt: u32, s: &SandboxSettings) -> PodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_net = host_network(pod);
    let mode = |host: bool, pod_level: NamespaceMode| {
        if host {
            NamespaceMode::Node as i32
        } else {
            pod_level as i32
        }
    };
    let pid_mode = if spec.host_pid.unwrap_or(false) {
        NamespaceMode::Node as i32
    } else if spec.share_process_namespace.unwrap_or(false) {
        NamespaceMode::Pod as i32
    } else {
        NamespaceMode::Container as i32
    };
    let privileged = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .any(|c| {
            c.security_context
                .as_ref()
                .and_then(|sc| sc.privileged)
                .unwrap_or(false)
        });
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp as i32,
                Some("SCTP") => Protocol::Sctp as i32,
                _ => Protocol::Tcp as i32,
            },
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    let sc = spec.security_context.clone().unwrap_or_default();
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            attempt,
        }),
        hostname: hostname(pod),
        log_directory: log_directory(s.log_root, pod).display().to_string(),
        dns_config: dns_config(pod, s),
        port_mappings,
        labels: pod_labels(pod),
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: crate::qos::pod_cgroup_parent(s.cgroup_root, pod),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: mode(host_net, NamespaceMode::Pod),
                    pid: pid_mode,
                    ipc: mode(spec.host_ipc.unwrap_or(false), NamespaceMode::Pod),
                    ..Default::default()
                }),
                privileged,
                run_as_user: sc
                    .run_as_user
                    .map(|v| crate::cri::api::Int64Value { value: v }),
                run_as_group: sc
                    .run_as_group
                    .map(|v| crate::cri::api::Int64Value { value: v }),
                supplemental_groups: sc.supplemental_groups.clone().unwrap_or_default(),
                ..Default::default()
            }),
            sysctls: sc
                .sysctls
                .iter()
                .flatten()
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect(),
            ..Default::default()
        }),
        windows: None,
    }
}

/// The DNS config of `dnsPolicy` as the kubelet's dns configurer builds it:
/// ClusterFirst → the cluster DNS with `<ns>.svc.<domain> svc.<domain>
/// <domain>` plus the host's searches, `ndots:5`; Default → the host's
/// resolv.conf; None → only `dnsConfig`. `dnsConfig` is merged in last.
/// hostNetwork pods with ClusterFirst use the host's (ClusterFirstWithHostNet
/// opts in to the cluster DNS).
pub fn dns_config(pod: &Pod, s: &SandboxSettings) -> Option<DnsConfig> {
    let spec = pod.spec.as_ref()?;
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host = parse_resolv_conf(s.host_resolv_conf);
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let cluster_first = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network(pod),
        _ => false,
    };
    let mut cfg = if cluster_first && !s.cluster_dns.is_empty() {
        let d = s.cluster_domain;
        let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.to_string()];
        searches.extend(host.searches.iter().cloned());
        DnsConfig {
            servers: s.cluster_dns.to_vec(),
            searches,
            options: vec!["ndots:5".into()],
        }
    } else if policy == "None" {
        DnsConfig::default()
    } else {
        host.clone()
    };
    if let Some(extra) = &spec.dns_config {
        for ns in extra.nameservers.iter().flatten() {
            if !cfg.servers.contains(ns) {
                cfg.servers.push(ns.clone());
            }
        }
        for search in extra.searches.iter().flatten() {
            if !cfg.searches.contains(search) {
                cfg.searches.push(search.clone());
            }
        }
        for opt in extra.options.iter().flatten() {
            let name = opt.name.clone().unwrap_or_default();
            let text = match &opt.value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            cfg.options
                .retain(|o| o.split(':').next() != Some(name.as_str()));
            cfg.options.push(text);
        }
    }
    // resolv.conf allows 32 search domains at most (glibc).
    cfg.searches.truncate(32);
    Some(cfg)
}

pub fn parse_resolv_conf(text: &str) -> DnsConfig {
    let mut cfg = DnsConfig::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => cfg.servers.extend(words.next().map(String::from)),
            Some("search") | Some("domain") => {
                cfg.searches = words.map(String::from).collect();
            }
            Some("options") => cfg.options.extend(words.map(String::from)),
            _ => {}
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(policy: Option<&str>, host_net: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-0", "namespace": "shop", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}],
                     "dnsPolicy": policy, "hostNetwork": host_net,
                     "dnsConfig": {"options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}
        }))
        .unwrap()
    }

    fn settings<'a>(dns: &'a [String]) -> SandboxSettings<'a> {
        SandboxSettings {
            cluster_dns: dns,
            cluster_domain: "cluster.local",
            cgroup_root: "/kubepods",
            log_root: std::path::Path::new("/logs"),
            host_resolv_conf: "nameserver 192.0.2.53\nsearch corp.example\n",
        }
    }

    #[test]
    fn cluster_first_uses_cluster_dns_and_merges_options() {
        let dns = vec!["10.43.0.10".to_string()];
        let c = dns_config(&pod(None, false), &settings(&dns)).unwrap();
        assert_eq!(c.servers, ["10.43.0.10"]);
        assert_eq!(
            c.searches,
            [
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(c.options, ["ndots:2", "edns0"]);
        // hostNetwork with ClusterFirst falls back to the host's config.
        let h = dns_config(&pod(None, true), &settings(&dns)).unwrap();
        assert_eq!(h.servers, ["192.0.2.53"]);
        let d = dns_config(&pod(Some("Default"), false), &settings(&dns)).unwrap();
        assert_eq!(d.servers, ["192.0.2.53"]);
    }

    #[test]
    fn sandbox_config_carries_identity_and_ports() {
        let dns = vec!["10.43.0.10".to_string()];
        let c = config(&pod(None, false), 2, &settings(&dns));
        let m = c.metadata.unwrap();
        assert_eq!(
            (
                m.name.as_str(),
                m.namespace.as_str(),
                m.uid.as_str(),
                m.attempt
            ),
            ("web-0", "shop", "u1", 2)
        );
        assert_eq!(c.hostname, "web-0");
        // hostNetwork: no hostname of its own (the node's UTS namespace).
        let h = config(&pod(None, true), 0, &settings(&dns));
        assert_eq!(h.hostname, "");
        assert_eq!(c.log_directory, "/logs/shop_web-0_u1");
        assert_eq!(c.port_mappings[0].host_port, 8080);
        assert_eq!(c.labels[POD_UID_LABEL], "u1");
        assert_eq!(c.linux.unwrap().cgroup_parent, "/kubepods/besteffort/podu1");
    }
}
