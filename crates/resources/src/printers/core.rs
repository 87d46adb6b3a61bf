//! core/v1 kinds other than Pod and Event.

use super::*;

pub(super) const POD_TEMPLATE: &[ColumnDefinition] = &[
    NAME,
    col(
        "Containers",
        "string",
        "Names of the containers in the template.",
    ),
    col(
        "Images",
        "string",
        "Images of the containers in the template.",
    ),
    col("Pod Labels", "string", "Labels of the pod template."),
];

pub(super) fn pod_template(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(obj, "/template/spec/containers");
    vec![
        name(obj).into(),
        names,
        images,
        format_labels(map_at(obj, "/template/metadata/labels")).into(),
    ]
}

pub(super) const REPLICATION_CONTROLLER: &[ColumnDefinition] = &[
    NAME,
    col("Desired", "integer", "Desired number of replicas."),
    col(
        "Current",
        "integer",
        "Most recently observed number of replicas.",
    ),
    col("Ready", "integer", "Number of ready replicas."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn replication_controller(obj: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(obj, "/spec/template/spec/containers");
    vec![
        name(obj).into(),
        int_at(obj, "/spec/replicas").into(),
        int_at(obj, "/status/replicas").into(),
        int_at(obj, "/status/readyReplicas").into(),
        age(obj, now),
        names,
        images,
        format_labels(map_at(obj, "/spec/selector")).into(),
    ]
}

pub(super) const SERVICE: &[ColumnDefinition] = &[
    NAME,
    col("Type", "string", "How the service is exposed."),
    col("Cluster-IP", "string", "The service's cluster IP."),
    col(
        "External-IP",
        "string",
        "External IPs or load balancer ingress points.",
    ),
    col("Port(s)", "string", "Ports the service exposes."),
    AGE,
    wide(
        "Selector",
        "string",
        "Labels of the pods traffic is routed to.",
    ),
];

/// `getServiceExternalIP` in its wide form (the server always prints wide).
fn service_external_ip(svc: &Value) -> String {
    let external_ips: Vec<&str> = arr_at(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(svc, "/spec/type") {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".into()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(svc, "/status/loadBalancer/ingress");
            if !external_ips.is_empty() {
                let mut all: Vec<&str> = if lb.is_empty() {
                    vec![]
                } else {
                    lb.split(',').collect()
                };
                all.extend(external_ips);
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".into()
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").into(),
        _ => "<unknown>".into(),
    }
}

/// `makePortString`: "80/TCP" or, with a node port, "80:30080/TCP".
fn service_ports(svc: &Value) -> String {
    let pieces: Vec<String> = arr_at(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int_at(p, "/port");
            let protocol = match str_at(p, "/protocol") {
                "" => "TCP",
                proto => proto,
            };
            match int_at(p, "/nodePort") {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    if pieces.is_empty() {
        "<none>".into()
    } else {
        pieces.join(",")
    }
}

pub(super) fn service(svc: &Value, now: Timestamp) -> Vec<Value> {
    let cluster_ip = arr_at(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| str_at(svc, "/spec/clusterIP"));
    let cluster_ip = if cluster_ip.is_empty() {
        "<none>"
    } else {
        cluster_ip
    };
    vec![
        name(svc).into(),
        str_at(svc, "/spec/type").into(),
        cluster_ip.into(),
        service_external_ip(svc).into(),
        service_ports(svc).into(),
        age(svc, now),
        format_labels(map_at(svc, "/spec/selector")).into(),
    ]
}

pub(super) const ENDPOINTS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "Addresses (with ports) behind the service.",
    ),
    AGE,
];

/// `formatEndpoints` with all ports: at most three `ip:port`, then "+ N more...".
fn format_endpoints(obj: &Value) -> String {
    let subsets = arr_at(obj, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAXIMUM: usize = 3;
    let mut list = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addresses = arr_at(ss, "/addresses");
        let ports = arr_at(ss, "/ports");
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAXIMUM {
                    more = true;
                    break;
                }
                list.push(str_at(a, "/ip").to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAXIMUM {
                    more = true;
                    break;
                }
                let ip = str_at(a, "/ip");
                let port = int_at(port, "/port");
                // net.JoinHostPort brackets IPv6 addresses.
                list.push(if ip.contains(':') {
                    format!("[{ip}]:{port}")
                } else {
                    format!("{ip}:{port}")
                });
            }
        }
    }
    list_with_more(&list, more, count, MAXIMUM)
}

pub(super) fn endpoints(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        format_endpoints(obj).into(),
        age(obj, now),
    ]
}

pub(super) const NODE: &[ColumnDefinition] = &[
    NAME,
    col(
        "Status",
        "string",
        "Readiness of the node, and whether it is cordoned.",
    ),
    col(
        "Roles",
        "string",
        "Roles of the node, from node-role.kubernetes.io/* labels.",
    ),
    AGE,
    col("Version", "string", "Kubelet version."),
    wide(
        "Internal-IP",
        "string",
        "The node's first InternalIP address.",
    ),
    wide(
        "External-IP",
        "string",
        "The node's first ExternalIP address.",
    ),
    wide(
        "OS-Image",
        "string",
        "Operating system image reported by the kubelet.",
    ),
    wide(
        "Kernel-Version",
        "string",
        "Kernel version reported by the kubelet.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "Container runtime and its version.",
    ),
];

/// Roles from `node-role.kubernetes.io/<role>` keys and the `kubernetes.io/role` value, sorted.
fn node_roles(node: &Value) -> Vec<&str> {
    let mut roles: Vec<&str> = map_at(node, "/metadata/labels")
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            Some(role) if !role.is_empty() => Some(role),
            Some(_) => None,
            None if k == "kubernetes.io/role" => v.as_str().filter(|v| !v.is_empty()),
            None => None,
        })
        .collect();
    roles.sort_unstable();
    roles.dedup();
    roles
}

fn node_address<'a>(node: &'a Value, type_: &str) -> &'a str {
    arr_at(node, "/status/addresses")
        .iter()
        .find(|a| str_at(a, "/type") == type_)
        .map(|a| str_at(a, "/address"))
        .unwrap_or("<none>")
}

pub(super) fn node(node: &Value, now: Timestamp) -> Vec<Value> {
    // Only the Ready condition counts; its last occurrence wins, as in a map.
    let ready = arr_at(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "/type") == "Ready");
    let mut status = match ready {
        Some(c) if str_at(c, "/status") == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    };
    if bool_at(node, "/spec/unschedulable") {
        status.push_str(",SchedulingDisabled");
    }
    let roles = node_roles(node);
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.join(",")
    };
    let info = |field: &str| match str_at(node, &format!("/status/nodeInfo/{field}")) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        name(node).into(),
        status.into(),
        roles.into(),
        age(node, now),
        str_at(node, "/status/nodeInfo/kubeletVersion").into(),
        node_address(node, "InternalIP").into(),
        node_address(node, "ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

pub(super) const NAMESPACE: &[ColumnDefinition] = &[
    NAME,
    col(
        "Status",
        "string",
        "Phase of the namespace (Active or Terminating).",
    ),
    AGE,
];

pub(super) fn namespace(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, "/status/phase").into(),
        age(obj, now),
    ]
}

pub(super) const CONFIG_MAP: &[ColumnDefinition] = &[
    NAME,
    col("Data", "string", "Number of keys in data and binaryData."),
    AGE,
];

pub(super) fn config_map(obj: &Value, now: Timestamp) -> Vec<Value> {
    let keys = len_at(obj, "/data") + len_at(obj, "/binaryData");
    vec![name(obj).into(), keys.into(), age(obj, now)]
}

pub(super) const SECRET: &[ColumnDefinition] = &[
    NAME,
    col("Type", "string", "Type of the secret's data."),
    col("Data", "string", "Number of keys in data."),
    AGE,
];

pub(super) fn secret(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        str_at(obj, "/type").into(),
        len_at(obj, "/data").into(),
        age(obj, now),
    ]
}

pub(super) const SERVICE_ACCOUNT: &[ColumnDefinition] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "Number of secrets listed on the service account.",
    ),
    AGE,
];

pub(super) fn service_account(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj).into(),
        len_at(obj, "/secrets").into(),
        age(obj, now),
    ]
}

/// `GetAccessModesAsString`: short names in a fixed order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(long, _)| has(long))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The beta storage-class annotation wins over `spec.storageClassName`.
fn storage_class(obj: &Value) -> &str {
    match get(
        obj,
        "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
    )
    .and_then(Value::as_str)
    {
        Some(class) => class,
        None => str_at(obj, "/spec/storageClassName"),
    }
}

fn unset_or(obj: &Value, pointer: &str) -> String {
    match get(obj, pointer).and_then(Value::as_str) {
        Some(s) => s.to_string(),
        None => "<unset>".to_string(),
    }
}

fn phase_or_terminating(obj: &Value) -> &str {
    if get(obj, "/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else {
        str_at(obj, "/status/phase")
    }
}

pub(super) const PERSISTENT_VOLUME: &[ColumnDefinition] = &[
    NAME,
    col("Capacity", "string", "Storage capacity of the volume."),
    col("Access Modes", "string", "Ways the volume can be mounted."),
    col(
        "Reclaim Policy",
        "string",
        "What happens to the volume when its claim is released.",
    ),
    col("Status", "string", "Phase of the volume."),
    col(
        "Claim",
        "string",
        "namespace/name of the claim bound to the volume.",
    ),
    col("StorageClass", "string", "Storage class of the volume."),
    col(
        "VolumeAttributesClass",
        "string",
        "Volume attributes class of the volume.",
    ),
    col("Reason", "string", "Why the volume is in its phase."),
    AGE,
    wide("VolumeMode", "string", "Filesystem or Block."),
];

pub(super) fn persistent_volume(pv: &Value, now: Timestamp) -> Vec<Value> {
    let claim = match get(pv, "/spec/claimRef") {
        Some(c) => format!("{}/{}", str_at(c, "/namespace"), str_at(c, "/name")),
        None => String::new(),
    };
    let capacity = match str_at(pv, "/spec/capacity/storage") {
        "" => "0",
        q => q,
    };
    vec![
        name(pv).into(),
        capacity.into(),
        access_modes(arr_at(pv, "/spec/accessModes")).into(),
        str_at(pv, "/spec/persistentVolumeReclaimPolicy").into(),
        phase_or_terminating(pv).into(),
        claim.into(),
        storage_class(pv).into(),
        unset_or(pv, "/spec/volumeAttributesClassName").into(),
        str_at(pv, "/status/reason").into(),
        age(pv, now),
        unset_or(pv, "/spec/volumeMode").into(),
    ]
}

pub(super) const PERSISTENT_VOLUME_CLAIM: &[ColumnDefinition] = &[
    NAME,
    col("Status", "string", "Phase of the claim."),
    col("Volume", "string", "Volume bound to the claim."),
    col("Capacity", "string", "Capacity of the bound volume."),
    col(
        "Access Modes",
        "string",
        "Access modes of the bound volume.",
    ),
    col("StorageClass", "string", "Storage class of the claim."),
    col(
        "VolumeAttributesClass",
        "string",
        "Volume attributes class of the claim.",
    ),
    AGE,
    wide("VolumeMode", "string", "Filesystem or Block."),
];

pub(super) fn persistent_volume_claim(pvc: &Value, now: Timestamp) -> Vec<Value> {
    let volume = str_at(pvc, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        let capacity = match str_at(pvc, "/status/capacity/storage") {
            "" => "0",
            q => q,
        };
        (
            capacity.to_string(),
            access_modes(arr_at(pvc, "/status/accessModes")),
        )
    };
    vec![
        name(pvc).into(),
        phase_or_terminating(pvc).into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        storage_class(pvc).into(),
        unset_or(pvc, "/spec/volumeAttributesClassName").into(),
        age(pvc, now),
        unset_or(pvc, "/spec/volumeMode").into(),
    ]
}

pub(super) const RESOURCE_QUOTA: &[ColumnDefinition] = &[
    NAME,
    AGE,
    col(
        "Request",
        "string",
        "Used/hard for each request (non-limits) resource.",
    ),
    col("Limit", "string", "Used/hard for each limits.* resource."),
];

pub(super) fn resource_quota(obj: &Value, now: Timestamp) -> Vec<Value> {
    let mut resources: Vec<(&String, &Value)> =
        map_at(obj, "/status/hard").into_iter().flatten().collect();
    resources.sort_by(|a, b| a.0.cmp(b.0));
    let used = map_at(obj, "/status/used");
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for (resource, hard) in resources {
        let used = used
            .and_then(|u| u.get(resource))
            .and_then(Value::as_str)
            .unwrap_or("0");
        let entry = format!("{resource}: {used}/{}", hard.as_str().unwrap_or("0"));
        if resource.starts_with("limits.") {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        name(obj).into(),
        age(obj, now),
        requests.join(", ").into(),
        limits.join(", ").into(),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::{json, Value};

    fn meta(name: &str) -> Value {
        json!({"name": name, "creationTimestamp": ago(2 * 86400 + 3 * 3600)})
    }

    #[test]
    fn services() {
        let svc = |spec: Value, status: Value| json!({"metadata": meta("s"), "spec": spec, "status": status});
        check(
            "",
            "Service",
            svc(
                json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
                    "selector": {"k8s-app": "kube-dns"}}),
                json!({}),
            ),
            json!([
                "s",
                "ClusterIP",
                "10.96.0.10",
                "<none>",
                "53/UDP,53/TCP",
                "2d3h",
                "k8s-app=kube-dns"
            ]),
        );
        check(
            "",
            "Service",
            svc(
                json!({"type": "NodePort", "clusterIP": "10.96.1.1", "externalIPs": ["1.2.3.4"],
                    "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
                json!({}),
            ),
            json!([
                "s",
                "NodePort",
                "10.96.1.1",
                "1.2.3.4",
                "80:30080/TCP",
                "2d3h",
                "<none>"
            ]),
        );
        check(
            "",
            "Service",
            svc(
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.1.2"], "ports": [{"port": 443, "nodePort": 31443}]}),
                json!({}),
            ),
            json!([
                "s",
                "LoadBalancer",
                "10.96.1.2",
                "<pending>",
                "443:31443/TCP",
                "2d3h",
                "<none>"
            ]),
        );
        check(
            "",
            "Service",
            svc(
                json!({"type": "LoadBalancer", "clusterIPs": ["10.96.1.2"], "externalIPs": ["9.9.9.9"], "ports": [{"port": 443}]}),
                json!({"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}]}}),
            ),
            json!([
                "s",
                "LoadBalancer",
                "10.96.1.2",
                "5.6.7.8,lb.example.com,9.9.9.9",
                "443/TCP",
                "2d3h",
                "<none>"
            ]),
        );
        check(
            "",
            "Service",
            svc(
                json!({"type": "ExternalName", "externalName": "db.example.com"}),
                json!({}),
            ),
            json!([
                "s",
                "ExternalName",
                "<none>",
                "db.example.com",
                "<none>",
                "2d3h",
                "<none>"
            ]),
        );
        check(
            "",
            "Service",
            svc(
                json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "selector": {"b": "2", "a": "1"}}),
                json!({}),
            ),
            json!([
                "s",
                "ClusterIP",
                "None",
                "<none>",
                "<none>",
                "2d3h",
                "a=1,b=2"
            ]),
        );
    }

    #[test]
    fn nodes() {
        let node = |labels: Value, unschedulable: bool, conditions: Value| {
            json!({
                "metadata": {"name": "n1", "creationTimestamp": ago(45 * 86400), "labels": labels},
                "spec": {"unschedulable": unschedulable},
                "status": {
                    "conditions": conditions,
                    "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "192.168.1.10"}],
                    "nodeInfo": {"kubeletVersion": "v1.33.1", "osImage": "Debian GNU/Linux 12 (bookworm)",
                        "kernelVersion": "6.1.0", "containerRuntimeVersion": "containerd://2.0.0"},
                },
            })
        };
        let ready = json!([{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}]);
        check(
            "",
            "Node",
            node(
                json!({"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": "true"}),
                false,
                ready.clone(),
            ),
            json!([
                "n1",
                "Ready",
                "control-plane,etcd",
                "45d",
                "v1.33.1",
                "192.168.1.10",
                "<none>",
                "Debian GNU/Linux 12 (bookworm)",
                "6.1.0",
                "containerd://2.0.0"
            ]),
        );
        let row =
            |labels: Value, unschedulable: bool, conditions: Value, status: &str, roles: &str| {
                check(
                    "",
                    "Node",
                    node(labels, unschedulable, conditions),
                    json!([
                        "n1",
                        status,
                        roles,
                        "45d",
                        "v1.33.1",
                        "192.168.1.10",
                        "<none>",
                        "Debian GNU/Linux 12 (bookworm)",
                        "6.1.0",
                        "containerd://2.0.0"
                    ]),
                )
            };
        row(json!({}), true, ready, "Ready,SchedulingDisabled", "<none>");
        row(
            json!({"kubernetes.io/role": "worker", "node-role.kubernetes.io/": ""}),
            false,
            json!([{"type": "Ready", "status": "False"}]),
            "NotReady",
            "worker",
        );
        row(
            json!({}),
            false,
            json!([{"type": "Ready", "status": "Unknown"}]),
            "NotReady",
            "<none>",
        );
        row(
            json!({}),
            true,
            json!([]),
            "Unknown,SchedulingDisabled",
            "<none>",
        );
        check(
            "",
            "Node",
            json!({"metadata": {"name": "bare"}}),
            json!([
                "bare",
                "Unknown",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]),
        );
    }

    #[test]
    fn endpoints() {
        let ep = |subsets: Value| json!({"metadata": meta("e"), "subsets": subsets});
        check(
            "",
            "Endpoints",
            ep(json!([])),
            json!(["e", "<none>", "2d3h"]),
        );
        check(
            "",
            "Endpoints",
            ep(
                json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "ports": [{"port": 80}]}]),
            ),
            json!(["e", "10.0.0.1:80,[fd00::1]:80", "2d3h"]),
        );
        check(
            "",
            "Endpoints",
            ep(
                json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}]),
            ),
            json!([
                "e",
                "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
                "2d3h"
            ]),
        );
        check(
            "",
            "Endpoints",
            ep(json!([{"addresses": [{"ip": "10.0.0.9"}]}])),
            json!(["e", "10.0.0.9", "2d3h"]),
        );
    }

    #[test]
    fn simple_core_kinds() {
        check(
            "",
            "Namespace",
            json!({"metadata": meta("default"), "status": {"phase": "Active"}}),
            json!(["default", "Active", "2d3h"]),
        );
        check(
            "",
            "ConfigMap",
            json!({"metadata": meta("c"), "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
            json!(["c", 3, "2d3h"]),
        );
        check(
            "",
            "ConfigMap",
            json!({"metadata": meta("c")}),
            json!(["c", 0, "2d3h"]),
        );
        check(
            "",
            "Secret",
            json!({"metadata": meta("s"), "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}}),
            json!(["s", "kubernetes.io/tls", 2, "2d3h"]),
        );
        check(
            "",
            "ServiceAccount",
            json!({"metadata": meta("default")}),
            json!(["default", 0, "2d3h"]),
        );
        check(
            "",
            "PodTemplate",
            json!({"metadata": meta("t"), "template": {"metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "a", "image": "i1"}, {"name": "b", "image": "i2"}]}}}),
            json!(["t", "a,b", "i1,i2", "app=x"]),
        );
        check(
            "",
            "ReplicationController",
            json!({"metadata": meta("rc"),
                "spec": {"replicas": 3, "selector": {"app": "x"}, "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}]}}},
                "status": {"replicas": 3, "readyReplicas": 2}}),
            json!(["rc", 3, 3, 2, "2d3h", "a", "nginx", "app=x"]),
        );
    }

    #[test]
    fn volumes() {
        check(
            "",
            "PersistentVolume",
            json!({"metadata": meta("pv1"),
                "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "ns", "name": "data"},
                    "storageClassName": "fast"},
                "status": {"phase": "Bound"}}),
            json!([
                "pv1", "10Gi", "RWO,RWX", "Retain", "Bound", "ns/data", "fast", "<unset>", "",
                "2d3h", "<unset>"
            ]),
        );
        check(
            "",
            "PersistentVolumeClaim",
            json!({"metadata": meta("data"),
                "spec": {"volumeName": "pv1", "storageClassName": "fast", "volumeMode": "Filesystem"},
                "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}}),
            json!([
                "data",
                "Bound",
                "pv1",
                "10Gi",
                "RWO",
                "fast",
                "<unset>",
                "2d3h",
                "Filesystem"
            ]),
        );
        let mut pending = json!({"metadata": meta("p"),
            "spec": {"resources": {"requests": {"storage": "1Gi"}}},
            "status": {"phase": "Pending"}});
        pending["metadata"]["annotations"] =
            json!({"volume.beta.kubernetes.io/storage-class": "old"});
        pending["metadata"]["deletionTimestamp"] = json!(ago(1));
        check(
            "",
            "PersistentVolumeClaim",
            pending,
            json!([
                "p",
                "Terminating",
                "",
                "",
                "",
                "old",
                "<unset>",
                "2d3h",
                "<unset>"
            ]),
        );
    }

    #[test]
    fn resource_quotas() {
        check(
            "",
            "ResourceQuota",
            json!({"metadata": meta("q"), "status": {
                "hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "4Gi", "limits.cpu": "4"},
                "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1"}}}),
            json!([
                "q",
                "2d3h",
                "pods: 3/10, requests.cpu: 500m/2",
                "limits.cpu: 1/4, limits.memory: 0/4Gi"
            ]),
        );
    }
}
