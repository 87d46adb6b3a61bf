//! Table tests: each case is an object (defaulted first, as the server does)
//! and the fields that must be reported.

use super::quantity::parse_quantity;
use super::*;
use crate::defaults::apply_defaults;
use serde_json::{json, Value};

fn split(kind: &str) -> (&str, &str) {
    kind.rsplit_once('/').unwrap_or(("", kind))
}

fn namespaced(kind: &str) -> bool {
    !matches!(
        kind,
        "Namespace"
            | "Node"
            | "PersistentVolume"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "PriorityClass"
            | "StorageClass"
            | "RuntimeClass"
            | "IngressClass"
    )
}

fn run(kind: &str, mut obj: Value, old: Option<Value>) -> Vec<FieldError> {
    let (group, k) = split(kind);
    apply_defaults(group, k, &mut obj);
    let old = old.map(|mut o| {
        apply_defaults(group, k, &mut o);
        o
    });
    validate(group, k, namespaced(k), &obj, old.as_ref())
}

fn fields(errs: &[FieldError]) -> Vec<String> {
    let mut f: Vec<String> = errs.iter().map(|e| e.field.clone()).collect();
    f.sort();
    f
}

/// Validate a create of `obj` and compare the reported fields.
fn check(kind: &str, obj: Value, expected: &[&str]) {
    let errs = run(kind, obj, None);
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(fields(&errs), want, "{kind}: {errs:#?}");
}

/// Validate an update from `old` to `new` and compare the reported fields.
fn check_update(kind: &str, old: Value, new: Value, expected: &[&str]) {
    let errs = run(kind, new, Some(old));
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(fields(&errs), want, "{kind}: {errs:#?}");
}

/// The message lines (`field: message`) of a create.
fn lines(kind: &str, obj: Value) -> Vec<String> {
    run(kind, obj, None)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Apply `f` to a JSON copy of `base`.
fn with(base: &Value, f: impl FnOnce(&mut Value)) -> Value {
    let mut v = base.clone();
    f(&mut v);
    v
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
}

fn template() -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}})
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
}

const DNS_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

#[test]
fn messages_match_upstream() {
    assert_eq!(
        lines(
            "Pod",
            with(&pod(), |p| p["metadata"]["name"] = json!("Foo"))
        ),
        vec![format!(
            "metadata.name: Invalid value: \"Foo\": {DNS_SUBDOMAIN_MSG}"
        )]
    );
    assert_eq!(
        lines("Pod", with(&pod(), |p| p["metadata"]["labels"]["app"] = json!("-bad"))),
        vec!["metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string()]
    );
    assert_eq!(
        lines(
            "Pod",
            with(&pod(), |p| p["spec"]["containers"][0] = json!({}))
        ),
        vec![
            "spec.containers[0].name: Required value".to_string(),
            "spec.containers[0].image: Required value".to_string(),
        ]
    );
    assert_eq!(
        lines("Pod", with(&pod(), |p| p["spec"]["restartPolicy"] = json!("x"))),
        vec!["spec.restartPolicy: Unsupported value: \"x\": supported values: \"Always\", \"OnFailure\", \"Never\"".to_string()]
    );
    assert_eq!(
        lines("apps/Deployment", with(&deployment(), |d| d["spec"]["selector"]["matchLabels"]["app"] = json!("api"))),
        vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`".to_string()]
    );
    assert_eq!(
        lines(
            "Service",
            with(
                &service(),
                |s| s["spec"]["ports"] =
                    json!([{"name": "http", "port": 80}, {"name": "http", "port": 81}])
            )
        ),
        vec!["spec.ports[1].name: Duplicate value: \"http\"".to_string()]
    );
    let errs = run(
        "apps/Deployment",
        with(&deployment(), |d| {
            d["spec"]["selector"]["matchLabels"]["app"] = json!("api");
            d["spec"]["template"]["metadata"]["labels"]["app"] = json!("api");
        }),
        Some(deployment()),
    );
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"api\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable".to_string()]
    );
    assert_eq!(errs[0].reason(), "FieldValueInvalid");
    assert_eq!(
        lines("Namespace", json!({"metadata": {"name": "a.b"}})),
        vec!["metadata.name: Invalid value: \"a.b\": must not contain dots".to_string()]
    );
    assert_eq!(
        lines("Service", with(&service(), |s| s["metadata"]["name"] = json!("1web"))),
        vec!["metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string()]
    );
}

#[test]
fn error_bodies() {
    let e = FieldError::required("a", "");
    assert_eq!(e.message(), "Required value");
    assert_eq!(e.reason(), "FieldValueRequired");
    let e = FieldError::forbidden("spec", "nope");
    assert_eq!(e.to_string(), "spec: Forbidden: nope");
    let e = FieldError::invalid("spec.replicas", -1, "must be greater than or equal to 0");
    assert_eq!(
        e.to_string(),
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    let e = FieldError::not_found("x", "v");
    assert_eq!(e.message(), "Not found: \"v\"");
    assert_eq!(e.reason(), "FieldValueNotFound");
    let e = FieldError::too_long("metadata.annotations", 262144);
    assert_eq!(e.message(), "Too long: must have at most 262144 bytes");
    let e = FieldError::invalid("x", "a\"b\n", "d");
    assert_eq!(e.message(), "Invalid value: \"a\\\"b\\n\": d");
}

#[test]
fn name_helpers() {
    assert!(is_dns1123_subdomain("a.b-c.d").is_empty());
    assert_eq!(is_dns1123_subdomain(&"a".repeat(254)).len(), 1);
    assert_eq!(is_dns1123_subdomain("-a").len(), 1);
    assert!(is_dns1123_label("abc-1").is_empty());
    assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
    assert_eq!(
        is_dns1123_label(&"a".repeat(64)),
        vec!["must be no more than 63 characters"]
    );
    assert!(is_qualified_name("example.com/My_name.1").is_empty());
    assert_eq!(
        is_qualified_name("/a"),
        vec!["prefix part must be non-empty"]
    );
    assert_eq!(is_qualified_name("a/").len(), 2);
    assert_eq!(is_qualified_name("a/b/c").len(), 1);
    assert!(is_qualified_name("a/b/c")[0].starts_with("a valid label key must consist"));
    assert!(is_valid_label_value("").is_empty());
    assert!(is_valid_label_value("A.b_c-1").is_empty());
    assert_eq!(is_valid_label_value("a b").len(), 1);
    assert_eq!(is_valid_label_value(&"a".repeat(64)).len(), 1);
}

#[test]
fn quantities() {
    let q = |s: &str| parse_quantity(s).unwrap();
    assert_eq!(q("500m").milli_value(), 500);
    assert_eq!(q("1").milli_value(), 1000);
    assert_eq!(q("1Ki").value(), 1024);
    assert_eq!(q("1Gi").value(), 1 << 30);
    assert_eq!(q("1.5").milli_value(), 1500);
    assert_eq!(q("1e3").value(), 1000);
    assert_eq!(q("1E").value(), 1_000_000_000_000_000_000);
    assert_eq!(q("100n").milli_value(), 1);
    assert_eq!(q("-1").value(), -1);
    assert!(q("1Gi") > q("1G"));
    assert_eq!(q("1000m"), q("1"));
    assert_eq!(q("0.1"), q("100m"));
    for bad in ["", "abc", "1..0", "1Zi", "1 Gi", ".", "1Mb"] {
        assert!(parse_quantity(bad).is_err(), "{bad}");
    }
    assert_eq!(
        parse_quantity("1Zi").unwrap_err(),
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
    assert_eq!(
        parse_quantity("1mi").unwrap_err(),
        "unable to parse quantity's suffix"
    );
}

#[test]
fn object_meta() {
    let cm = |meta: Value| json!({"metadata": meta});
    check("ConfigMap", cm(json!({"name": "a", "namespace": "d"})), &[]);
    check(
        "ConfigMap",
        cm(json!({"namespace": "d"})),
        &["metadata.name"],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a"})),
        &["metadata.namespace"],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "D"})),
        &["metadata.namespace"],
    );
    check(
        "Namespace",
        json!({"metadata": {"name": "a", "namespace": "x"}}),
        &["metadata.namespace"],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "d", "generateName": "Web-"})),
        &["metadata.generateName"],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "web-x1", "namespace": "d", "generateName": "web-"})),
        &[],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "d", "labels": {"a/b/c": "x"}})),
        &["metadata.labels"],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "d", "labels": {"example.com/x": "y"}})),
        &[],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "d", "labels": {"x": "a".repeat(64)}})),
        &["metadata.labels"],
    );
    check(
        "ConfigMap",
        cm(
            json!({"name": "a", "namespace": "d", "annotations": {"Example.com/X": "anything goes"}}),
        ),
        &[],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "d", "annotations": {"bad key": "v"}})),
        &["metadata.annotations"],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "d", "annotations": {"big": "x".repeat(256 * 1024)}})),
        &["metadata.annotations"],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "d", "finalizers": ["example.com/f", "bad/f/x"]})),
        &["metadata.finalizers"],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "d", "finalizers": ["orphan", "foregroundDeletion"]})),
        &["metadata.finalizers"],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "d", "generation": -1})),
        &["metadata.generation"],
    );
    check(
        "ConfigMap",
        cm(json!({"name": "a", "namespace": "d", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "1", "controller": true},
            {"apiVersion": "", "kind": "", "name": "", "uid": "", "controller": true}]})),
        &[
            "metadata.ownerReferences",
            "metadata.ownerReferences.apiVersion",
            "metadata.ownerReferences.kind",
            "metadata.ownerReferences.name",
            "metadata.ownerReferences.uid",
        ],
    );
    check(
        "rbac.authorization.k8s.io/ClusterRole",
        json!({"metadata": {"name": "system:aggregate-to-edit"}}),
        &[],
    );
    check(
        "rbac.authorization.k8s.io/ClusterRole",
        json!({"metadata": {"name": "a/b"}}),
        &["metadata.name"],
    );
    check(
        "rbac.authorization.k8s.io/ClusterRole",
        json!({"metadata": {"name": ".."}}),
        &["metadata.name"],
    );
    check(
        "example.com/Widget",
        json!({"metadata": {"name": "UPPER", "namespace": "d"}}),
        &["metadata.name"],
    );
    check(
        "example.com/Widget",
        json!({"metadata": {"name": "w", "namespace": "d"}, "spec": {"anything": 1}}),
        &[],
    );
}

#[test]
fn object_meta_update() {
    let old = json!({"metadata": {"name": "a", "namespace": "d", "uid": "u1", "creationTimestamp": "2024-01-01T00:00:00Z"}});
    check_update("ConfigMap", old.clone(), old.clone(), &[]);
    check_update(
        "ConfigMap",
        old.clone(),
        json!({"metadata": {"name": "a", "namespace": "d"}}),
        &[],
    );
    check_update(
        "ConfigMap",
        old.clone(),
        json!({"metadata": {"name": "b", "namespace": "d"}}),
        &["metadata.name"],
    );
    check_update(
        "ConfigMap",
        old.clone(),
        json!({"metadata": {"name": "a", "namespace": "e"}}),
        &["metadata.namespace"],
    );
    check_update(
        "ConfigMap",
        old.clone(),
        json!({"metadata": {"name": "a", "namespace": "d", "uid": "u2"}}),
        &["metadata.uid"],
    );
    check_update(
        "ConfigMap",
        old.clone(),
        json!({"metadata": {"name": "a", "namespace": "d", "creationTimestamp": "2025-01-01T00:00:00Z"}}),
        &["metadata.creationTimestamp"],
    );
    let deleting = json!({"metadata": {"name": "a", "namespace": "d", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["x/a"]}});
    check_update(
        "ConfigMap",
        deleting.clone(),
        with(&deleting, |d| d["metadata"]["finalizers"] = json!([])),
        &[],
    );
    check_update(
        "ConfigMap",
        deleting.clone(),
        with(&deleting, |d| {
            d["metadata"]["finalizers"] = json!(["x/a", "x/b"])
        }),
        &["metadata.finalizers"],
    );
}

#[test]
fn pods() {
    let c = |f: fn(&mut Value)| with(&pod(), f);
    check("Pod", pod(), &[]);
    check(
        "Pod",
        c(|p| p["spec"]["containers"] = json!([])),
        &["spec.containers"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["name"] = json!("App")),
        &["spec.containers[0].name"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["image"] = json!(" nginx")),
        &["spec.containers[0].image"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["initContainers"] = json!([{"name": "app", "image": "busybox"}])),
        &["spec.initContainers[0].name"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 0}])),
        &["spec.containers[0].ports[0].containerPort"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 70000}])),
        &["spec.containers[0].ports[0].containerPort"],
    );
    check(
        "Pod",
        c(
            |p| {
                p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "hostPort": -1}])
            },
        ),
        &["spec.containers[0].ports[0].hostPort"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "HTTP"}])
        }),
        &["spec.containers[0].ports[0].protocol"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}])
        }),
        &["spec.containers[0].ports[1].name"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "name": "HTTP_1"}])
        }),
        &[
            "spec.containers[0].ports[0].name",
            "spec.containers[0].ports[0].name",
        ],
    );
    check(
        "Pod",
        c(
            |p| p["spec"]["containers"] = json!([{"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]}, {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080}]}]),
        ),
        &["spec.containers[1].ports[0].hostPort"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["containers"][0]["env"] =
                json!([{"name": "MY_VAR", "value": "1"}, {"name": "my.var-2"}])
        }),
        &[],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["env"] = json!([{"name": ""}, {"name": "A=B"}])),
        &[
            "spec.containers[0].env[0].name",
            "spec.containers[0].env[1].name",
        ],
    );
    check(
        "Pod",
        c(
            |p| p["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]),
        ),
        &["spec.containers[0].env[0].valueFrom"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["containers"][0]["resources"] =
                json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})
        }),
        &[],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["containers"][0]["resources"] =
                json!({"limits": {"cpu": "1"}, "requests": {"cpu": "2"}})
        }),
        &["spec.containers[0].resources.requests"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "1x"}})),
        &["spec.containers[0].resources.requests[cpu]"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["resources"] = json!({"requests": {"memory": "-1"}})),
        &["spec.containers[0].resources.requests[memory]"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["resources"] = json!({"requests": {"gpu": "1"}})),
        &["spec.containers[0].resources.requests[gpu]"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["containers"][0]["resources"] =
                json!({"limits": {"example.com/gpu": "1"}, "requests": {"example.com/gpu": "1"}})
        }),
        &[],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["containers"][0]["resources"] = json!({"limits": {"example.com/gpu": "1.5"}})
        }),
        &[
            "spec.containers[0].resources.limits[example.com/gpu]",
            "spec.containers[0].resources.requests[example.com/gpu]",
        ],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["imagePullPolicy"] = json!("Sometimes")),
        &["spec.containers[0].imagePullPolicy"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["dnsPolicy"] = json!("Nope")),
        &["spec.dnsPolicy"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["dnsPolicy"] = json!("None")),
        &["spec.dnsConfig"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["terminationGracePeriodSeconds"] = json!(-1)),
        &["spec.terminationGracePeriodSeconds"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["activeDeadlineSeconds"] = json!(0)),
        &["spec.activeDeadlineSeconds"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["nodeSelector"] = json!({"disk": "ssd", "bad key": "x"})),
        &["spec.nodeSelector"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["volumes"] = json!([{"name": "data"}, {"name": "data", "emptyDir": {}}])),
        &["spec.volumes[1].name"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["volumes"] =
                json!([{"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}])
        }),
        &["spec.volumes[0].emptyDir"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["volumes"] = json!([{"name": "s", "secret": {}}])),
        &["spec.volumes[0].secret.secretName"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["volumes"] =
                json!([{"name": "c", "configMap": {"name": "x", "defaultMode": 1000}}])
        }),
        &["spec.volumes[0].configMap.defaultMode"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
            p["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "data", "mountPath": "/d"}, {"name": "other", "mountPath": "/o"}, {"name": "data", "mountPath": "/d"}]);
        }),
        &[
            "spec.containers[0].volumeMounts[1].name",
            "spec.containers[0].volumeMounts[2].mountPath",
        ],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["livenessProbe"] = json!({"httpGet": {"port": 8080}})),
        &[],
    );
    check(
        "Pod",
        c(|p| p["spec"]["containers"][0]["livenessProbe"] = json!({"periodSeconds": 5})),
        &["spec.containers[0].livenessProbe"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["containers"][0]["livenessProbe"] =
                json!({"tcpSocket": {"port": 0}, "successThreshold": 2})
        }),
        &[
            "spec.containers[0].livenessProbe.successThreshold",
            "spec.containers[0].livenessProbe.tcpSocket.port",
        ],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["containers"][0]["readinessProbe"] =
                json!({"httpGet": {"port": "http"}, "timeoutSeconds": -1})
        }),
        &["spec.containers[0].readinessProbe.timeoutSeconds"],
    );
    check(
        "Pod",
        c(
            |p| p["spec"]["initContainers"] = json!([{"name": "init", "image": "x", "readinessProbe": {"exec": {"command": ["true"]}}}]),
        ),
        &["spec.initContainers[0].readinessProbe"],
    );
    check(
        "Pod",
        c(
            |p| p["spec"]["initContainers"] = json!([{"name": "side", "image": "x", "restartPolicy": "Always", "readinessProbe": {"exec": {"command": ["true"]}}}]),
        ),
        &[],
    );
    check(
        "Pod",
        c(
            |p| p["spec"]["tolerations"] = json!([{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}, {"operator": "Exists"}]),
        ),
        &[],
    );
    check(
        "Pod",
        c(|p| p["spec"]["tolerations"] = json!([{"key": "k", "operator": "Maybe"}])),
        &["spec.tolerations[0].operator"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["tolerations"] = json!([{"key": "k", "effect": "Sometimes"}])),
        &["spec.tolerations[0].effect"],
    );
    check(
        "Pod",
        c(|p| p["spec"]["tolerations"] = json!([{"operator": "Equal", "value": "v"}])),
        &["spec.tolerations[0].operator"],
    );
    check(
        "Pod",
        c(|p| {
            p["spec"]["tolerations"] =
                json!([{"key": "k", "operator": "Exists", "tolerationSeconds": 5}])
        }),
        &["spec.tolerations[0].effect"],
    );
    check("Pod", c(|p| p["spec"]["hostNetwork"] = json!(true)), &[]);
    check(
        "Pod",
        c(|p| p["spec"]["ephemeralContainers"] = json!([{"name": "dbg", "image": "busybox"}])),
        &["spec.ephemeralContainers"],
    );
}

#[test]
fn pod_updates() {
    let old = with(&pod(), |p| {
        p["spec"]["tolerations"] = json!([{"key": "a", "operator": "Exists"}])
    });
    check_update("Pod", old.clone(), old.clone(), &[]);
    check_update(
        "Pod",
        old.clone(),
        with(&old, |p| {
            p["spec"]["containers"][0]["image"] = json!("nginx:1.28")
        }),
        &[],
    );
    check_update(
        "Pod",
        old.clone(),
        with(&old, |p| p["spec"]["activeDeadlineSeconds"] = json!(30)),
        &[],
    );
    check_update(
        "Pod",
        old.clone(),
        with(
            &old,
            |p| {
                p["spec"]["tolerations"] =
                    json!([{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}])
            },
        ),
        &[],
    );
    check_update(
        "Pod",
        old.clone(),
        with(&old, |p| p["spec"]["tolerations"] = json!([])),
        &["spec.tolerations[0]"],
    );
    check_update(
        "Pod",
        old.clone(),
        with(&old, |p| {
            p["spec"]["containers"][0]["name"] = json!("other")
        }),
        &["spec"],
    );
    check_update(
        "Pod",
        old.clone(),
        with(&old, |p| {
            p["spec"]["containers"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "b", "image": "x"}))
        }),
        &["spec.containers"],
    );
    let errs = run(
        "Pod",
        with(&old, |p| p["spec"]["restartPolicy"] = json!("Never")),
        Some(old.clone()),
    );
    assert!(errs[0].to_string().starts_with(
        "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
    ));
    check_update(
        "Pod",
        old.clone(),
        with(&old, |p| p["metadata"]["labels"]["tier"] = json!("x")),
        &[],
    );
}

#[test]
fn pod_status_updates() {
    let old = with(&pod(), |p| p["status"] = json!({"qosClass": "BestEffort"}));
    let st = |o: &Value, f: fn(&mut Value)| {
        let mut new = o.clone();
        f(&mut new);
        fields(&validate_status_update("", "Pod", true, &new, o))
    };
    assert!(st(&old, |p| p["status"]["podIP"] = json!("10.0.0.5")).is_empty());
    assert_eq!(
        st(&old, |p| p["status"]["podIP"] = json!("10.0.0.300")),
        vec!["status.podIP"]
    );
    assert_eq!(
        st(&old, |p| p["status"]["qosClass"] = json!("Burstable")),
        vec!["status.qosClass"]
    );
    assert_eq!(
        st(&old, |p| p["spec"]["nodeName"] = json!("n1")),
        vec!["status.nodeName"]
    );
    // The spec is not validated on status writes.
    assert!(st(&old, |p| p["spec"]["containers"][0]["name"] = json!("BAD")).is_empty());
}

#[test]
fn workloads() {
    let d = |f: fn(&mut Value)| with(&deployment(), f);
    check("apps/Deployment", deployment(), &[]);
    check(
        "apps/Deployment",
        d(|d| {
            d["spec"]
                .as_object_mut()
                .unwrap()
                .remove("selector")
                .map(drop)
                .unwrap_or(())
        }),
        &["spec.selector", "spec.template.metadata.labels"],
    );
    check(
        "apps/Deployment",
        d(|d| d["spec"]["selector"] = json!({})),
        &["spec.selector"],
    );
    check(
        "apps/Deployment",
        d(|d| d["spec"]["replicas"] = json!(-1)),
        &["spec.replicas"],
    );
    check(
        "apps/Deployment",
        d(|d| d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never")),
        &["spec.template.spec.restartPolicy"],
    );
    check(
        "apps/Deployment",
        d(|d| d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("")),
        &["spec.template.spec.containers[0].image"],
    );
    check(
        "apps/Deployment",
        d(|d| d["spec"]["template"]["metadata"]["labels"]["bad key"] = json!("x")),
        &["spec.template.labels"],
    );
    check(
        "apps/Deployment",
        d(|d| d["spec"]["strategy"] = json!({"type": "Blue"})),
        &["spec.strategy.type"],
    );
    check(
        "apps/Deployment",
        d(|d| d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}})),
        &["spec.strategy.rollingUpdate"],
    );
    check(
        "apps/Deployment",
        d(
            |d| d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}),
        ),
        &["spec.strategy.rollingUpdate.maxUnavailable"],
    );
    check(
        "apps/Deployment",
        d(
            |d| d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x", "maxUnavailable": "120%"}}),
        ),
        &[
            "spec.strategy.rollingUpdate.maxSurge",
            "spec.strategy.rollingUpdate.maxUnavailable",
        ],
    );
    check(
        "apps/Deployment",
        d(|d| d["spec"]["revisionHistoryLimit"] = json!(-2)),
        &["spec.revisionHistoryLimit"],
    );
    check(
        "apps/Deployment",
        d(|d| d["spec"]["minReadySeconds"] = json!(700)),
        &["spec.progressDeadlineSeconds"],
    );
    check(
        "apps/Deployment",
        d(
            |d| d["spec"]["selector"] = json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}),
        ),
        &[],
    );
    check(
        "apps/Deployment",
        d(|d| {
            d["spec"]["selector"] = json!({"matchExpressions": [{"key": "app", "operator": "In"}]})
        }),
        &[
            "spec.selector.matchExpressions[0].values",
            "spec.template.metadata.labels",
        ],
    );
    check(
        "apps/Deployment",
        d(|d| {
            d["spec"]["selector"] =
                json!({"matchExpressions": [{"key": "app", "operator": "Like", "values": ["w"]}]})
        }),
        &[
            "spec.selector.matchExpressions[0].operator",
            "spec.template.metadata.labels",
        ],
    );
    check_update(
        "apps/Deployment",
        deployment(),
        d(|d| d["spec"]["replicas"] = json!(5)),
        &[],
    );

    let rs = json!({"metadata": {"name": "r", "namespace": "d"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}});
    check("apps/ReplicaSet", rs.clone(), &[]);
    check(
        "apps/ReplicaSet",
        with(&rs, |r| {
            r["spec"]["template"]["metadata"]["labels"]["app"] = json!("x")
        }),
        &["spec.template.metadata.labels"],
    );
    check_update(
        "apps/ReplicaSet",
        rs.clone(),
        with(&rs, |r| {
            r["spec"]["selector"]["matchLabels"]["tier"] = json!("a");
            r["spec"]["template"]["metadata"]["labels"]["tier"] = json!("a");
        }),
        &["spec.selector"],
    );

    let rc = json!({"metadata": {"name": "r", "namespace": "d"}, "spec": {"template": template()}});
    check("ReplicationController", rc.clone(), &[]);
    check(
        "ReplicationController",
        with(&rc, |r| r["spec"]["selector"] = json!({"app": "other"})),
        &["spec.template.metadata.labels"],
    );
    check(
        "ReplicationController",
        json!({"metadata": {"name": "r", "namespace": "d"}, "spec": {}}),
        &["spec.selector", "spec.template"],
    );

    let ds = json!({"metadata": {"name": "d", "namespace": "d"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template()}});
    check("apps/DaemonSet", ds.clone(), &[]);
    check(
        "apps/DaemonSet",
        with(
            &ds,
            |d| d["spec"]["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}),
        ),
        &["spec.updateStrategy.rollingUpdate.maxSurge"],
    );
    check(
        "apps/DaemonSet",
        with(
            &ds,
            |d| d["spec"]["updateStrategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}),
        ),
        &["spec.updateStrategy.rollingUpdate.maxUnavailable"],
    );
    check(
        "apps/DaemonSet",
        with(&ds, |d| {
            d["spec"]["updateStrategy"] = json!({"type": "Sometimes"})
        }),
        &["spec.updateStrategy.type"],
    );
    check_update(
        "apps/DaemonSet",
        ds.clone(),
        with(&ds, |d| {
            d["spec"]["selector"]["matchLabels"]["x"] = json!("y")
        }),
        &["spec.selector", "spec.template.metadata.labels"],
    );

    let sts = json!({"metadata": {"name": "db", "namespace": "d"}, "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "web"}}, "template": template(),
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
    check("apps/StatefulSet", sts.clone(), &[]);
    check(
        "apps/StatefulSet",
        with(&sts, |s| s["spec"]["podManagementPolicy"] = json!("Random")),
        &["spec.podManagementPolicy"],
    );
    check(
        "apps/StatefulSet",
        with(
            &sts,
            |s| {
                s["spec"]["updateStrategy"] =
                    json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}})
            },
        ),
        &["spec.updateStrategy.rollingUpdate"],
    );
    check(
        "apps/StatefulSet",
        with(&sts, |s| {
            s["spec"]["persistentVolumeClaimRetentionPolicy"] =
                json!({"whenDeleted": "Keep", "whenScaled": "Retain"})
        }),
        &["spec.persistentVolumeClaimRetentionPolicy.whenDeleted"],
    );
    check(
        "apps/StatefulSet",
        with(&sts, |s| {
            s["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] = json!([])
        }),
        &["spec.volumeClaimTemplates[0].spec.accessModes"],
    );
    check_update(
        "apps/StatefulSet",
        sts.clone(),
        with(&sts, |s| {
            s["spec"]["replicas"] = json!(3);
            s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        }),
        &[],
    );
    check_update(
        "apps/StatefulSet",
        sts.clone(),
        with(&sts, |s| s["spec"]["serviceName"] = json!("other")),
        &["spec"],
    );
}

/// Containers of a StatefulSet may mount its volume claim templates by name
/// (the claims become pod volumes); other names are still `Not found`.
#[test]
fn stateful_set_mounts_claim_templates() {
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"serviceName": "nginx", "replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"volumes": [{"name": "cache", "emptyDir": {}}],
                    "initContainers": [{"name": "init", "image": "busybox", "volumeMounts": [{"name": "www", "mountPath": "/www"}]}],
                    "containers": [{"name": "nginx", "image": "nginx:1.27",
                        "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}, {"name": "cache", "mountPath": "/cache"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}});
    check("apps/StatefulSet", sts.clone(), &[]);
    assert_eq!(
        lines(
            "apps/StatefulSet",
            with(&sts, |s| {
                s["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["name"] =
                    json!("data")
            })
        ),
        [r#"spec.template.spec.containers[0].volumeMounts[0].name: Not found: "data""#]
    );
    // The claim names count only for the StatefulSet's own template.
    let mut dep = deployment();
    dep["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "www", "mountPath": "/www"}]);
    check(
        "apps/Deployment",
        dep,
        &["spec.template.spec.containers[0].volumeMounts[0].name"],
    );
}

#[test]
fn jobs() {
    let job = json!({"metadata": {"name": "j", "namespace": "d", "uid": "1234"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
    check("batch/Job", job.clone(), &[]);
    check(
        "batch/Job",
        with(&job, |j| {
            j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always")
        }),
        &["spec.template.spec.restartPolicy"],
    );
    check(
        "batch/Job",
        with(&job, |j| {
            j["spec"]["template"]["spec"]
                .as_object_mut()
                .unwrap()
                .remove("restartPolicy")
                .map(drop)
                .unwrap_or(())
        }),
        &["spec.template.spec.restartPolicy"],
    );
    check(
        "batch/Job",
        with(&job, |j| {
            j["spec"]["parallelism"] = json!(-1);
            j["spec"]["backoffLimit"] = json!(-1);
        }),
        &["spec.backoffLimit", "spec.parallelism"],
    );
    check(
        "batch/Job",
        with(&job, |j| j["spec"]["activeDeadlineSeconds"] = json!(-5)),
        &["spec.activeDeadlineSeconds"],
    );
    check(
        "batch/Job",
        with(&job, |j| j["spec"]["completionMode"] = json!("Random")),
        &["spec.completionMode"],
    );
    check(
        "batch/Job",
        with(&job, |j| {
            j["spec"]["manualSelector"] = json!(true);
            j["spec"]["selector"] = json!({"matchLabels": {"a": "b"}});
        }),
        &["spec.template.metadata.labels"],
    );
    let mut created = job.clone();
    apply_defaults("batch", "Job", &mut created);
    check_update(
        "batch/Job",
        created.clone(),
        with(&created, |j| {
            j["spec"]["template"]["spec"]["containers"][0]["image"] = json!("alpine")
        }),
        &["spec.template"],
    );
    check_update(
        "batch/Job",
        created.clone(),
        with(&created, |j| j["spec"]["completions"] = json!(3)),
        &["spec.completions"],
    );
    check_update(
        "batch/Job",
        created.clone(),
        with(&created, |j| j["spec"]["parallelism"] = json!(3)),
        &[],
    );

    let cj = json!({"metadata": {"name": "c", "namespace": "d"}, "spec": {"schedule": "*/5 * * * *",
        "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
    check("batch/CronJob", cj.clone(), &[]);
    for good in [
        "@hourly",
        "0 0 * * MON-FRI",
        "0 12 1 JAN,jul ?",
        "15,45 */2 1-10/3 * 0",
        "@every 1h30m",
    ] {
        check(
            "batch/CronJob",
            with(&cj, |c| c["spec"]["schedule"] = json!(good)),
            &[],
        );
    }
    for bad in [
        "* * * *",
        "61 * * * *",
        "@fortnightly",
        "a b c d e",
        "5-1 * * * *",
        "*/0 * * * *",
    ] {
        check(
            "batch/CronJob",
            with(&cj, |c| c["spec"]["schedule"] = json!(bad)),
            &["spec.schedule"],
        );
    }
    check(
        "batch/CronJob",
        with(&cj, |c| c["spec"]["schedule"] = json!("TZ=UTC 0 * * * *")),
        &["spec.schedule"],
    );
    check(
        "batch/CronJob",
        with(&cj, |c| c["spec"]["schedule"] = json!("")),
        &["spec.schedule"],
    );
    check(
        "batch/CronJob",
        with(&cj, |c| c["spec"]["concurrencyPolicy"] = json!("Sometimes")),
        &["spec.concurrencyPolicy"],
    );
    check(
        "batch/CronJob",
        with(&cj, |c| c["spec"]["timeZone"] = json!("Europe/Berlin")),
        &[],
    );
    check(
        "batch/CronJob",
        with(&cj, |c| c["spec"]["timeZone"] = json!("../etc")),
        &["spec.timeZone"],
    );
    check(
        "batch/CronJob",
        with(&cj, |c| {
            c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always")
        }),
        &["spec.jobTemplate.spec.template.spec.restartPolicy"],
    );
    check(
        "batch/CronJob",
        with(&cj, |c| c["metadata"]["name"] = json!("c".repeat(53))),
        &["metadata.name"],
    );
    assert_eq!(
        lines(
            "batch/CronJob",
            with(&cj, |c| c["spec"]["schedule"] = json!("* * *"))
        ),
        vec![
            "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]"
                .to_string()
        ]
    );
}

#[test]
fn services() {
    let s = |f: fn(&mut Value)| with(&service(), f);
    check("Service", service(), &[]);
    check(
        "Service",
        s(|s| s["spec"]["ports"] = json!([])),
        &["spec.ports"],
    );
    check(
        "Service",
        s(|s| {
            s["spec"]["ports"] = json!([]);
            s["spec"]["clusterIP"] = json!("None");
        }),
        &[],
    );
    check(
        "Service",
        s(|s| s["spec"]["type"] = json!("Magic")),
        &["spec.type"],
    );
    check(
        "Service",
        s(|s| s["spec"]["ports"] = json!([{"port": 80}, {"port": 81}])),
        &["spec.ports[0].name", "spec.ports[1].name"],
    );
    check(
        "Service",
        s(|s| s["spec"]["ports"] = json!([{"port": 0, "targetPort": 80}])),
        &["spec.ports[0].port"],
    );
    check(
        "Service",
        s(|s| s["spec"]["ports"] = json!([{"port": 80, "protocol": "ICMP"}])),
        &["spec.ports[0].protocol"],
    );
    check(
        "Service",
        s(|s| s["spec"]["ports"] = json!([{"port": 80, "targetPort": "http"}])),
        &[],
    );
    check(
        "Service",
        s(|s| s["spec"]["ports"] = json!([{"port": 80, "targetPort": "Not_A_Name"}])),
        &["spec.ports[0].targetPort"],
    );
    check(
        "Service",
        s(|s| s["spec"]["ports"] = json!([{"port": 80, "targetPort": 70000}])),
        &["spec.ports[0].targetPort"],
    );
    check(
        "Service",
        s(|s| s["spec"]["ports"] = json!([{"port": 80, "nodePort": 30080}])),
        &["spec.ports[0].nodePort"],
    );
    check(
        "Service",
        s(|s| {
            s["spec"]["type"] = json!("NodePort");
            s["spec"]["ports"] = json!([{"port": 80, "nodePort": 30080}]);
        }),
        &[],
    );
    check(
        "Service",
        s(|s| {
            s["spec"]["type"] = json!("LoadBalancer");
            s["spec"]["ports"] = json!([{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30080}]);
        }),
        &["spec.ports[1].nodePort"],
    );
    check(
        "Service",
        s(|s| s["spec"]["ports"] = json!([{"name": "a", "port": 80}, {"name": "b", "port": 80}])),
        &["spec.ports[1]"],
    );
    check(
        "Service",
        s(|s| s["spec"]["clusterIP"] = json!("10.96.0.10")),
        &[],
    );
    check(
        "Service",
        s(|s| s["spec"]["clusterIP"] = json!("10.96.0.300")),
        &["spec.clusterIPs[0]"],
    );
    check(
        "Service",
        s(|s| {
            s["spec"]["type"] = json!("NodePort");
            s["spec"]["clusterIP"] = json!("None");
        }),
        &["spec.clusterIPs[0]"],
    );
    check(
        "Service",
        s(|s| s["spec"]["sessionAffinity"] = json!("Sticky")),
        &["spec.sessionAffinity"],
    );
    check(
        "Service",
        s(|s| s["spec"]["sessionAffinity"] = json!("ClientIP")),
        &[],
    );
    check(
        "Service",
        s(|s| s["spec"]["externalIPs"] = json!(["1.2.3.4", "127.0.0.1", "nope"])),
        &["spec.externalIPs[1]", "spec.externalIPs[2]"],
    );
    check(
        "Service",
        json!({"metadata": {"name": "ext", "namespace": "d"}, "spec": {"type": "ExternalName", "externalName": "db.example.com."}}),
        &[],
    );
    check(
        "Service",
        json!({"metadata": {"name": "ext", "namespace": "d"}, "spec": {"type": "ExternalName"}}),
        &["spec.externalName"],
    );
    check(
        "Service",
        json!({"metadata": {"name": "ext", "namespace": "d"}, "spec": {"type": "ExternalName", "externalName": "Bad_Name"}}),
        &["spec.externalName"],
    );
    check(
        "Service",
        s(|s| s["spec"]["selector"] = json!({"app": "-x"})),
        &["spec.selector"],
    );
    check(
        "Service",
        s(|s| s["spec"]["loadBalancerSourceRanges"] = json!(["10.0.0.0/8"])),
        &["spec.LoadBalancerSourceRanges"],
    );
    let old = s(|s| s["spec"]["clusterIP"] = json!("10.96.0.10"));
    check_update("Service", old.clone(), old.clone(), &[]);
    check_update(
        "Service",
        old.clone(),
        with(&old, |s| {
            s["spec"]["clusterIP"] = json!("10.96.0.11");
            s["spec"]["clusterIPs"] = json!(["10.96.0.11"]);
        }),
        &["spec.clusterIPs[0]"],
    );
    check_update(
        "Service",
        old.clone(),
        json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"type": "ExternalName", "externalName": "x.example.com"}}),
        &[],
    );
}

#[test]
fn config_maps_and_secrets() {
    let cm = |data: Value| json!({"metadata": {"name": "c", "namespace": "d"}, "data": data});
    check("ConfigMap", cm(json!({"a.conf": "x", "B_2-c": "y"})), &[]);
    check("ConfigMap", cm(json!({"a/b": "x"})), &["data[a/b]"]);
    check("ConfigMap", cm(json!({"..": "x"})), &["data[..]"]);
    check(
        "ConfigMap",
        cm(json!({"big": "x".repeat(1024 * 1024 + 1)})),
        &[""],
    );
    check(
        "ConfigMap",
        with(&cm(json!({"k": "x"})), |c| {
            c["binaryData"] = json!({"k": "eA=="})
        }),
        &["binaryData[k]", "data[k]"],
    );
    let frozen = with(&cm(json!({"k": "x"})), |c| c["immutable"] = json!(true));
    check_update("ConfigMap", frozen.clone(), frozen.clone(), &[]);
    check_update(
        "ConfigMap",
        frozen.clone(),
        with(&frozen, |c| c["data"]["k"] = json!("y")),
        &["data"],
    );
    check_update(
        "ConfigMap",
        frozen.clone(),
        with(&frozen, |c| c["immutable"] = json!(false)),
        &["immutable"],
    );
    check_update(
        "ConfigMap",
        cm(json!({"k": "x"})),
        cm(json!({"k": "y"})),
        &[],
    );

    let secret = |ty: &str, data: Value| json!({"metadata": {"name": "s", "namespace": "d"}, "type": ty, "data": data});
    check(
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"}, "data": {"k": "eA=="}}),
        &[],
    );
    check(
        "Secret",
        secret("Opaque", json!({"bad key": "eA=="})),
        &["data[bad key]"],
    );
    check(
        "Secret",
        secret("kubernetes.io/dockerconfigjson", json!({})),
        &["data[.dockerconfigjson]"],
    );
    check(
        "Secret",
        secret(
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": "e30="}),
        ),
        &[],
    );
    check(
        "Secret",
        secret("kubernetes.io/tls", json!({"tls.crt": "eA=="})),
        &["data[tls.key]"],
    );
    check(
        "Secret",
        secret("kubernetes.io/basic-auth", json!({})),
        &["data[password]", "data[username]"],
    );
    check(
        "Secret",
        secret("kubernetes.io/service-account-token", json!({})),
        &["metadata.annotations[kubernetes.io/service-account.name]"],
    );
    check(
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}}),
        &[],
    );
    check_update(
        "Secret",
        secret("Opaque", json!({})),
        secret(
            "kubernetes.io/tls",
            json!({"tls.crt": "eA==", "tls.key": "eA=="}),
        ),
        &["type"],
    );
    let frozen = with(&secret("Opaque", json!({"k": "eA=="})), |s| {
        s["immutable"] = json!(true)
    });
    check_update(
        "Secret",
        frozen.clone(),
        with(&frozen, |s| s["data"]["k"] = json!("eQ==")),
        &["data"],
    );
}

/// Validation sees a Secret after its `stringData` was merged into `data`, so
/// keys and size are checked on the merged data.
#[test]
fn secret_string_data_is_validated_as_data() {
    let secret = |extra: Value| {
        let mut s = json!({"metadata": {"name": "s", "namespace": "d"}, "data": {"a": "eA=="}});
        s["stringData"] = extra;
        s
    };
    check("Secret", secret(json!({"b": "y", "a": "z"})), &[]);
    check(
        "Secret",
        secret(json!({"bad key": "v"})),
        &["data[bad key]"],
    );
    let big = "x".repeat(1024 * 1024);
    check("Secret", secret(json!({"big": big})), &["data"]);
    check(
        "Secret",
        json!({"metadata": {"name": "s", "namespace": "d"}, "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": "c", "tls.key": "k"}}),
        &[],
    );
}

#[test]
fn other_core_kinds() {
    check("Namespace", json!({"metadata": {"name": "team-a"}}), &[]);
    check(
        "Namespace",
        json!({"metadata": {"name": "team-a"}, "spec": {"finalizers": ["custom"]}}),
        &["spec.finalizers"],
    );
    check(
        "Node",
        json!({"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}}),
        &[],
    );
    check(
        "Node",
        json!({"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.244.0.0/33"]}}),
        &["spec.podCIDRs[0]"],
    );
    check(
        "Node",
        json!({"metadata": {"name": "n1"}, "spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "Never"}, {"key": "", "effect": "NoExecute"}]}}),
        &[
            "spec.taints[1]",
            "spec.taints[2].effect",
            "spec.taints[3].key",
            "spec.taints[3].key",
        ],
    );
    check(
        "Node",
        json!({"metadata": {"name": "n1"}, "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}),
        &[],
    );
    check_update(
        "Node",
        json!({"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.244.0.0/24"]}}),
        json!({"metadata": {"name": "n1"}, "spec": {"podCIDRs": ["10.244.1.0/24"]}}),
        &["spec.podCIDRs"],
    );
    check(
        "ServiceAccount",
        json!({"metadata": {"name": "default", "namespace": "d"}}),
        &[],
    );
    let ep =
        |subsets: Value| json!({"metadata": {"name": "e", "namespace": "d"}, "subsets": subsets});
    check(
        "Endpoints",
        ep(json!([{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 80}]}])),
        &[],
    );
    check(
        "Endpoints",
        ep(json!([{"addresses": [{"ip": "10.1.2"}, {"ip": "127.0.0.1"}], "ports": [{"port": 0}]}])),
        &[
            "subsets[0].addresses[0].ip",
            "subsets[0].addresses[1].ip",
            "subsets[0].ports[0].port",
        ],
    );
    check(
        "Endpoints",
        ep(json!([{"ports": [{"port": 80}, {"port": 81, "name": "b"}]}])),
        &["subsets[0]", "subsets[0].ports[0].name"],
    );
    let pvc = |spec: Value| json!({"metadata": {"name": "p", "namespace": "d"}, "spec": spec});
    check(
        "PersistentVolumeClaim",
        pvc(
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
        ),
        &[],
    );
    check(
        "PersistentVolumeClaim",
        pvc(json!({"resources": {"requests": {"storage": "1Gi"}}})),
        &["spec.accessModes"],
    );
    check(
        "PersistentVolumeClaim",
        pvc(json!({"accessModes": ["ReadMostly"]})),
        &["spec.accessModes", "spec.resources[storage]"],
    );
    check(
        "PersistentVolumeClaim",
        pvc(json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "0"}}})),
        &["spec.resources[storage]"],
    );
    let bound = pvc(
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "volumeName": "pv1"}),
    );
    check_update(
        "PersistentVolumeClaim",
        bound.clone(),
        with(&bound, |p| {
            p["spec"]["resources"]["requests"]["storage"] = json!("2Gi")
        }),
        &[],
    );
    check_update(
        "PersistentVolumeClaim",
        bound.clone(),
        with(&bound, |p| {
            p["spec"]["resources"]["requests"]["storage"] = json!("512Mi")
        }),
        &["spec.resources.requests.storage"],
    );
    check_update(
        "PersistentVolumeClaim",
        bound.clone(),
        with(&bound, |p| {
            p["spec"]["accessModes"] = json!(["ReadWriteMany"])
        }),
        &["spec"],
    );
    let pv = json!({"metadata": {"name": "pv1"}, "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "10Gi"}, "hostPath": {"path": "/data"}}});
    check("PersistentVolume", pv.clone(), &[]);
    check(
        "PersistentVolume",
        with(&pv, |p| {
            p["spec"]["capacity"] = json!({"cpu": "1"});
            p["spec"]["accessModes"] = json!([]);
        }),
        &["spec.accessModes", "spec.capacity"],
    );
    check(
        "PersistentVolume",
        with(&pv, |p| {
            p["spec"]
                .as_object_mut()
                .unwrap()
                .remove("hostPath")
                .map(drop)
                .unwrap_or(())
        }),
        &["spec"],
    );
    let rq =
        |hard: Value| json!({"metadata": {"name": "q", "namespace": "d"}, "spec": {"hard": hard}});
    check(
        "ResourceQuota",
        rq(json!({"pods": "10", "requests.cpu": "4", "count/deployments.apps": "5"})),
        &[],
    );
    check(
        "ResourceQuota",
        rq(json!({"pods": "1.5", "widgets": "1", "cpu": "x"})),
        &["spec.hard[cpu]", "spec.hard[pods]", "spec.hard[widgets]"],
    );
    let lr = |item: Value| json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"limits": [item]}});
    check(
        "LimitRange",
        lr(json!({"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "100m"}})),
        &[],
    );
    check(
        "LimitRange",
        lr(json!({"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "2"}})),
        &[
            "spec.limits[0].default[cpu]",
            "spec.limits[0].defaultRequest[cpu]",
            "spec.limits[0].min[cpu]",
        ],
    );
    check(
        "LimitRange",
        lr(json!({"type": "Pod", "default": {"cpu": "1"}})),
        &["spec.limits[0].default"],
    );
    check(
        "PodTemplate",
        json!({"metadata": {"name": "t", "namespace": "d"}, "template": template()}),
        &[],
    );
    check(
        "PodTemplate",
        json!({"metadata": {"name": "t", "namespace": "d"}, "template": {"spec": {"containers": []}}}),
        &["template.spec.containers"],
    );
}

#[test]
fn other_groups() {
    let hpa = |spec: Value| json!({"apiVersion": "autoscaling/v2", "metadata": {"name": "h", "namespace": "d"}, "spec": spec});
    let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
    check(
        "autoscaling/HorizontalPodAutoscaler",
        hpa(json!({"scaleTargetRef": target, "maxReplicas": 5})),
        &[],
    );
    check(
        "autoscaling/HorizontalPodAutoscaler",
        hpa(json!({"scaleTargetRef": {}, "maxReplicas": 0})),
        &[
            "spec.maxReplicas",
            "spec.maxReplicas",
            "spec.scaleTargetRef.kind",
            "spec.scaleTargetRef.name",
        ],
    );
    check(
        "autoscaling/HorizontalPodAutoscaler",
        hpa(json!({"scaleTargetRef": target, "minReplicas": 4, "maxReplicas": 2})),
        &["spec.maxReplicas"],
    );
    let ing = |rules: Value| json!({"metadata": {"name": "i", "namespace": "d"}, "spec": {"rules": rules}});
    let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
    check(
        "networking.k8s.io/Ingress",
        ing(
            json!([{"host": "*.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]),
        ),
        &[],
    );
    check(
        "networking.k8s.io/Ingress",
        ing(json!([{"http": {"paths": [{"path": "/", "pathType": "Regex", "backend": backend}]}}])),
        &["spec.rules[0].http.paths[0].pathType"],
    );
    check(
        "networking.k8s.io/Ingress",
        ing(json!([{"http": {"paths": [{"path": "/", "backend": backend}]}}])),
        &["spec.rules[0].http.paths[0].pathType"],
    );
    check(
        "networking.k8s.io/Ingress",
        ing(
            json!([{"http": {"paths": [{"path": "api//x", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {}}}}]}}]),
        ),
        &[
            "spec.rules[0].http.paths[0].backend",
            "spec.rules[0].http.paths[0].path",
            "spec.rules[0].http.paths[0].path",
        ],
    );
    check(
        "networking.k8s.io/Ingress",
        json!({"metadata": {"name": "i", "namespace": "d"}, "spec": {}}),
        &["spec.rules"],
    );
    let role = |rules: Value| json!({"metadata": {"name": "r", "namespace": "d"}, "rules": rules});
    check(
        "rbac.authorization.k8s.io/Role",
        role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])),
        &[],
    );
    check(
        "rbac.authorization.k8s.io/Role",
        role(
            json!([{"apiGroups": [""], "resources": ["pods"]}, {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]),
        ),
        &["rules[0].verbs", "rules[1].nonResourceURLs"],
    );
    check(
        "rbac.authorization.k8s.io/ClusterRole",
        json!({"metadata": {"name": "c"}, "rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]}),
        &[],
    );
    let rb = json!({"metadata": {"name": "b", "namespace": "d"}, "roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "d"}, {"kind": "User", "name": "alice"}]});
    check("rbac.authorization.k8s.io/RoleBinding", rb.clone(), &[]);
    check(
        "rbac.authorization.k8s.io/RoleBinding",
        with(&rb, |b| b["roleRef"]["kind"] = json!("Team")),
        &["roleRef.kind"],
    );
    check(
        "rbac.authorization.k8s.io/ClusterRoleBinding",
        json!({"metadata": {"name": "b"}, "roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "ServiceAccount", "name": "x"}]}),
        &["roleRef.kind", "subjects[0].namespace"],
    );
    check_update(
        "rbac.authorization.k8s.io/RoleBinding",
        rb.clone(),
        with(&rb, |b| b["roleRef"]["name"] = json!("other")),
        &["roleRef"],
    );
    check(
        "scheduling.k8s.io/PriorityClass",
        json!({"metadata": {"name": "high"}, "value": 1000}),
        &[],
    );
    check(
        "scheduling.k8s.io/PriorityClass",
        json!({"metadata": {"name": "high"}, "value": 2_000_000_000}),
        &["value"],
    );
    check(
        "scheduling.k8s.io/PriorityClass",
        json!({"metadata": {"name": "system-mine"}, "value": 10}),
        &["metadata.name"],
    );
    check(
        "scheduling.k8s.io/PriorityClass",
        json!({"metadata": {"name": "system-node-critical"}, "value": 2_000_001_000}),
        &[],
    );
    check_update(
        "scheduling.k8s.io/PriorityClass",
        json!({"metadata": {"name": "high"}, "value": 1}),
        json!({"metadata": {"name": "high"}, "value": 2}),
        &["value"],
    );
    let pdb = |spec: Value| json!({"metadata": {"name": "p", "namespace": "d"}, "spec": spec});
    check(
        "policy/PodDisruptionBudget",
        pdb(json!({"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}})),
        &[],
    );
    check(
        "policy/PodDisruptionBudget",
        pdb(json!({"minAvailable": 1, "maxUnavailable": 1})),
        &["spec"],
    );
    check(
        "policy/PodDisruptionBudget",
        pdb(json!({"maxUnavailable": "150%"})),
        &["spec.maxUnavailable"],
    );
    check(
        "policy/PodDisruptionBudget",
        pdb(
            json!({"minAvailable": -1, "maxUnavailable": "x", "unhealthyPodEvictionPolicy": "Sometimes",
            "selector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
        ),
        &[
            "spec",
            "spec.maxUnavailable",
            "spec.minAvailable",
            "spec.selector.matchExpressions[0].values",
            "spec.unhealthyPodEvictionPolicy",
        ],
    );
    check(
        "coordination.k8s.io/Lease",
        json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"holderIdentity": "x", "leaseDurationSeconds": 15}}),
        &[],
    );
    check(
        "coordination.k8s.io/Lease",
        json!({"metadata": {"name": "l", "namespace": "d"}, "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}),
        &["spec.leaseDurationSeconds", "spec.leaseTransitions"],
    );
    let eps = |at: &str, addr: &str| json!({"metadata": {"name": "e", "namespace": "d"}, "addressType": at, "endpoints": [{"addresses": [addr]}], "ports": [{"port": 80}]});
    check(
        "discovery.k8s.io/EndpointSlice",
        eps("IPv4", "10.0.0.1"),
        &[],
    );
    check(
        "discovery.k8s.io/EndpointSlice",
        eps("IPv4", "fd00::1"),
        &["endpoints[0].addresses[0]"],
    );
    check(
        "discovery.k8s.io/EndpointSlice",
        eps("IPX", "10.0.0.1"),
        &["addressType"],
    );
    check(
        "storage.k8s.io/StorageClass",
        json!({"metadata": {"name": "standard"}, "provisioner": "rancher.io/local-path"}),
        &[],
    );
    check(
        "storage.k8s.io/StorageClass",
        json!({"metadata": {"name": "standard"}}),
        &["provisioner"],
    );
    check(
        "storage.k8s.io/StorageClass",
        json!({"metadata": {"name": "s"}, "provisioner": "x", "reclaimPolicy": "Recycle"}),
        &["reclaimPolicy"],
    );
    check_update(
        "storage.k8s.io/StorageClass",
        json!({"metadata": {"name": "s"}, "provisioner": "x"}),
        json!({"metadata": {"name": "s"}, "provisioner": "y"}),
        &["provisioner"],
    );
    check(
        "node.k8s.io/RuntimeClass",
        json!({"metadata": {"name": "gvisor"}, "handler": "runsc"}),
        &[],
    );
    check(
        "node.k8s.io/RuntimeClass",
        json!({"metadata": {"name": "gvisor"}, "handler": "Run.SC"}),
        &["handler"],
    );
}

#[test]
fn workload_status_updates() {
    let old = json!({"metadata": {"name": "r", "namespace": "d"}, "status": {"replicas": 1}});
    let new = json!({"metadata": {"name": "r", "namespace": "d"}, "status": {"replicas": -1, "readyReplicas": 2}});
    let errs = validate_status_update("apps", "ReplicaSet", true, &new, &old);
    assert_eq!(
        fields(&errs),
        vec!["status.readyReplicas", "status.replicas"]
    );
    let errs = validate_status_update(
        "apps",
        "ReplicaSet",
        true,
        &with(&new, |n| n["metadata"]["name"] = json!("x")),
        &old,
    );
    assert!(fields(&errs).contains(&"metadata.name".to_string()));
}

#[test]
fn priority_classes() {
    let pc = |name: &str, v: Value| {
        let mut o = json!({"metadata": {"name": name}});
        if !v.is_null() {
            o["value"] = v;
        }
        o
    };
    const PC: &str = "scheduling.k8s.io/PriorityClass";
    check(PC, pc("no-value", Value::Null), &["value"]);
    check(PC, pc("negative", json!(-5)), &[]);
    check(PC, pc("top", json!(1_000_000_000)), &[]);
    assert_eq!(
        lines(PC, pc("over", json!(1_000_000_001))),
        vec!["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
    );
    assert_eq!(
        lines(PC, pc("system-mine", json!(10))),
        vec!["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"]
    );
    assert_eq!(
        lines(PC, pc("system-cluster-critical", json!(5))),
        vec!["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-cluster-critical PriorityClass must be 2000000000"]
    );
    check(PC, pc("system-cluster-critical", json!(2_000_000_000)), &[]);
    let mut default_node = pc("system-node-critical", json!(2_000_001_000));
    default_node["globalDefault"] = json!(true);
    check(PC, default_node, &["metadata.name"]);
    check(
        PC,
        json!({"metadata": {"name": "x"}, "value": 1, "preemptionPolicy": "Sometimes"}),
        &["preemptionPolicy"],
    );
    check_update(
        PC,
        json!({"metadata": {"name": "x"}, "value": 1, "preemptionPolicy": "Never"}),
        json!({"metadata": {"name": "x"}, "value": 1, "preemptionPolicy": "PreemptLowerPriority", "description": "new"}),
        &["preemptionPolicy"],
    );
    check_update(
        PC,
        json!({"metadata": {"name": "x"}, "value": 1}),
        json!({"metadata": {"name": "x"}, "value": 1, "description": "changed", "globalDefault": true}),
        &[],
    );
}

#[test]
fn pod_disruption_budget_status() {
    let old = json!({"metadata": {"name": "p", "namespace": "d", "resourceVersion": "1"}, "spec": {"minAvailable": 1}});
    let with = |status: Value| {
        let mut n = old.clone();
        n["status"] = status;
        fields(&validate_status_update(
            "policy",
            "PodDisruptionBudget",
            true,
            &n,
            &old,
        ))
    };
    let ok = json!({"disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2,
        "observedGeneration": 1,
        "conditions": [{"type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods",
            "message": "", "observedGeneration": 1, "lastTransitionTime": "2024-01-01T00:00:00Z"}]});
    assert_eq!(with(ok), Vec::<String>::new());
    assert_eq!(
        with(
            json!({"disruptionsAllowed": -1, "currentHealthy": -1, "desiredHealthy": -2, "expectedPods": -3})
        ),
        vec![
            "status.currentHealthy",
            "status.desiredHealthy",
            "status.disruptionsAllowed",
            "status.expectedPods"
        ]
    );
    assert_eq!(
        with(json!({"conditions": [
            {"type": "DisruptionAllowed", "status": "Maybe", "reason": "1bad", "lastTransitionTime": "2024-01-01T00:00:00Z"},
            {"type": "DisruptionAllowed", "status": "True", "reason": ""}
        ]})),
        vec![
            "status.conditions[0].reason",
            "status.conditions[0].status",
            "status.conditions[1].lastTransitionTime",
            "status.conditions[1].reason",
            "status.conditions[1].type"
        ]
    );
}
