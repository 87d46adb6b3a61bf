//! The Node object: registration, status (capacity, conditions, addresses,
//! nodeInfo, images) and the node Lease heartbeat, as the kubelet's
//! nodestatus setters and node lease controller do.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    ContainerImage, Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};

use crate::cri::{self, Runtime};

pub const FIELD_MANAGER: &str = "skiff-kubelet";
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
pub const LEASE_DURATION_SECONDS: i32 = 40;
pub const KUBELET_VERSION: &str = concat!("v1.33.0+skiff-", env!("CARGO_PKG_VERSION"));

/// What the node registers with.
#[derive(Clone, Debug)]
pub struct Registration {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub address: IpAddr,
    pub kubelet_port: u16,
    pub max_pods: u32,
}

/// Machine facts that don't change while the agent runs.
#[derive(Clone, Debug)]
pub struct Machine {
    pub cpus: u32,
    pub memory_bytes: u64,
    pub ephemeral_bytes: u64,
    pub info: NodeSystemInfo,
    pub hostname: String,
}

impl Machine {
    pub fn read(storage_root: &std::path::Path, runtime_version: &str) -> Machine {
        // SAFETY: sysconf has no preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u32;
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .map(|t| {
                crate::stats::parse_meminfo(&t)
                    .get("MemTotal")
                    .copied()
                    .unwrap_or(0)
            })
            .unwrap_or(0);
        let ephemeral_bytes = crate::stats::statvfs(storage_root)
            .map(|f| f.capacity)
            .unwrap_or(0);
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        let uname = uname();
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            })
            .unwrap_or_else(|| "Linux".into());
        Machine {
            cpus,
            memory_bytes,
            ephemeral_bytes,
            hostname: hostname(),
            info: NodeSystemInfo {
                architecture: go_arch().into(),
                boot_id: read("/proc/sys/kernel/random/boot_id"),
                container_runtime_version: runtime_version.into(),
                kernel_version: uname,
                kube_proxy_version: String::new(),
                kubelet_version: KUBELET_VERSION.into(),
                machine_id: read("/etc/machine-id"),
                operating_system: "linux".into(),
                os_image,
                system_uuid: read("/sys/class/dmi/id/product_uuid"),
                swap: None,
            },
        }
    }

    pub fn capacity(&self, max_pods: u32) -> BTreeMap<String, Quantity> {
        BTreeMap::from([
            ("cpu".into(), Quantity(self.cpus.to_string())),
            (
                "memory".into(),
                Quantity(format!("{}Ki", self.memory_bytes / 1024)),
            ),
            (
                "ephemeral-storage".into(),
                Quantity(format!("{}Ki", self.ephemeral_bytes / 1024)),
            ),
            ("hugepages-1Gi".into(), Quantity("0".into())),
            ("hugepages-2Mi".into(), Quantity("0".into())),
            ("pods".into(), Quantity(max_pods.to_string())),
        ])
    }
}

/// The labels every kubelet sets on its node.
pub fn well_known_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kubernetes.io/hostname".into(), name.to_string()),
        ("kubernetes.io/os".into(), "linux".into()),
        ("kubernetes.io/arch".into(), go_arch().into()),
        ("beta.kubernetes.io/os".into(), "linux".into()),
        ("beta.kubernetes.io/arch".into(), go_arch().into()),
    ])
}

/// Creates the Node, or adopts an existing one of the same name (a restart):
/// labels are merged in, as the kubelet reconciles its own labels.
pub async fn register(client: &kube::Client, reg: &Registration) -> kube::Result<Node> {
    let api: Api<Node> = Api::all(client.clone());
    let node = Node {
        metadata: ObjectMeta {
            name: Some(reg.name.clone()),
            labels: Some(reg.labels.clone()),
            annotations: Some(BTreeMap::from([(
                "node.alpha.kubernetes.io/ttl".into(),
                "0".into(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!reg.taints.is_empty()).then(|| reg.taints.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &node).await {
        Ok(n) => Ok(n),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let patch = serde_json::json!({ "metadata": { "labels": reg.labels } });
            api.patch(&reg.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
        Err(e) => Err(e),
    }
}

/// What the status setters need besides the machine facts.
pub struct Observed {
    pub runtime_ready: bool,
    pub network_ready: bool,
    pub network_message: String,
    pub images: Vec<ContainerImage>,
}

/// The runtime's readiness, from CRI Status, as the kubelet's runtime state.
pub async fn observe(rt: &Runtime) -> Observed {
    let mut o = Observed {
        runtime_ready: false,
        network_ready: false,
        network_message: "container runtime status check may not have completed yet".into(),
        images: Vec::new(),
    };
    if let Ok(r) = rt
        .runtime
        .clone()
        .status(cri::api::StatusRequest { verbose: false })
        .await
    {
        for c in r
            .into_inner()
            .status
            .map(|s| s.conditions)
            .unwrap_or_default()
        {
            match c.r#type.as_str() {
                "RuntimeReady" => o.runtime_ready = c.status,
                "NetworkReady" => {
                    o.network_ready = c.status;
                    o.network_message = format!(
                        "container runtime network not ready: NetworkReady={} reason:{} message:{}",
                        c.status, c.reason, c.message
                    );
                }
                _ => {}
            }
        }
    }
    if let Ok(r) = rt
        .images
        .clone()
        .list_images(cri::api::ListImagesRequest { filter: None })
        .await
    {
        let mut images: Vec<ContainerImage> = r
            .into_inner()
            .images
            .into_iter()
            .map(|i| {
                let mut names = i.repo_digests.clone();
                names.extend(i.repo_tags.iter().cloned());
                ContainerImage {
                    names: Some(names),
                    size_bytes: Some(i.size as i64),
                }
            })
            .collect();
        // The kubelet reports the 50 largest images.
        images.sort_by_key(|i| std::cmp::Reverse(i.size_bytes));
        images.truncate(50);
        o.images = images;
    }
    o
}

/// The node's status as the kubelet reports it. Condition transition times
/// are kept from `previous` while a condition's status doesn't change.
pub fn status(
    reg: &Registration,
    machine: &Machine,
    observed: &Observed,
    previous: Option<&NodeStatus>,
) -> NodeStatus {
    let now = Time(jiff::Timestamp::now());
    let condition = |type_: &str, ok: bool, reason: &str, message: &str| {
        let status = if ok { "True" } else { "False" };
        let since = previous
            .and_then(|p| p.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        NodeCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(since),
        }
    };
    let ready = observed.runtime_ready && observed.network_ready;
    let ready_message = if !observed.runtime_ready {
        "container runtime is down".to_string()
    } else if !observed.network_ready {
        observed.network_message.clone()
    } else {
        "kubelet is posting ready status".to_string()
    };
    let capacity = machine.capacity(reg.max_pods);
    NodeStatus {
        capacity: Some(capacity.clone()),
        allocatable: Some(capacity),
        conditions: Some(vec![
            condition(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            condition(
                "DiskPressure",
                false,
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            condition(
                "PIDPressure",
                false,
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            condition(
                "Ready",
                ready,
                if ready {
                    "KubeletReady"
                } else {
                    "KubeletNotReady"
                },
                &ready_message,
            ),
        ]),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: reg.address.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: reg.name.clone(),
            },
        ]),
        daemon_endpoints: Some(k8s_openapi::api::core::v1::NodeDaemonEndpoints {
            kubelet_endpoint: Some(k8s_openapi::api::core::v1::DaemonEndpoint {
                port: reg.kubelet_port as i32,
            }),
        }),
        node_info: Some(machine.info.clone()),
        images: Some(observed.images.clone()),
        ..Default::default()
    }
}

/// Ready condition plus the facts that, when changed, are worth a write
/// before the next periodic report.
pub fn meaningful(s: &NodeStatus) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(cs) = v.get_mut("conditions").and_then(|c| c.as_array_mut()) {
        for c in cs {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastHeartbeatTime");
            }
        }
    }
    v
}

pub async fn patch_status(
    client: &kube::Client,
    name: &str,
    status: &NodeStatus,
) -> kube::Result<Node> {
    let api: Api<Node> = Api::all(client.clone());
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// Creates or renews the node's Lease (owned by the Node, so it goes with it).
pub async fn renew_lease(client: &kube::Client, node: &Node) -> kube::Result<()> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = MicroTime(jiff::Timestamp::now());
    let spec = LeaseSpec {
        holder_identity: Some(name.clone()),
        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
        renew_time: Some(now),
        ..Default::default()
    };
    match api.get_opt(&name).await? {
        Some(mut lease) => {
            lease.spec = Some(spec);
            api.replace(&name, &PostParams::default(), &lease).await?;
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(LEASE_NAMESPACE.into()),
                    owner_references: Some(vec![OwnerReference {
                        api_version: "v1".into(),
                        kind: "Node".into(),
                        name: name.clone(),
                        uid: node.metadata.uid.clone().unwrap_or_default(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                },
                spec: Some(spec),
            };
            api.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}

/// The first global IPv4 address of an interface that is up and not one of
/// the pod network's own (bridge, veths); 127.0.0.1 when there is none (a
/// node alone in a network namespace).
pub fn default_node_ip() -> IpAddr {
    let mut found = None;
    // SAFETY: getifaddrs/freeifaddrs as documented; entries are read only
    // while the list is alive.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut list) != 0 {
            return IpAddr::from([127, 0, 0, 1]);
        }
        let mut cur = list;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || (*ifa.ifa_addr).sa_family as i32 != libc::AF_INET {
                continue;
            }
            if ifa.ifa_flags & (libc::IFF_UP as u32) == 0
                || ifa.ifa_flags & (libc::IFF_LOOPBACK as u32) != 0
            {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name).to_string_lossy();
            if name == crate::cni::BRIDGE || name.starts_with("veth") || name.starts_with("cni") {
                continue;
            }
            let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            if !ip.is_link_local() {
                found = Some(IpAddr::V4(ip));
                break;
            }
        }
        libc::freeifaddrs(list);
    }
    found.unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if n != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase()
}

fn uname() -> String {
    // SAFETY: utsname is plain data filled by uname(2).
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return String::new();
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> Registration {
        Registration {
            name: "n1".into(),
            labels: well_known_labels("n1"),
            taints: vec![],
            address: IpAddr::from([10, 0, 0, 5]),
            kubelet_port: 10250,
            max_pods: 110,
        }
    }

    #[test]
    fn ready_follows_the_runtime_and_keeps_transition_times() {
        let m = Machine::read(std::path::Path::new("/"), "containerd://1.6.20");
        assert!(m.cpus >= 1 && m.memory_bytes > 0);
        let mut o = Observed {
            runtime_ready: true,
            network_ready: false,
            network_message: "container runtime network not ready: NetworkReady=false".into(),
            images: vec![],
        };
        let s1 = status(&reg(), &m, &o, None);
        let ready = |s: &NodeStatus| {
            s.conditions
                .as_ref()
                .unwrap()
                .iter()
                .find(|c| c.type_ == "Ready")
                .cloned()
                .unwrap()
        };
        assert_eq!(ready(&s1).status, "False");
        assert_eq!(ready(&s1).reason.as_deref(), Some("KubeletNotReady"));
        o.network_ready = true;
        let s2 = status(&reg(), &m, &o, Some(&s1));
        assert_eq!(ready(&s2).status, "True");
        let s3 = status(&reg(), &m, &o, Some(&s2));
        assert_eq!(
            ready(&s3).last_transition_time,
            ready(&s2).last_transition_time
        );
        assert_eq!(s3.capacity.as_ref().unwrap()["pods"].0, "110");
        assert_eq!(
            s3.daemon_endpoints.unwrap().kubelet_endpoint.unwrap().port,
            10250
        );
    }
}
