//! apps/v1: Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision.

use super::*;

const TEMPLATE_CONTAINERS: &str = "/spec/template/spec/containers";

pub(super) const DEPLOYMENT: &[ColumnDefinition] = &[
    NAME,
    col("Ready", "string", "Ready pods out of desired."),
    col("Up-to-date", "string", "Pods running the latest template."),
    col("Available", "string", "Pods available to serve."),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn deployment(obj: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(obj, TEMPLATE_CONTAINERS);
    // The Deployment printer uses the selector's plain string: "" when empty.
    let selector =
        selector_string(get(obj, "/spec/selector")).unwrap_or_else(|()| "<invalid>".into());
    vec![
        name(obj).into(),
        format!(
            "{}/{}",
            int_at(obj, "/status/readyReplicas"),
            int_at(obj, "/spec/replicas")
        )
        .into(),
        int_at(obj, "/status/updatedReplicas").into(),
        int_at(obj, "/status/availableReplicas").into(),
        age(obj, now),
        names,
        images,
        selector.into(),
    ]
}

pub(super) const REPLICA_SET: &[ColumnDefinition] = &[
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

pub(super) fn replica_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(obj, TEMPLATE_CONTAINERS);
    vec![
        name(obj).into(),
        int_at(obj, "/spec/replicas").into(),
        int_at(obj, "/status/replicas").into(),
        int_at(obj, "/status/readyReplicas").into(),
        age(obj, now),
        names,
        images,
        format_label_selector(get(obj, "/spec/selector")).into(),
    ]
}

pub(super) const STATEFUL_SET: &[ColumnDefinition] = &[
    NAME,
    col("Ready", "string", "Ready pods out of desired."),
    AGE,
    CONTAINERS,
    IMAGES,
];

pub(super) fn stateful_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(obj, TEMPLATE_CONTAINERS);
    vec![
        name(obj).into(),
        format!(
            "{}/{}",
            int_at(obj, "/status/readyReplicas"),
            int_at(obj, "/spec/replicas")
        )
        .into(),
        age(obj, now),
        names,
        images,
    ]
}

pub(super) const DAEMON_SET: &[ColumnDefinition] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "Nodes that should run the daemon pod.",
    ),
    col(
        "Current",
        "integer",
        "Nodes running at least one daemon pod.",
    ),
    col("Ready", "integer", "Nodes with a ready daemon pod."),
    col(
        "Up-to-date",
        "integer",
        "Nodes running the updated daemon pod.",
    ),
    col(
        "Available",
        "integer",
        "Nodes with an available daemon pod.",
    ),
    col(
        "Node Selector",
        "string",
        "Node selector of the pod template.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    SELECTOR,
];

pub(super) fn daemon_set(obj: &Value, now: Timestamp) -> Vec<Value> {
    let [names, images] = container_cells(obj, TEMPLATE_CONTAINERS);
    vec![
        name(obj).into(),
        int_at(obj, "/status/desiredNumberScheduled").into(),
        int_at(obj, "/status/currentNumberScheduled").into(),
        int_at(obj, "/status/numberReady").into(),
        int_at(obj, "/status/updatedNumberScheduled").into(),
        int_at(obj, "/status/numberAvailable").into(),
        format_labels(map_at(obj, "/spec/template/spec/nodeSelector")).into(),
        age(obj, now),
        names,
        images,
        format_label_selector(get(obj, "/spec/selector")).into(),
    ]
}

pub(super) const CONTROLLER_REVISION: &[ColumnDefinition] = &[
    NAME,
    col(
        "Controller",
        "string",
        "kind.group/name of the controlling object.",
    ),
    col("Revision", "string", "Revision number of the state data."),
    AGE,
];

pub(super) fn controller_revision(obj: &Value, now: Timestamp) -> Vec<Value> {
    let controller = arr_at(obj, "/metadata/ownerReferences")
        .iter()
        .find(|r| bool_at(r, "/controller"))
        .map(|r| {
            let api_version = str_at(r, "/apiVersion");
            // "apps/v1" → group "apps"; "v1" → the core group.
            let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
            let kind = str_at(r, "/kind");
            let group_kind = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            if group_kind.is_empty() {
                str_at(r, "/name").to_string()
            } else {
                format!("{}/{}", group_kind.to_lowercase(), str_at(r, "/name"))
            }
        })
        .unwrap_or_else(|| "<none>".into());
    vec![
        name(obj).into(),
        controller.into(),
        int_at(obj, "/revision").into(),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::{json, Value};

    fn meta() -> Value {
        json!({"name": "web", "creationTimestamp": ago(7 * 86400 + 5)})
    }

    fn template() -> Value {
        json!({"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}})
    }

    #[test]
    fn deployments() {
        let deploy = |replicas: Value, status: Value, selector: Value| json!({"metadata": meta(), "spec": {"replicas": replicas, "selector": selector, "template": template()}, "status": status});
        check(
            "apps",
            "Deployment",
            deploy(
                json!(3),
                json!({"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}),
                json!({"matchLabels": {"app": "web"}}),
            ),
            json!([
                "web",
                "2/3",
                3,
                2,
                "7d",
                "nginx,log",
                "nginx:1.27,busybox",
                "app=web"
            ]),
        );
        check(
            "apps",
            "Deployment",
            deploy(
                json!(0),
                json!({}),
                json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}),
            ),
            json!([
                "web",
                "0/0",
                0,
                0,
                "7d",
                "nginx,log",
                "nginx:1.27,busybox",
                "app in (web)"
            ]),
        );
        check(
            "apps",
            "Deployment",
            deploy(
                json!(1),
                json!({"readyReplicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
                json!({}),
            ),
            json!([
                "web",
                "1/1",
                1,
                1,
                "7d",
                "nginx,log",
                "nginx:1.27,busybox",
                ""
            ]),
        );
    }

    #[test]
    fn replica_and_stateful_and_daemon_sets() {
        check(
            "apps",
            "ReplicaSet",
            json!({"metadata": meta(), "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d"}}, "template": template()},
                "status": {"replicas": 2, "readyReplicas": 1}}),
            json!([
                "web",
                2,
                2,
                1,
                "7d",
                "nginx,log",
                "nginx:1.27,busybox",
                "app=web,pod-template-hash=5d"
            ]),
        );
        check(
            "apps",
            "StatefulSet",
            json!({"metadata": meta(), "spec": {"replicas": 3, "template": template()}, "status": {"readyReplicas": 3}}),
            json!(["web", "3/3", "7d", "nginx,log", "nginx:1.27,busybox"]),
        );
        check(
            "apps",
            "DaemonSet",
            json!({"metadata": meta(),
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                    "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [{"name": "a", "image": "agent:1"}]}}},
                "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2}}),
            json!([
                "web",
                3,
                3,
                2,
                3,
                2,
                "kubernetes.io/os=linux",
                "7d",
                "a",
                "agent:1",
                "app=agent"
            ]),
        );
    }

    #[test]
    fn controller_revisions() {
        check(
            "apps",
            "ControllerRevision",
            json!({"metadata": {"name": "web-7c9", "creationTimestamp": ago(60),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": true}]},
                "revision": 2}),
            json!(["web-7c9", "statefulset.apps/web", 2, "60s"]),
        );
        check(
            "apps",
            "ControllerRevision",
            json!({"metadata": {"name": "r"}, "revision": 1}),
            json!(["r", "<none>", 1, "<unknown>"]),
        );
    }
}
