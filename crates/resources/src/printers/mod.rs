//! Server-side Table printing: the columns and row cells `kubectl get` shows.
//!
//! kube-apiserver answers `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`
//! with a `meta.k8s.io/v1 Table`. Its columns and cells come from the printers in
//! `pkg/printers/internalversion`; this module reproduces them for objects given
//! in their JSON (v1) form. The API server always generates the wide form (every
//! column, `priority: 1` ones included); kubectl hides priority-1 columns unless
//! asked for `-o wide`.
//!
//! Each API group has its own file. [`printer_for`] picks the printer for a kind;
//! kinds without one get the apiserver's default table convertor (Name, Created At).

use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

mod apps;
mod autoscaling;
mod batch;
mod coordination;
mod core;
mod discovery;
mod event;
mod networking;
mod node;
mod pod;
mod policy;
mod rbac;
mod scheduling;
mod storage;

/// One `columnDefinitions[]` entry of a `meta.k8s.io/v1 Table`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ColumnDefinition {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

/// The columns of a kind and the function that computes one row's cells.
///
/// `cells` returns exactly one value per column, in column order.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    pub columns: &'static [ColumnDefinition],
    pub cells: fn(&Value, Timestamp) -> Vec<Value>,
}

/// The printer for a kind. `group` is "" for core. Unknown kinds get the default printer.
pub fn printer_for(group: &str, kind: &str) -> Printer {
    let p = |columns, cells| Printer { columns, cells };
    match (group, kind) {
        ("", "Pod") => p(pod::COLUMNS, pod::cells),
        ("", "PodTemplate") => p(core::POD_TEMPLATE, core::pod_template),
        ("", "ReplicationController") => {
            p(core::REPLICATION_CONTROLLER, core::replication_controller)
        }
        ("", "Service") => p(core::SERVICE, core::service),
        ("", "Endpoints") => p(core::ENDPOINTS, core::endpoints),
        ("", "Node") => p(core::NODE, core::node),
        ("", "Namespace") => p(core::NAMESPACE, core::namespace),
        ("", "Event") => p(event::COLUMNS, event::core_event),
        ("events.k8s.io", "Event") => p(event::COLUMNS, event::events_event),
        ("", "ConfigMap") => p(core::CONFIG_MAP, core::config_map),
        ("", "Secret") => p(core::SECRET, core::secret),
        ("", "ServiceAccount") => p(core::SERVICE_ACCOUNT, core::service_account),
        ("", "PersistentVolume") => p(core::PERSISTENT_VOLUME, core::persistent_volume),
        ("", "PersistentVolumeClaim") => {
            p(core::PERSISTENT_VOLUME_CLAIM, core::persistent_volume_claim)
        }
        ("", "ResourceQuota") => p(core::RESOURCE_QUOTA, core::resource_quota),
        ("apps", "Deployment") => p(apps::DEPLOYMENT, apps::deployment),
        ("apps", "ReplicaSet") => p(apps::REPLICA_SET, apps::replica_set),
        ("apps", "StatefulSet") => p(apps::STATEFUL_SET, apps::stateful_set),
        ("apps", "DaemonSet") => p(apps::DAEMON_SET, apps::daemon_set),
        ("apps", "ControllerRevision") => p(apps::CONTROLLER_REVISION, apps::controller_revision),
        ("batch", "Job") => p(batch::JOB, batch::job),
        ("batch", "CronJob") => p(batch::CRON_JOB, batch::cron_job),
        ("autoscaling", "HorizontalPodAutoscaler") => p(autoscaling::HPA, autoscaling::hpa),
        ("networking.k8s.io", "Ingress") => p(networking::INGRESS, networking::ingress),
        ("networking.k8s.io", "IngressClass") => {
            p(networking::INGRESS_CLASS, networking::ingress_class)
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            p(networking::NETWORK_POLICY, networking::network_policy)
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            p(rbac::BINDING, rbac::binding)
        }
        ("storage.k8s.io", "StorageClass") => p(storage::STORAGE_CLASS, storage::storage_class),
        ("policy", "PodDisruptionBudget") => p(policy::PDB, policy::pdb),
        ("coordination.k8s.io", "Lease") => p(coordination::LEASE, coordination::lease),
        ("discovery.k8s.io", "EndpointSlice") => {
            p(discovery::ENDPOINT_SLICE, discovery::endpoint_slice)
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            p(scheduling::PRIORITY_CLASS, scheduling::priority_class)
        }
        ("node.k8s.io", "RuntimeClass") => p(node::RUNTIME_CLASS, node::runtime_class),
        // Role, ClusterRole, LimitRange, CustomResourceDefinition and everything
        // else print as the apiserver's default table convertor does.
        _ => p(DEFAULT_COLUMNS, default_cells),
    }
}

/// Kubernetes' short human duration, as `duration.HumanDuration` prints it
/// ("0s", "5m", "3h12m", "2d3h", "45d", "3y40d").
pub fn human_duration(d: std::time::Duration) -> String {
    human_signed(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
}

/// `HumanDuration` for a possibly negative duration: clocks up to two seconds
/// behind still read "0s", anything further in the future is "<invalid>".
fn human_signed(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            dy => format!("{years}y{dy}d"),
        };
    }
    format!("{years}y")
}

// ---------------------------------------------------------------------------
// Column definitions.

const fn col(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> ColumnDefinition {
    ColumnDefinition {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

/// A column shown only with `-o wide`.
const fn wide(
    name: &'static str,
    type_: &'static str,
    description: &'static str,
) -> ColumnDefinition {
    ColumnDefinition {
        name,
        type_,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: ColumnDefinition = ColumnDefinition {
    name: "Name",
    type_: "string",
    format: "name",
    description:
        "Name of the object, unique within its namespace (or cluster, for cluster-scoped kinds).",
    priority: 0,
};
const AGE: ColumnDefinition = col(
    "Age",
    "string",
    "Time since the object was created (metadata.creationTimestamp).",
);
const CONTAINERS: ColumnDefinition = wide(
    "Containers",
    "string",
    "Names of the containers in the pod template.",
);
const IMAGES: ColumnDefinition = wide(
    "Images",
    "string",
    "Images of the containers in the pod template.",
);
const SELECTOR: ColumnDefinition = wide(
    "Selector",
    "string",
    "Label selector of the pods this object manages.",
);

const DEFAULT_COLUMNS: &[ColumnDefinition] = &[
    NAME,
    col(
        "Created At",
        "date",
        "Time the object was created (metadata.creationTimestamp).",
    ),
];

/// kube-apiserver's default table convertor: name and RFC 3339 creation time.
fn default_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let created = timestamp(obj, "/metadata/creationTimestamp")
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        // Go's zero time, which is what an unset creationTimestamp formats as.
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![name(obj).into(), created.into()]
}

// ---------------------------------------------------------------------------
// Reading the JSON object. Missing fields read as Go's zero values, which is
// what the upstream printers see for fields the client left out.

fn get<'a>(v: &'a Value, pointer: &str) -> Option<&'a Value> {
    v.pointer(pointer).filter(|v| !v.is_null())
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    get(v, pointer).and_then(Value::as_str).unwrap_or("")
}

fn int_at(v: &Value, pointer: &str) -> i64 {
    get(v, pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn bool_at(v: &Value, pointer: &str) -> bool {
    get(v, pointer).and_then(Value::as_bool).unwrap_or(false)
}

fn arr_at<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    get(v, pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn map_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a Map<String, Value>> {
    get(v, pointer).and_then(Value::as_object)
}

fn len_at(v: &Value, pointer: &str) -> i64 {
    match get(v, pointer) {
        Some(Value::Object(m)) => m.len() as i64,
        Some(Value::Array(a)) => a.len() as i64,
        _ => 0,
    }
}

fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name")
}

fn timestamp(v: &Value, pointer: &str) -> Option<Timestamp> {
    get(v, pointer)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

/// `translateTimestampSince`: "<unknown>" for an unset time, else the age.
fn since(v: &Value, pointer: &str, now: Timestamp) -> String {
    match timestamp(v, pointer) {
        Some(t) => human_signed(now.duration_since(t)),
        None => "<unknown>".into(),
    }
}

fn age(obj: &Value, now: Timestamp) -> Value {
    since(obj, "/metadata/creationTimestamp", now).into()
}

/// An IntOrString as Go's `IntOrString.String()` prints it.
fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// `labels.FormatLabels`: sorted `k=v` pairs joined by ",", or "<none>".
fn format_labels(labels: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() {
        return "<none>".into();
    }
    pairs.sort();
    pairs.join(",")
}

/// `LabelSelectorAsSelector(sel).String()`: requirements sorted by key; "" for
/// a nil or empty selector; "<error>" for an invalid operator.
fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in map_at(sel, "/matchLabels").into_iter().flatten() {
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
    }
    for expr in arr_at(sel, "/matchExpressions") {
        let key = str_at(expr, "/key");
        let mut values: Vec<&str> = arr_at(expr, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        values.dedup();
        let text = match str_at(expr, "/operator") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    // Stable sort by key, as the labels package orders requirements.
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: like [`selector_string`] but "<none>" when empty.
fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Err(()) => "<error>".into(),
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
    }
}

/// `layoutContainerCells`: container names and images, each joined by ",".
fn container_cells(obj: &Value, containers_pointer: &str) -> [Value; 2] {
    let containers = arr_at(obj, containers_pointer);
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    [names.join(",").into(), images.join(",").into()]
}

/// The status of the first condition of `type_` is "True" (`hasJobCondition`-style:
/// only the first condition with that type counts).
fn condition_true(obj: &Value, conditions_pointer: &str, type_: &str) -> bool {
    arr_at(obj, conditions_pointer)
        .iter()
        .find(|c| str_at(c, "/type") == type_)
        .is_some_and(|c| str_at(c, "/status") == "True")
}

/// IPs or hostnames of a load balancer status, de-duplicated and sorted.
fn load_balancer_ingress(obj: &Value, pointer: &str) -> String {
    let mut result: Vec<&str> = arr_at(obj, pointer)
        .iter()
        .filter_map(|i| {
            let ip = str_at(i, "/ip");
            let host = str_at(i, "/hostname");
            (!ip.is_empty())
                .then_some(ip)
                .or((!host.is_empty()).then_some(host))
        })
        .collect();
    result.sort_unstable();
    result.dedup();
    result.join(",")
}

/// "a,b,c + N more..." as the upstream list columns print it.
fn list_with_more(list: &[String], more: bool, count: usize, maximum: usize) -> String {
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - maximum)
    } else {
        ret
    }
}

#[cfg(test)]
mod test_support {
    use super::*;

    pub const NOW: &str = "2025-01-10T12:00:00Z";

    /// `now` minus `secs` seconds, as an RFC 3339 string.
    pub fn ago(secs: i64) -> String {
        let now: Timestamp = NOW.parse().unwrap();
        (now - SignedDuration::from_secs(secs)).to_string()
    }

    /// Prints `obj` with the printer for (group, kind) and compares its cells.
    #[track_caller]
    pub fn check(group: &str, kind: &str, obj: Value, expected: Value) {
        let printer = printer_for(group, kind);
        let cells = (printer.cells)(&obj, NOW.parse().unwrap());
        assert_eq!(cells.len(), printer.columns.len(), "one cell per column");
        assert_eq!(Value::Array(cells), expected);
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn human_durations() {
        let cases: &[(u64, &str)] = &[
            (0, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (150, "2m30s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600 + 12 * 60, "3h12m"),
            (5 * 3600, "5h"),
            (8 * 3600, "8h"),
            (47 * 3600 + 59 * 60, "47h"),
            (2 * 86400 + 3 * 3600, "2d3h"),
            (7 * 86400, "7d"),
            (45 * 86400, "45d"),
            (729 * 86400, "729d"),
            (3 * 365 * 86400 + 40 * 86400, "3y40d"),
            (4 * 365 * 86400, "4y"),
            (9 * 365 * 86400 + 3 * 86400, "9y"),
        ];
        for &(secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
        }
        assert_eq!(human_signed(SignedDuration::from_secs(-1)), "0s");
        assert_eq!(human_signed(SignedDuration::from_secs(-2)), "<invalid>");
    }

    #[test]
    fn every_printer_has_name_column() {
        let kinds = [
            ("", "Pod"),
            ("", "Service"),
            ("apps", "Deployment"),
            ("batch", "Job"),
            ("rbac.authorization.k8s.io", "Role"),
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            ("example.com", "Widget"),
        ];
        for (g, k) in kinds {
            let p = printer_for(g, k);
            assert_eq!(p.columns[0].name, "Name", "{g}/{k}");
            assert_eq!(p.columns[0].format, "name", "{g}/{k}");
        }
        // Events are the one upstream exception: Name is the last, wide column.
        let ev = printer_for("", "Event");
        assert_eq!(
            ev.columns.last().map(|c| (c.name, c.priority)),
            Some(("Name", 1))
        );
    }

    /// Every kind with its own printer, to check invariants over all of them.
    const PRINTED: &[(&str, &str)] = &[
        ("", "Pod"),
        ("", "PodTemplate"),
        ("", "ReplicationController"),
        ("", "Service"),
        ("", "Endpoints"),
        ("", "Node"),
        ("", "Namespace"),
        ("", "Event"),
        ("", "ConfigMap"),
        ("", "Secret"),
        ("", "ServiceAccount"),
        ("", "PersistentVolume"),
        ("", "PersistentVolumeClaim"),
        ("", "ResourceQuota"),
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ControllerRevision"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("autoscaling", "HorizontalPodAutoscaler"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "IngressClass"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("rbac.authorization.k8s.io", "RoleBinding"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("policy", "PodDisruptionBudget"),
        ("coordination.k8s.io", "Lease"),
        ("discovery.k8s.io", "EndpointSlice"),
        ("events.k8s.io", "Event"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("node.k8s.io", "RuntimeClass"),
    ];

    #[test]
    fn one_cell_per_column_even_for_empty_objects() {
        let now: Timestamp = NOW.parse().unwrap();
        for &(g, k) in PRINTED {
            let p = printer_for(g, k);
            assert_ne!(p.columns, DEFAULT_COLUMNS, "{g}/{k} has its own printer");
            for obj in [
                json!({}),
                json!(null),
                json!({"metadata": {"name": "x"}, "spec": null}),
            ] {
                assert_eq!((p.cells)(&obj, now).len(), p.columns.len(), "{g}/{k}");
            }
            let names: Vec<&str> = p.columns.iter().map(|c| c.name).collect();
            assert!(names.contains(&"Name"), "{g}/{k}");
        }
    }

    #[test]
    fn default_printer() {
        let columns = serde_json::to_value(printer_for("", "LimitRange").columns).unwrap();
        assert_eq!(columns[1]["name"], "Created At");
        assert_eq!(columns[1]["type"], "date");
        let obj = json!({"metadata": {"name": "w", "creationTimestamp": "2024-03-01T10:00:00Z"}});
        check(
            "example.com",
            "Widget",
            obj.clone(),
            json!(["w", "2024-03-01T10:00:00Z"]),
        );
        check(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            obj.clone(),
            json!(["w", "2024-03-01T10:00:00Z"]),
        );
        check(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            obj,
            json!(["w", "2024-03-01T10:00:00Z"]),
        );
        check(
            "",
            "LimitRange",
            json!({"metadata": {"name": "l"}}),
            json!(["l", "0001-01-01T00:00:00Z"]),
        );
    }

    #[test]
    fn selectors() {
        let sel = json!({
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "x", "operator": "Exists"},
                {"key": "c", "operator": "DoesNotExist"}
            ]
        });
        assert_eq!(
            format_label_selector(Some(&sel)),
            "a=1,b=2,!c,env notin (dev),tier in (api,web),x"
        );
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(
            format_labels(json!({"z": "1", "a": "2"}).as_object()),
            "a=2,z=1"
        );
    }
}
