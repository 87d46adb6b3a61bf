//! The Node object of a hollow node, its status, its Lease, and
//! registration (create, or adopt one left by an earlier run).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{
    Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::ipam::{node_internal_ip, node_pod_cidr, Cidr};
use crate::retry::{is_conflict, until_settled};
use crate::{HollowConfig, FIELD_MANAGER};

/// The annotation that marks a node as hollow (KWOK uses `kwok.x-k8s.io/node`).
pub const HOLLOW_ANNOTATION: &str = "skiff.dev/hollow";
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// A registered hollow node, as the heartbeats and the pod worker know it.
#[derive(Debug)]
pub(crate) struct HollowNode {
    pub index: usize,
    pub name: String,
    pub uid: String,
    pub pod_cidr: Cidr,
    pub internal_ip: Ipv4Addr,
    /// Set once the Node object was found deleted (logged once, not recreated:
    /// a kubelet does not re-register until it restarts either).
    pub gone: AtomicBool,
}

pub(crate) fn node_name(cfg: &HollowConfig, index: usize) -> String {
    format!("{}{index}", cfg.name_prefix)
}

pub(crate) fn node_labels(cfg: &HollowConfig, index: usize) -> BTreeMap<String, String> {
    let name = node_name(cfg, index);
    let mut labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
        ("node.kubernetes.io/instance-type", "hollow"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if cfg.zones > 0 {
        labels.insert(
            "topology.kubernetes.io/zone".into(),
            format!("zone-{}", index % cfg.zones),
        );
    }
    labels.extend(cfg.labels.clone());
    labels
}

/// The Node as first registered: metadata and spec (status is written
/// through its subresource).
pub(crate) fn node_object(cfg: &HollowConfig, index: usize) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(node_name(cfg, index)),
            labels: Some(node_labels(cfg, index)),
            annotations: Some(BTreeMap::from([(
                HOLLOW_ANNOTATION.to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            taints: (!cfg.taints.is_empty()).then(|| cfg.taints.clone()),
            ..Default::default()
        }),
        status: None,
    }
}

/// The conditions a healthy kubelet reports: ours replace those of the same
/// type; a condition's lastTransitionTime is kept while its status stays
/// the same; conditions others own (NetworkUnavailable, ...) are kept.
pub(crate) fn node_conditions(prev: &[NodeCondition], now: jiff::Timestamp) -> Vec<NodeCondition> {
    const OURS: [(&str, &str, &str, &str); 4] = [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ];
    let mut out: Vec<NodeCondition> = prev
        .iter()
        .filter(|c| !OURS.iter().any(|(t, ..)| *t == c.type_))
        .cloned()
        .collect();
    for (type_, status, reason, message) in OURS {
        let transition = prev
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        out.push(NodeCondition {
            type_: type_.into(),
            status: status.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: Some(transition),
        });
    }
    out
}

/// The whole status a hollow node reports at registration.
pub(crate) fn node_status(
    cfg: &HollowConfig,
    name: &str,
    internal_ip: Ipv4Addr,
    prev_conditions: &[NodeCondition],
    boot_id: &str,
    now: jiff::Timestamp,
) -> NodeStatus {
    let resources: BTreeMap<String, Quantity> = [
        ("cpu", &cfg.cpu),
        ("memory", &cfg.memory),
        ("pods", &cfg.pods),
        ("ephemeral-storage", &cfg.ephemeral_storage),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Quantity(v.clone())))
    .collect();
    NodeStatus {
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(node_conditions(prev_conditions, now)),
        addresses: Some(vec![
            NodeAddress {
                type_: "InternalIP".into(),
                address: internal_ip.to_string(),
            },
            NodeAddress {
                type_: "Hostname".into(),
                address: name.to_string(),
            },
        ]),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: uuid_like(&(name, boot_id)),
            container_runtime_version: "hollow://0.1".into(),
            kernel_version: cfg.kernel_version.clone(),
            kube_proxy_version: String::new(),
            kubelet_version: cfg.kubelet_version.clone(),
            machine_id: hex128(&(name, "machine-id")),
            operating_system: "linux".into(),
            os_image: "skiff hollow node".into(),
            swap: None,
            system_uuid: uuid_like(&(name, "system-uuid")),
        }),
        ..Default::default()
    }
}

/// The node's Lease in kube-node-lease, owned by the Node as the kubelet
/// sets it (so it goes when the Node goes).
pub(crate) fn lease_object(
    node_name: &str,
    node_uid: &str,
    duration_seconds: i32,
    now: jiff::Timestamp,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(node_name.to_string()),
            namespace: Some(NODE_LEASE_NAMESPACE.to_string()),
            owner_references: Some(vec![node_owner(node_name, node_uid)]),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(node_name.to_string()),
            lease_duration_seconds: Some(duration_seconds),
            renew_time: Some(MicroTime(now)),
            ..Default::default()
        }),
    }
}

fn node_owner(node_name: &str, node_uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node_name.to_string(),
        uid: node_uid.to_string(),
        ..Default::default()
    }
}

/// A merge patch that renews a lease (and repairs holder and duration).
pub(crate) fn lease_renewal(
    node_name: &str,
    duration_seconds: i32,
    now: jiff::Timestamp,
) -> serde_json::Value {
    json!({
        "spec": {
            "holderIdentity": node_name,
            "leaseDurationSeconds": duration_seconds,
            "renewTime": MicroTime(now),
        }
    })
}

/// 32 hex digits derived from `v` (stable across runs).
fn hex128(v: &impl Hash) -> String {
    let half = |salt: u8| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        v.hash(&mut h);
        h.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

fn uuid_like(v: &impl Hash) -> String {
    let h = hex128(v);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A node registered but perhaps still without a pod range.
#[derive(Debug)]
pub(crate) struct Registered {
    pub index: usize,
    pub name: String,
    pub uid: String,
    pub pod_cidr: Option<Cidr>,
    pub internal_ip: Ipv4Addr,
}

impl Registered {
    fn into_hollow(self, pod_cidr: Cidr) -> HollowNode {
        HollowNode {
            index: self.index,
            name: self.name,
            uid: self.uid,
            pod_cidr,
            internal_ip: self.internal_ip,
            gone: AtomicBool::new(false),
        }
    }
}

fn spec_pod_cidr(node: &Node) -> Option<Cidr> {
    node.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.as_deref())
        .and_then(Cidr::parse)
}

/// Registers node `index`: creates it, or takes over the one of that name
/// (labels and the hollow annotation brought up to date; its pod range
/// kept); writes its status and its Lease. Like a kubelet, it does not
/// choose its pod range: that is the node IPAM controller's (see
/// [`await_pod_cidrs`]).
pub(crate) async fn register(
    client: &kube::Client,
    cfg: &HollowConfig,
    index: usize,
    boot_id: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Registered> {
    let nodes: Api<Node> = Api::all(client.clone());
    let desired = node_object(cfg, index);
    let name = node_name(cfg, index);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let patch_params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let node = match until_settled(shutdown, "registering a node", || {
        nodes.create(&pp, &desired)
    })
    .await
    {
        Ok(n) => n,
        Err(e) if is_conflict(&e) => {
            let patch = json!({
                "metadata": {
                    "labels": desired.metadata.labels,
                    "annotations": desired.metadata.annotations,
                }
            });
            until_settled(shutdown, "adopting a node", || async {
                nodes
                    .patch(&name, &patch_params, &Patch::Merge(&patch))
                    .await
            })
            .await
            .with_context(|| format!("adopting node {name}"))?
        }
        Err(e) => return Err(e).with_context(|| format!("registering node {name}")),
    };
    let uid = node.metadata.uid.clone().unwrap_or_default();
    let pod_cidr = spec_pod_cidr(&node);
    let internal_ip = node_internal_ip(index);

    let prev = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let status = node_status(cfg, &name, internal_ip, &prev, boot_id, now());
    let patch = json!({ "status": status });
    // The node IPAM controller may be writing the spec at the same moment;
    // the server reports that as a conflict even for a patch.
    let mut attempts = 0;
    loop {
        let written = until_settled(shutdown, "writing node status", || async {
            nodes
                .patch_status(&name, &patch_params, &Patch::Merge(&patch))
                .await
        })
        .await;
        match written {
            Err(e) if is_conflict(&e) && attempts < 10 => attempts += 1,
            r => {
                r.with_context(|| format!("writing the status of node {name}"))?;
                break;
            }
        }
    }

    ensure_lease(client, cfg, &name, &uid, shutdown)
        .await
        .with_context(|| format!("writing the lease of node {name}"))?;

    Ok(Registered {
        index,
        name,
        uid,
        pod_cidr,
        internal_ip,
    })
}

/// How long nodes wait for the node IPAM controller when a controller
/// manager holds its lease; without one they wait only [`CIDR_WAIT_ALONE`]
/// (one may be starting) and then take ranges of their own.
const CIDR_WAIT_WITH_CONTROLLER: Duration = Duration::from_secs(30);
const CIDR_WAIT_ALONE: Duration = Duration::from_secs(2);
const CIDR_POLL: Duration = Duration::from_millis(250);

/// Whether a controller manager is leading now: its Lease in kube-system
/// was renewed within its duration.
async fn controller_manager_leading(client: &kube::Client) -> bool {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let Ok(Some(lease)) = leases.get_opt("kube-controller-manager").await else {
        return false;
    };
    let Some(spec) = lease.spec else { return false };
    let (Some(renewed), Some(secs)) = (spec.renew_time, spec.lease_duration_seconds) else {
        return false;
    };
    let expires = renewed.0 + jiff::SignedDuration::from_secs(i64::from(secs));
    spec.holder_identity.is_some_and(|h| !h.is_empty()) && expires > jiff::Timestamp::now()
}

/// Waits until the node IPAM controller has given every node a pod range,
/// as a kubelet waits before it starts pods (pods bound meanwhile wait
/// too: the pod worker starts after this). With no controller manager
/// leading (`skiff server --disable-controller-manager`), or none that
/// answers in time, each node takes `10.244.<index>.0/24` itself, unless
/// a range was set meanwhile.
pub(crate) async fn await_pod_cidrs(
    client: &kube::Client,
    registered: Vec<Registered>,
    max_in_flight: usize,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<HollowNode>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut waiting: Vec<Registered> = Vec::new();
    let mut out = Vec::with_capacity(registered.len());
    for r in registered {
        match r.pod_cidr {
            Some(c) => out.push(r.into_hollow(c)),
            None => waiting.push(r),
        }
    }
    let started = tokio::time::Instant::now();
    let mut leading = false;
    while !waiting.is_empty() && !shutdown.is_cancelled() {
        // Checked until seen: a controller manager may be just starting.
        leading = leading || controller_manager_leading(client).await;
        let limit = if leading {
            CIDR_WAIT_WITH_CONTROLLER
        } else {
            CIDR_WAIT_ALONE
        };
        if started.elapsed() >= limit {
            break;
        }
        // A list of many nodes is not free: poll those less often.
        let poll = CIDR_POLL.max(Duration::from_millis(waiting.len() as u64 / 10));
        tokio::time::sleep(poll).await;
        let params =
            kube::api::ListParams::default().labels("node.kubernetes.io/instance-type=hollow");
        let listed = match nodes.list(&params).await {
            Ok(l) => l.items,
            Err(e) => {
                tracing::debug!(error = %e, "listing nodes failed");
                continue;
            }
        };
        let cidrs: std::collections::HashMap<String, Cidr> = listed
            .iter()
            .filter_map(|n| Some((n.metadata.name.clone()?, spec_pod_cidr(n)?)))
            .collect();
        let mut still = Vec::new();
        for r in waiting {
            match cidrs.get(&r.name) {
                Some(c) => out.push(r.into_hollow(*c)),
                None => still.push(r),
            }
        }
        waiting = still;
    }
    if !waiting.is_empty() {
        tracing::info!(
            count = waiting.len(),
            "no pod CIDR assigned by a node IPAM controller; nodes take their own"
        );
    }
    let assigned: Vec<HollowNode> = futures::stream::iter(waiting)
        .map(|r| {
            let nodes = &nodes;
            async move {
                let cidr = self_assign_pod_cidr(nodes, &r, shutdown).await?;
                anyhow::Ok(r.into_hollow(cidr))
            }
        })
        .buffer_unordered(max_in_flight.max(1))
        .try_collect()
        .await?;
    out.extend(assigned);
    out.sort_by_key(|n| n.index);
    Ok(out)
}

/// Sets the node's own range `10.244.<index>.0/24`, unless one was set
/// meanwhile (then that one is used).
async fn self_assign_pod_cidr(
    nodes: &Api<Node>,
    r: &Registered,
    shutdown: &CancellationToken,
) -> anyhow::Result<Cidr> {
    let own = node_pod_cidr(r.index);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    loop {
        let node = until_settled(shutdown, "reading a node", || nodes.get(&r.name))
            .await
            .with_context(|| format!("reading node {}", r.name))?;
        if let Some(c) = spec_pod_cidr(&node) {
            return Ok(c);
        }
        let patch = json!({
            "metadata": { "resourceVersion": node.metadata.resource_version },
            "spec": { "podCIDR": own.to_string(), "podCIDRs": [own.to_string()] },
        });
        match until_settled(shutdown, "setting a pod CIDR", || async {
            nodes.patch(&r.name, &params, &Patch::Merge(&patch)).await
        })
        .await
        {
            Ok(_) => return Ok(own),
            // Someone (the controller) wrote meanwhile: look again.
            Err(e) if is_conflict(&e) && !shutdown.is_cancelled() => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("setting the pod CIDR of node {}", r.name))
            }
        }
    }
}

/// Creates the node's Lease, or takes over the existing one.
pub(crate) async fn ensure_lease(
    client: &kube::Client,
    cfg: &HollowConfig,
    name: &str,
    node_uid: &str,
    shutdown: &CancellationToken,
) -> Result<Lease, kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NODE_LEASE_NAMESPACE);
    let duration = cfg.lease_duration_seconds();
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let created = until_settled(shutdown, "creating a lease", || async {
        leases
            .create(&pp, &lease_object(name, node_uid, duration, now()))
            .await
    })
    .await;
    match created {
        Err(e) if is_conflict(&e) => {
            let mut patch = lease_renewal(name, duration, now());
            patch["metadata"] = json!({ "ownerReferences": [node_owner(name, node_uid)] });
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            until_settled(shutdown, "adopting a lease", || async {
                leases.patch(name, &params, &Patch::Merge(&patch)).await
            })
            .await
        }
        r => r,
    }
}

/// Now, to the second: what Kubernetes' `Time` keeps.
pub(crate) fn now() -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HollowConfig {
        HollowConfig {
            count: 5,
            zones: 3,
            kernel_version: "6.1.0-test".into(),
            ..Default::default()
        }
    }

    fn t(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn object_labels_annotation_taints_and_range() {
        let mut cfg = cfg();
        cfg.labels.insert("role".into(), "scale".into());
        cfg.taints
            .push(crate::parse::parse_taint("hollow=true:NoSchedule").unwrap());
        let node = node_object(&cfg, 4);
        assert_eq!(node.metadata.name.as_deref(), Some("hollow-node-4"));
        let labels = node.metadata.labels.unwrap();
        for (k, v) in [
            ("kubernetes.io/hostname", "hollow-node-4"),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", "amd64"),
            ("topology.kubernetes.io/zone", "zone-1"),
            ("node.kubernetes.io/instance-type", "hollow"),
            ("role", "scale"),
        ] {
            assert_eq!(labels.get(k).map(String::as_str), Some(v), "label {k}");
        }
        assert_eq!(
            node.metadata
                .annotations
                .unwrap()
                .get(HOLLOW_ANNOTATION)
                .map(String::as_str),
            Some("true")
        );
        let spec = node.spec.unwrap();
        assert_eq!(spec.pod_cidr, None, "the node IPAM controller's to set");
        assert_eq!(spec.pod_cidrs, None);
        let taints = spec.taints.unwrap();
        assert_eq!(
            (taints[0].key.as_str(), taints[0].effect.as_str()),
            ("hollow", "NoSchedule")
        );
    }

    #[test]
    fn no_zone_label_with_zero_zones() {
        let mut cfg = cfg();
        cfg.zones = 0;
        assert!(!node_labels(&cfg, 2).contains_key("topology.kubernetes.io/zone"));
        assert_eq!(node_object(&cfg, 0).spec.unwrap().taints, None);
    }

    #[test]
    fn status_reports_ready_with_capacity_and_identity() {
        let cfg = cfg();
        let now = t("2025-01-02T03:04:05Z");
        let s = node_status(
            &cfg,
            "hollow-node-0",
            node_internal_ip(0),
            &[],
            "boot-1",
            now,
        );
        for field in [&s.capacity, &s.allocatable] {
            let r = field.as_ref().unwrap();
            assert_eq!(r["cpu"].0, "4");
            assert_eq!(r["memory"].0, "16Gi");
            assert_eq!(r["pods"].0, "110");
            assert_eq!(r["ephemeral-storage"].0, "100Gi");
        }
        let conds = s.conditions.unwrap();
        let types: Vec<_> = conds
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("MemoryPressure", "False"),
                ("DiskPressure", "False"),
                ("PIDPressure", "False"),
                ("Ready", "True")
            ]
        );
        let ready = &conds[3];
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("kubelet is posting ready status")
        );
        assert_eq!(ready.last_heartbeat_time, Some(Time(now)));
        let addrs = s.addresses.unwrap();
        assert_eq!(
            (addrs[0].type_.as_str(), addrs[0].address.as_str()),
            ("InternalIP", "10.128.0.1")
        );
        assert_eq!(
            (addrs[1].type_.as_str(), addrs[1].address.as_str()),
            ("Hostname", "hollow-node-0")
        );
        let info = s.node_info.unwrap();
        assert_eq!(info.kubelet_version, "v1.33.0");
        assert_eq!(info.container_runtime_version, "hollow://0.1");
        assert_eq!(info.os_image, "skiff hollow node");
        assert_eq!(info.kernel_version, "6.1.0-test");
        assert_eq!(info.machine_id.len(), 32);
        assert_eq!(info.system_uuid.len(), 36);
        let again = node_status(
            &cfg,
            "hollow-node-0",
            node_internal_ip(0),
            &[],
            "boot-2",
            now,
        )
        .node_info
        .unwrap();
        assert_eq!(again.machine_id, info.machine_id, "stable per node");
        assert_ne!(again.boot_id, info.boot_id, "new per boot");
    }

    #[test]
    fn conditions_keep_transition_times_and_foreign_conditions() {
        let earlier = t("2025-01-01T00:00:00Z");
        let now = t("2025-01-01T01:00:00Z");
        let cond = |type_: &str, status: &str| NodeCondition {
            type_: type_.into(),
            status: status.into(),
            last_transition_time: Some(Time(earlier)),
            last_heartbeat_time: Some(Time(earlier)),
            ..Default::default()
        };
        let prev = [
            cond("NetworkUnavailable", "False"),
            cond("MemoryPressure", "False"),
            // Marked Unknown by the node lifecycle controller while we were away.
            cond("Ready", "Unknown"),
        ];
        let out = node_conditions(&prev, now);
        assert_eq!(out[0].type_, "NetworkUnavailable");
        assert_eq!(out[0].last_heartbeat_time, Some(Time(earlier)), "not ours");
        let get = |t: &str| out.iter().find(|c| c.type_ == t).unwrap();
        assert_eq!(
            get("MemoryPressure").last_transition_time,
            Some(Time(earlier))
        );
        assert_eq!(get("MemoryPressure").last_heartbeat_time, Some(Time(now)));
        assert_eq!(get("Ready").status, "True");
        assert_eq!(
            get("Ready").last_transition_time,
            Some(Time(now)),
            "a transition"
        );
        assert_eq!(
            get("DiskPressure").last_transition_time,
            Some(Time(now)),
            "new"
        );
        assert_eq!(out.len(), 5);
    }

    #[test]
    fn lease_is_held_by_the_node_and_owned_by_it() {
        let now = t("2025-01-01T00:00:00Z");
        let lease = lease_object("hollow-node-7", "uid-7", 40, now);
        assert_eq!(lease.metadata.namespace.as_deref(), Some("kube-node-lease"));
        let owner = &lease.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Node", "hollow-node-7", "uid-7")
        );
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("hollow-node-7"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(spec.renew_time, Some(MicroTime(now)));
        let patch = lease_renewal("hollow-node-7", 40, now);
        assert_eq!(
            patch["spec"]["renewTime"],
            json!("2025-01-01T00:00:00.000000Z")
        );
    }
}
