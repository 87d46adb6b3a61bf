//! Table tests: an object in, the defaulted object out.

use super::apply_defaults;
use serde_json::{json, Value};

fn split(kind: &str) -> (&str, &str) {
    kind.rsplit_once('/').unwrap_or(("", kind))
}

/// Default `input` and compare with `expected`; defaulting again must not
/// change anything.
fn check(kind: &str, input: Value, expected: Value) {
    let (group, k) = split(kind);
    let mut obj = input;
    apply_defaults(group, k, &mut obj);
    assert_eq!(
        obj,
        expected,
        "{kind}:\n{}",
        serde_json::to_string_pretty(&obj).unwrap()
    );
    let again = obj.clone();
    apply_defaults(group, k, &mut obj);
    assert_eq!(obj, again, "{kind}: not idempotent");
}

fn container_defaults(name: &str, image: &str, policy: &str) -> Value {
    json!({"name": name, "image": image, "imagePullPolicy": policy,
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"})
}

fn pod_spec_defaults(containers: Value) -> Value {
    json!({"containers": containers, "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
        "schedulerName": "default-scheduler", "securityContext": {}, "terminationGracePeriodSeconds": 30})
}

#[test]
fn pods() {
    let mut spec = pod_spec_defaults(json!([container_defaults("a", "nginx", "Always")]));
    spec["enableServiceLinks"] = json!(true);
    check(
        "Pod",
        json!({"spec": {"containers": [{"name": "a", "image": "nginx"}]}}),
        json!({"spec": spec}),
    );

    for (image, policy) in [
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry:5000/team/app", "Always"),
        ("registry:5000/team/app:v1", "IfNotPresent"),
        ("nginx@sha256:abcd", "IfNotPresent"),
    ] {
        let mut obj = json!({"spec": {"containers": [{"name": "a", "image": image}]}});
        apply_defaults("", "Pod", &mut obj);
        assert_eq!(
            obj["spec"]["containers"][0]["imagePullPolicy"],
            json!(policy),
            "{image}"
        );
    }

    let mut obj = json!({"spec": {
        "restartPolicy": "Never", "terminationGracePeriodSeconds": 5, "enableServiceLinks": false,
        "containers": [{"name": "a", "image": "x:1", "imagePullPolicy": "Never",
            "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
            "livenessProbe": {"httpGet": {"port": 80}, "periodSeconds": 5},
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
        "volumes": [{"name": "a"}, {"name": "s", "secret": {"secretName": "s"}}, {"name": "c", "configMap": {"name": "c", "defaultMode": 256}}]}});
    apply_defaults("", "Pod", &mut obj);
    let c = &obj["spec"]["containers"][0];
    assert_eq!(obj["spec"]["restartPolicy"], json!("Never"));
    assert_eq!(obj["spec"]["terminationGracePeriodSeconds"], json!(5));
    assert_eq!(obj["spec"]["enableServiceLinks"], json!(false));
    assert_eq!(c["imagePullPolicy"], json!("Never"));
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}])
    );
    assert_eq!(
        c["resources"]["requests"],
        json!({"cpu": "500m", "memory": "1Gi"})
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"],
        json!("v1")
    );
    assert_eq!(
        obj["spec"]["volumes"][0],
        json!({"name": "a", "emptyDir": {}})
    );
    assert_eq!(
        obj["spec"]["volumes"][1]["secret"]["defaultMode"],
        json!(420)
    );
    assert_eq!(
        obj["spec"]["volumes"][2]["configMap"]["defaultMode"],
        json!(256)
    );

    let mut obj = json!({"spec": {"hostNetwork": true, "containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 8080}]}]}});
    apply_defaults("", "Pod", &mut obj);
    assert_eq!(
        obj["spec"]["containers"][0]["ports"][0]["hostPort"],
        json!(8080)
    );
}

#[test]
fn templates_do_not_get_pod_only_defaults() {
    let tmpl = json!({"metadata": {"labels": {"app": "w"}}, "spec": {"containers": [{"name": "a", "image": "nginx:1", "resources": {"limits": {"cpu": "1"}}}]}});
    let mut expected_tmpl = tmpl.clone();
    let mut c = container_defaults("a", "nginx:1", "IfNotPresent");
    c["resources"] = json!({"limits": {"cpu": "1"}});
    expected_tmpl["spec"] = pod_spec_defaults(json!([c]));
    check(
        "apps/Deployment",
        json!({"spec": {"selector": {"matchLabels": {"app": "w"}}, "template": tmpl}}),
        json!({"spec": {"selector": {"matchLabels": {"app": "w"}}, "template": expected_tmpl,
            "replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}}}),
    );
    check(
        "apps/Deployment",
        json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}}),
        json!({"spec": {"replicas": 0, "strategy": {"type": "Recreate"}, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}}),
    );
    check(
        "PodTemplate",
        json!({"template": {"spec": {"containers": []}}}),
        json!({"template": {"spec": pod_spec_defaults(json!([]))}}),
    );
}

#[test]
fn workloads() {
    check(
        "apps/ReplicaSet",
        json!({"spec": {}}),
        json!({"spec": {"replicas": 1}}),
    );
    check(
        "ReplicationController",
        json!({"spec": {"template": {"metadata": {"labels": {"app": "w"}}}}}),
        json!({"metadata": {"labels": {"app": "w"}}, "spec": {"replicas": 1, "selector": {"app": "w"}, "template": {"metadata": {"labels": {"app": "w"}}}}}),
    );
    check(
        "apps/StatefulSet",
        json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {}}]}}),
        json!({"spec": {"podManagementPolicy": "OrderedReady", "replicas": 1, "revisionHistoryLimit": 10,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {"volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}]}}),
    );
    check(
        "apps/StatefulSet",
        json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
        json!({"spec": {"podManagementPolicy": "OrderedReady", "replicas": 1, "revisionHistoryLimit": 10,
            "updateStrategy": {"type": "OnDelete"},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}}}),
    );
    check(
        "apps/DaemonSet",
        json!({"spec": {}}),
        json!({"spec": {"revisionHistoryLimit": 10, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}}),
    );
}

#[test]
fn jobs() {
    check(
        "batch/Job",
        json!({"spec": {}}),
        json!({"spec": {"completions": 1, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
            "suspend": false, "podReplacementPolicy": "TerminatingOrFailed"}}),
    );
    check(
        "batch/Job",
        json!({"spec": {"completions": 5, "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}}}),
        json!({"spec": {"completions": 5, "parallelism": 1, "backoffLimit": 6, "completionMode": "NonIndexed",
            "suspend": false, "podReplacementPolicy": "Failed",
            "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}}}),
    );
    // With a uid the selector is generated and the template labelled.
    let mut job = json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": {"template": {"spec": {"containers": []}}}});
    apply_defaults("batch", "Job", &mut job);
    assert_eq!(
        job["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u-1"}})
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"]["job-name"],
        json!("pi")
    );
    assert_eq!(
        job["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        json!("pi")
    );
    assert!(crate::validation::validate("batch", "Job", true, &with_ns(job), None).is_empty());

    check(
        "batch/CronJob",
        json!({"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {}}}}),
        json!({"spec": {"schedule": "@hourly", "jobTemplate": {"spec": {}}, "concurrencyPolicy": "Allow", "suspend": false,
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1}}),
    );
}

fn with_ns(mut v: Value) -> Value {
    v["metadata"]["namespace"] = json!("default");
    v["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    v["spec"]["template"]["spec"]["containers"] = json!([{"name": "c", "image": "x", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}]);
    v
}

#[test]
fn services() {
    check(
        "Service",
        json!({"spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}}),
        json!({"spec": {"type": "ClusterIP", "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv4"],
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}}),
    );
    check(
        "Service",
        json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "clusterIP": "fd00::10", "ports": [{"port": 443, "targetPort": 0}]}}),
        json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
            "clusterIP": "fd00::10", "clusterIPs": ["fd00::10"], "ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv6"],
            "externalTrafficPolicy": "Cluster", "internalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": true,
            "ports": [{"port": 443, "protocol": "TCP", "targetPort": 443}]}}),
    );
    check(
        "Service",
        json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
        json!({"spec": {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}}),
    );
}

/// `stringData` is merged into `data` (base64, winning on shared keys) and
/// never kept.
#[test]
fn secret_string_data_merges_into_data() {
    check(
        "Secret",
        json!({"data": {"a": "eA=="}, "stringData": {"b": "y", "a": "z"}}),
        json!({"data": {"a": "eg==", "b": "eQ=="}, "type": "Opaque"}),
    );
    check(
        "Secret",
        json!({"type": "kubernetes.io/basic-auth", "stringData": {"username": "admin", "password": null}}),
        json!({"type": "kubernetes.io/basic-auth", "data": {"username": "YWRtaW4=", "password": ""}}),
    );
    check(
        "Secret",
        json!({"data": null, "stringData": {"k": "v"}}),
        json!({"data": {"k": "dg=="}, "type": "Opaque"}),
    );
    // Empty or null stringData only disappears.
    check(
        "Secret",
        json!({"stringData": {}}),
        json!({"type": "Opaque"}),
    );
    check(
        "Secret",
        json!({"data": {"a": "eA=="}, "stringData": null}),
        json!({"data": {"a": "eA=="}, "type": "Opaque"}),
    );
}

#[test]
fn core_kinds() {
    check(
        "Secret",
        json!({"data": {}}),
        json!({"data": {}, "type": "Opaque"}),
    );
    check(
        "Secret",
        json!({"type": "kubernetes.io/tls"}),
        json!({"type": "kubernetes.io/tls"}),
    );
    check(
        "ConfigMap",
        json!({"data": {"a": "b"}}),
        json!({"data": {"a": "b"}}),
    );
    check(
        "Namespace",
        json!({"metadata": {"name": "team"}}),
        json!({"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
    );
    check(
        "PersistentVolumeClaim",
        json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
        json!({"spec": {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
    );
    check(
        "PersistentVolume",
        json!({"spec": {}}),
        json!({"spec": {"persistentVolumeReclaimPolicy": "Retain", "volumeMode": "Filesystem"}, "status": {"phase": "Pending"}}),
    );
    check(
        "Endpoints",
        json!({"subsets": [{"ports": [{"port": 80}]}]}),
        json!({"subsets": [{"ports": [{"port": 80, "protocol": "TCP"}]}]}),
    );
    check(
        "Node",
        json!({"status": {"capacity": {"cpu": "4"}}}),
        json!({"status": {"capacity": {"cpu": "4"}, "allocatable": {"cpu": "4"}}}),
    );
    check(
        "LimitRange",
        json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}, {"type": "Pod"}]}}),
        json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"},
            "default": {"cpu": "2"}, "defaultRequest": {"cpu": "2", "memory": "1Mi"}}, {"type": "Pod"}]}}),
    );
}

#[test]
fn other_groups() {
    check(
        "autoscaling/HorizontalPodAutoscaler",
        json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 3}}),
        json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 3, "minReplicas": 1}}),
    );
    check(
        "autoscaling/HorizontalPodAutoscaler",
        json!({"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 3}}),
        json!({"apiVersion": "autoscaling/v2", "spec": {"maxReplicas": 3, "minReplicas": 1,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}),
    );
    check(
        "rbac.authorization.k8s.io/RoleBinding",
        json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "a"}, {"kind": "User", "name": "u"}]}),
        json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "a", "apiGroup": ""}, {"kind": "User", "name": "u", "apiGroup": "rbac.authorization.k8s.io"}]}),
    );
    check(
        "scheduling.k8s.io/PriorityClass",
        json!({"value": 1}),
        json!({"value": 1, "preemptionPolicy": "PreemptLowerPriority"}),
    );
    check(
        "storage.k8s.io/StorageClass",
        json!({"provisioner": "x"}),
        json!({"provisioner": "x", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}),
    );
    check(
        "networking.k8s.io/NetworkPolicy",
        json!({"spec": {"egress": [{"ports": [{"port": 53}]}]}}),
        json!({"spec": {"egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}], "policyTypes": ["Ingress", "Egress"]}}),
    );
    check(
        "discovery.k8s.io/EndpointSlice",
        json!({"ports": [{"port": 80}]}),
        json!({"ports": [{"port": 80, "protocol": "TCP", "name": ""}]}),
    );
    check(
        "example.com/Widget",
        json!({"spec": {"x": 1}}),
        json!({"spec": {"x": 1}}),
    );
}
