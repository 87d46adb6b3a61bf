use serde_json::{json, Value};

use super::hpa::{
    BEHAVIOR_ANNOTATION, CONDITIONS_ANNOTATION, METRIC_SPECS_ANNOTATION, METRIC_STATUSES_ANNOTATION,
};
use super::{convert, storage_version};

#[track_caller]
fn check(input: Value, to: &str, expected: Value) {
    let got = convert(input, to).unwrap_or_else(|e| panic!("convert to {to}: {e}"));
    assert_eq!(got, expected, "\n got: {got:#}\nwant: {expected:#}");
}

#[track_caller]
fn check_err(input: Value, to: &str, want: &str) {
    let err = convert(input, to).expect_err("conversion should fail");
    assert!(err.contains(want), "error {err:?} should contain {want:?}");
}

/// Converts to `via` and back to where `input` started; nothing may change.
#[track_caller]
fn round_trip(input: Value, via: &str) {
    let from = input["apiVersion"].as_str().unwrap().to_owned();
    let there = convert(input.clone(), via).unwrap();
    assert_eq!(there["apiVersion"], via);
    let back = convert(there.clone(), &from).unwrap();
    assert_eq!(back, input, "\nvia: {there:#}\nback: {back:#}");
}

/// The annotation value as the JSON it encodes.
fn annotation(obj: &Value, key: &str) -> Value {
    let text = obj["metadata"]["annotations"][key].as_str().unwrap();
    serde_json::from_str(text).unwrap()
}

fn hpa(api_version: &str, spec: Value) -> Value {
    json!({"apiVersion": api_version, "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn target_ref() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"})
}

fn cpu(pct: i64) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": pct}}})
}

/// A fully populated, defaulted v2 HPA using every metric source and status.
fn full_v2() -> Value {
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {
            "scaleTargetRef": target_ref(), "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization", "averageUtilization": 60}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps", "selector": {"matchLabels": {"a": "b"}}}, "target": {"type": "AverageValue", "averageValue": "1k"}}},
                {"type": "Object", "object": {"describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
                    "metric": {"name": "rps"}, "target": {"type": "Value", "value": "10k"}}},
                {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "jobs"}}}, "target": {"type": "AverageValue", "averageValue": "30"}}},
                cpu(70)
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"stabilizationWindowSeconds": 300, "selectPolicy": "Max", "tolerance": "50m",
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
            }
        },
        "status": {
            "observedGeneration": 3, "lastScaleTime": "2025-01-01T00:00:00Z", "currentReplicas": 3, "desiredReplicas": 4,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 65, "averageValue": "130m"}}},
                {"type": "Pods", "pods": {"metric": {"name": "qps"}, "current": {"averageValue": "900"}}},
                {"type": "Object", "object": {"describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
                    "metric": {"name": "rps"}, "current": {"value": "9k"}}},
                {"type": "External", "external": {"metric": {"name": "queue"}, "current": {"value": "12", "averageValue": "4"}}},
                {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "current": {"averageUtilization": 55, "averageValue": "110m"}}}
            ],
            "conditions": [
                {"type": "AbleToScale", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z", "reason": "ReadyForNewScale", "message": "ok"},
                {"type": "ScalingActive", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z", "reason": "ValidMetricFound"}
            ]
        }
    })
}

#[test]
fn conversion_storage_version() {
    let cases = [
        (
            "autoscaling",
            "horizontalpodautoscalers",
            Some(("autoscaling", "v2")),
        ),
        (
            "autoscaling",
            "HorizontalPodAutoscaler",
            Some(("autoscaling", "v2")),
        ),
        ("events.k8s.io", "events", Some(("", "v1"))),
        ("events.k8s.io", "Event", Some(("", "v1"))),
        ("", "events", None),
        ("apps", "deployments", None),
        ("autoscaling", "scales", None),
    ];
    for (group, kind, want) in cases {
        assert_eq!(storage_version(group, kind), want, "{group}/{kind}");
    }
}

#[test]
fn conversion_identity() {
    for obj in [
        full_v2(),
        hpa("autoscaling/v1", json!({"maxReplicas": 3})),
        json!({"apiVersion": "v1", "kind": "Event", "message": "m", "extra": 1}),
    ] {
        let to = obj["apiVersion"].as_str().unwrap().to_owned();
        check(obj.clone(), &to, obj);
    }
}

#[test]
fn conversion_hpa_v1_to_v2() {
    let cases = [
        // The CPU target becomes the one Resource metric.
        (
            hpa(
                "autoscaling/v1",
                json!({"scaleTargetRef": target_ref(), "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}),
            ),
            hpa(
                "autoscaling/v2",
                json!({"scaleTargetRef": target_ref(), "minReplicas": 1, "maxReplicas": 5, "metrics": [cpu(50)]}),
            ),
        ),
        // No target and no metrics annotation: upstream's conversion writes v1's implicit 80%.
        (
            hpa(
                "autoscaling/v1",
                json!({"scaleTargetRef": target_ref(), "maxReplicas": 5}),
            ),
            hpa(
                "autoscaling/v2",
                json!({"scaleTargetRef": target_ref(), "maxReplicas": 5, "metrics": [cpu(80)]}),
            ),
        ),
        // Annotated metrics come first, the CPU target last; annotations are consumed.
        (
            json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web", "annotations": {
                    METRIC_SPECS_ANNOTATION: r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"1Gi"}},{"type":"External","external":{"metricName":"q","targetValue":"5"}}]"#,
                    "keep": "me"}},
                "spec": {"maxReplicas": 4, "targetCPUUtilizationPercentage": 75}}),
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web", "annotations": {"keep": "me"}},
                "spec": {"maxReplicas": 4, "metrics": [
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}},
                    {"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "5"}}},
                    cpu(75)]}}),
        ),
        // Status: the percentage alone, then the annotation (which wins) plus conditions.
        (
            json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "spec": {"maxReplicas": 2, "targetCPUUtilizationPercentage": 60},
                "status": {"currentReplicas": 1, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 90}}),
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "spec": {"maxReplicas": 2, "metrics": [cpu(60)]},
                "status": {"currentReplicas": 1, "desiredReplicas": 2, "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 90}}}]}}),
        ),
        (
            json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"annotations": {
                    METRIC_STATUSES_ANNOTATION: r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":90,"currentAverageValue":"180m"}}]"#,
                    CONDITIONS_ANNOTATION: r#"[{"type":"AbleToScale","status":"True","reason":"SucceededRescale"}]"#}},
                "spec": {"maxReplicas": 2, "targetCPUUtilizationPercentage": 60},
                "status": {"currentReplicas": 1, "desiredReplicas": 2, "currentCPUUtilizationPercentage": 90}}),
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "spec": {"maxReplicas": 2, "metrics": [cpu(60)]},
                "status": {"currentReplicas": 1, "desiredReplicas": 2,
                    "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 90, "averageValue": "180m"}}}],
                    "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale"}]}}),
        ),
        // Behavior is read as upstream's internal Go struct, keys in any case.
        (
            json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"annotations": {BEHAVIOR_ANNOTATION:
                    r#"{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":60,"SelectPolicy":null,"policies":[{"Type":"Pods","Value":1,"PeriodSeconds":30}],"Tolerance":null}}"#}},
                "spec": {"maxReplicas": 2, "targetCPUUtilizationPercentage": 60}}),
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "spec": {"maxReplicas": 2, "metrics": [cpu(60)], "behavior": {"scaleDown": {
                    "stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]}}}}),
        ),
        // An empty behavior is no behavior, as upstream; bad annotations are ignored and dropped.
        (
            json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"annotations": {BEHAVIOR_ANNOTATION: "{}", METRIC_SPECS_ANNOTATION: "abc",
                    METRIC_STATUSES_ANNOTATION: "", CONDITIONS_ANNOTATION: "{\"not\":\"a list\"}"}},
                "spec": {"maxReplicas": 2, "targetCPUUtilizationPercentage": 60}}),
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "spec": {"maxReplicas": 2, "metrics": [cpu(60)]}}),
        ),
    ];
    for (input, want) in cases {
        check(input, "autoscaling/v2", want);
    }
}

#[test]
fn conversion_hpa_v2_to_v1() {
    let cases = [
        // A lone CPU utilization metric needs no annotation.
        (
            hpa(
                "autoscaling/v2",
                json!({"scaleTargetRef": target_ref(), "minReplicas": 1, "maxReplicas": 5, "metrics": [cpu(50)]}),
            ),
            hpa(
                "autoscaling/v1",
                json!({"scaleTargetRef": target_ref(), "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}),
            ),
        ),
        // Stale round-trip annotations on the stored object are not served.
        (
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"annotations": {METRIC_SPECS_ANNOTATION: "[]", BEHAVIOR_ANNOTATION: "{}"}},
                "spec": {"maxReplicas": 3, "metrics": [cpu(70)]}}),
            json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "spec": {"maxReplicas": 3, "targetCPUUtilizationPercentage": 70}}),
        ),
    ];
    for (input, want) in cases {
        check(input, "autoscaling/v1", want);
    }
}

#[test]
fn conversion_hpa_cpu_average_value_is_not_the_target() {
    // #101370: a CPU AverageValue metric is kept in the annotation; the first
    // CPU Utilization metric becomes the v1 target.
    let v2 = hpa(
        "autoscaling/v2",
        json!({"maxReplicas": 3, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "300m"}}},
            cpu(70)]}),
    );
    let v1 = convert(v2, "autoscaling/v1").unwrap();
    assert_eq!(
        v1["spec"],
        json!({"maxReplicas": 3, "targetCPUUtilizationPercentage": 70})
    );
    assert_eq!(
        annotation(&v1, METRIC_SPECS_ANNOTATION),
        json!([{"type": "Resource", "resource": {"name": "cpu", "targetAverageValue": "300m"}}])
    );
}

#[test]
fn conversion_hpa_v2_to_v1_annotations() {
    let v1 = convert(full_v2(), "autoscaling/v1").unwrap();
    assert_eq!(
        v1["spec"],
        json!({"scaleTargetRef": target_ref(), "minReplicas": 2, "maxReplicas": 10, "targetCPUUtilizationPercentage": 70})
    );
    assert_eq!(
        v1["status"],
        json!({"observedGeneration": 3, "lastScaleTime": "2025-01-01T00:00:00Z",
        "currentReplicas": 3, "desiredReplicas": 4, "currentCPUUtilizationPercentage": 65})
    );
    assert_eq!(v1["metadata"]["annotations"]["team"], "a");
    assert_eq!(
        annotation(&v1, METRIC_SPECS_ANNOTATION),
        json!([
            {"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "500Mi"}},
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "targetAverageUtilization": 60}},
            {"type": "Pods", "pods": {"metricName": "qps", "selector": {"matchLabels": {"a": "b"}}, "targetAverageValue": "1k"}},
            {"type": "Object", "object": {"target": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"}, "metricName": "rps", "targetValue": "10k"}},
            {"type": "External", "external": {"metricName": "queue", "metricSelector": {"matchLabels": {"q": "jobs"}}, "targetAverageValue": "30"}}
        ])
    );
    assert_eq!(
        annotation(&v1, METRIC_STATUSES_ANNOTATION),
        json!([
            {"type": "Resource", "resource": {"name": "cpu", "currentAverageUtilization": 65, "currentAverageValue": "130m"}},
            {"type": "Pods", "pods": {"metricName": "qps", "currentAverageValue": "900"}},
            {"type": "Object", "object": {"target": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"}, "metricName": "rps", "currentValue": "9k"}},
            {"type": "External", "external": {"metricName": "queue", "currentValue": "12", "currentAverageValue": "4"}},
            {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "currentAverageUtilization": 55, "currentAverageValue": "110m"}}
        ])
    );
    assert_eq!(
        annotation(&v1, CONDITIONS_ANNOTATION),
        full_v2()["status"]["conditions"]
    );
    assert_eq!(
        annotation(&v1, BEHAVIOR_ANNOTATION),
        json!({
            "ScaleUp": {"StabilizationWindowSeconds": 0, "SelectPolicy": "Max", "Tolerance": null, "Policies": [
                {"Type": "Pods", "Value": 4, "PeriodSeconds": 15}, {"Type": "Percent", "Value": 100, "PeriodSeconds": 15}]},
            "ScaleDown": {"StabilizationWindowSeconds": 300, "SelectPolicy": "Max", "Tolerance": "50m", "Policies": [
                {"Type": "Percent", "Value": 100, "PeriodSeconds": 15}]}
        })
    );
}

#[test]
fn conversion_hpa_round_trips() {
    // v2 → v1 → v2 (the CPU utilization metric last, where v1 → v2 puts it).
    round_trip(full_v2(), "autoscaling/v1");
    round_trip(
        hpa(
            "autoscaling/v2",
            json!({"maxReplicas": 3, "metrics": [cpu(50)]}),
        ),
        "autoscaling/v1",
    );
    round_trip(
        hpa(
            "autoscaling/v2",
            json!({"maxReplicas": 3, "metrics": [
        {"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "s"}, "metric": {"name": "m"},
            "target": {"type": "AverageValue", "averageValue": "2"}}}]}),
        ),
        "autoscaling/v1",
    );
    // v1 → v2 → v1.
    round_trip(
        hpa(
            "autoscaling/v1",
            json!({"scaleTargetRef": target_ref(), "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}),
        ),
        "autoscaling/v2",
    );
}

fn core_event() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "web-1.17a", "namespace": "default", "resourceVersion": "42"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u1", "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
        "reason": "Pulled", "message": "Container image pulled", "type": "Normal",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": "2025-01-01T00:00:00Z", "lastTimestamp": "2025-01-01T00:05:00Z", "count": 3,
        "eventTime": null, "action": "Pull",
        "series": {"count": 2, "lastObservedTime": "2025-01-01T00:05:00.000000Z"},
        "related": {"kind": "Node", "name": "node-1"},
        "reportingComponent": "kubelet", "reportingInstance": "node-1"
    })
}

fn events_event() -> Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web-1.17a", "namespace": "default", "resourceVersion": "42"},
        "regarding": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u1", "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
        "reason": "Pulled", "note": "Container image pulled", "type": "Normal",
        "deprecatedSource": {"component": "kubelet", "host": "node-1"},
        "deprecatedFirstTimestamp": "2025-01-01T00:00:00Z", "deprecatedLastTimestamp": "2025-01-01T00:05:00Z", "deprecatedCount": 3,
        "eventTime": null, "action": "Pull",
        "series": {"count": 2, "lastObservedTime": "2025-01-01T00:05:00.000000Z"},
        "related": {"kind": "Node", "name": "node-1"},
        "reportingController": "kubelet", "reportingInstance": "node-1"
    })
}

#[test]
fn conversion_event() {
    check(core_event(), "events.k8s.io/v1", events_event());
    check(events_event(), "v1", core_event());
    let cases = [
        // No fallback in conversion: source.component does not become reportingController.
        (
            json!({"apiVersion": "v1", "kind": "Event", "message": "m", "source": {"component": "kubelet", "host": "n"}, "reportingComponent": ""}),
            "events.k8s.io/v1",
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "m", "deprecatedSource": {"component": "kubelet", "host": "n"}, "reportingController": ""}),
        ),
        // A new-style event: eventTime and the reporting fields, nothing deprecated.
        (
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "eventTime": "2025-01-01T00:00:00.000001Z",
                "reportingController": "example.com/ctl", "reportingInstance": "ctl-0", "action": "Scale", "reason": "Scaled",
                "regarding": {"kind": "Deployment", "name": "web"}, "type": "Normal", "unknownField": true}),
            "v1",
            json!({"apiVersion": "v1", "kind": "Event", "eventTime": "2025-01-01T00:00:00.000001Z",
                "reportingComponent": "example.com/ctl", "reportingInstance": "ctl-0", "action": "Scale", "reason": "Scaled",
                "involvedObject": {"kind": "Deployment", "name": "web"}, "type": "Normal"}),
        ),
    ];
    for (input, to, want) in cases {
        check(input, to, want);
    }
}

#[test]
fn conversion_event_round_trips() {
    round_trip(core_event(), "events.k8s.io/v1");
    round_trip(events_event(), "v1");
}

#[test]
fn conversion_kind_inferred_from_versions() {
    check(
        json!({"apiVersion": "v1", "message": "m"}),
        "events.k8s.io/v1",
        json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "note": "m"}),
    );
    check(
        json!({"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 1, "targetCPUUtilizationPercentage": 10}}),
        "autoscaling/v2",
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "spec": {"maxReplicas": 1, "metrics": [cpu(10)]}}),
    );
}

#[test]
fn conversion_errors() {
    check_err(json!([1]), "v1", "expected a JSON object");
    check_err(json!({"kind": "Event"}), "v1", "apiVersion");
    check_err(
        json!({"apiVersion": "v1", "kind": "Pod"}),
        "events.k8s.io/v1",
        "no conversion for Pod from v1 to events.k8s.io/v1",
    );
    check_err(
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"}),
        "v1",
        "no conversion",
    );
    check_err(
        hpa("autoscaling/v2", json!({"metrics": {"a": 1}})),
        "autoscaling/v1",
        ".spec.metrics: expected an array",
    );
    check_err(
        hpa(
            "autoscaling/v2",
            json!({"metrics": [{"type": "Pods", "pods": "x"}]}),
        ),
        "autoscaling/v1",
        ".spec.metrics[0].pods: expected an object",
    );
    check_err(
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"annotations": []},
        "spec": {"metrics": [cpu(1), {"type": "Pods"}]}}),
        "autoscaling/v1",
        ".metadata.annotations: expected an object",
    );
}
