//! autoscaling: HorizontalPodAutoscaler, read from either the v2 shape
//! (`spec.metrics`) or the v1 shape (`spec.targetCPUUtilizationPercentage`).

use super::*;

pub(super) const HPA: &[ColumnDefinition] = &[
    NAME,
    col("Reference", "string", "Kind/name of the scaled object."),
    col("Targets", "string", "Current/target value of each metric."),
    col("MinPods", "string", "Lower limit of replicas."),
    col("MaxPods", "string", "Upper limit of replicas."),
    col("Replicas", "string", "Current number of replicas."),
    AGE,
];

/// A Quantity as printed by `(*Quantity).String()`, "<nil>" when unset.
fn quantity(v: &Value, pointer: &str) -> String {
    match get(v, pointer) {
        Some(q) => int_or_string(q),
        None => "<nil>".into(),
    }
}

fn percent(v: &Value, pointer: &str) -> Option<String> {
    get(v, pointer)
        .and_then(Value::as_i64)
        .map(|p| format!("{p}%"))
}

/// One metric as "current/target", the way `formatHPAMetrics` prints it.
fn format_metric(spec: &Value, status: Option<&Value>) -> String {
    let unknown = || "<unknown>".to_string();
    // The matching status entry, only if it has the same source filled in.
    let current = |source: &str| status.and_then(|s| get(s, &format!("/{source}")));
    match str_at(spec, "/type") {
        kind @ ("External" | "Object") => {
            let source = if kind == "External" {
                "external"
            } else {
                "object"
            };
            let target = get(spec, &format!("/{source}/target")).unwrap_or(&Value::Null);
            if get(target, "/averageValue").is_some() {
                let cur = current(source)
                    .filter(|c| get(c, "/current/averageValue").is_some())
                    .map_or_else(unknown, |c| quantity(c, "/current/averageValue"));
                format!("{cur}/{} (avg)", quantity(target, "/averageValue"))
            } else {
                let cur = current(source).map_or_else(unknown, |c| quantity(c, "/current/value"));
                format!("{cur}/{}", quantity(target, "/value"))
            }
        }
        "Pods" => {
            let cur =
                current("pods").map_or_else(unknown, |c| quantity(c, "/current/averageValue"));
            format!("{cur}/{}", quantity(spec, "/pods/target/averageValue"))
        }
        kind @ ("Resource" | "ContainerResource") => {
            let source = if kind == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let src = get(spec, &format!("/{source}")).unwrap_or(&Value::Null);
            let resource = str_at(src, "/name");
            if get(src, "/target/averageValue").is_some() {
                let cur =
                    current(source).map_or_else(unknown, |c| quantity(c, "/current/averageValue"));
                format!(
                    "{resource}: {cur}/{}",
                    quantity(src, "/target/averageValue")
                )
            } else {
                let cur = current(source)
                    .and_then(|c| percent(c, "/current/averageUtilization"))
                    .unwrap_or_else(unknown);
                let target =
                    percent(src, "/target/averageUtilization").unwrap_or_else(|| "<auto>".into());
                format!("{resource}: {cur}/{target}")
            }
        }
        _ => "<unknown type>".into(),
    }
}

/// The v2 metric specs and statuses; a v1 object's CPU target becomes one
/// Resource metric, as the v1→internal conversion does.
fn metrics(hpa: &Value) -> (Vec<Value>, Vec<Value>) {
    if let Some(specs) = get(hpa, "/spec/metrics").and_then(Value::as_array) {
        return (
            specs.clone(),
            arr_at(hpa, "/status/currentMetrics").to_vec(),
        );
    }
    let Some(target) = get(hpa, "/spec/targetCPUUtilizationPercentage") else {
        return (vec![], vec![]);
    };
    let spec = serde_json::json!({"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": target}}});
    let status = match get(hpa, "/status/currentCPUUtilizationPercentage") {
        Some(current) => vec![
            serde_json::json!({"type": "Resource", "resource": {"name": "cpu",
            "current": {"averageUtilization": current}}}),
        ],
        None => vec![],
    };
    (vec![spec], status)
}

fn format_metrics(hpa: &Value) -> String {
    let (specs, statuses) = metrics(hpa);
    if specs.is_empty() {
        return "<none>".into();
    }
    const MAXIMUM: usize = 2;
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .take(MAXIMUM)
        .map(|(i, spec)| format_metric(spec, statuses.get(i)))
        .collect();
    let ret = list.join(", ");
    if specs.len() > MAXIMUM {
        format!("{ret} + {} more...", specs.len() - MAXIMUM)
    } else {
        ret
    }
}

pub(super) fn hpa(obj: &Value, now: Timestamp) -> Vec<Value> {
    let reference = format!(
        "{}/{}",
        str_at(obj, "/spec/scaleTargetRef/kind"),
        str_at(obj, "/spec/scaleTargetRef/name")
    );
    let min_pods = match get(obj, "/spec/minReplicas").and_then(Value::as_i64) {
        Some(m) => m.to_string(),
        None => "<unset>".into(),
    };
    vec![
        name(obj).into(),
        reference.into(),
        format_metrics(obj).into(),
        min_pods.into(),
        int_at(obj, "/spec/maxReplicas").into(),
        int_at(obj, "/status/currentReplicas").into(),
        age(obj, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use serde_json::{json, Value};

    fn hpa(spec: Value, status: Value) -> Value {
        let mut spec = spec;
        spec["scaleTargetRef"] =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
        spec["maxReplicas"] = json!(10);
        json!({"metadata": {"name": "web", "creationTimestamp": ago(90)}, "spec": spec, "status": status})
    }

    fn check_hpa(spec: Value, status: Value, targets: &str, min: &str, replicas: i64) {
        check(
            "autoscaling",
            "HorizontalPodAutoscaler",
            hpa(spec, status),
            json!(["web", "Deployment/web", targets, min, 10, replicas, "90s"]),
        );
    }

    #[test]
    fn v1_shape() {
        check_hpa(
            json!({"minReplicas": 1, "targetCPUUtilizationPercentage": 80}),
            json!({"currentReplicas": 2, "currentCPUUtilizationPercentage": 45}),
            "cpu: 45%/80%",
            "1",
            2,
        );
        check_hpa(
            json!({"targetCPUUtilizationPercentage": 50}),
            json!({}),
            "cpu: <unknown>/50%",
            "<unset>",
            0,
        );
        check_hpa(json!({}), json!({}), "<none>", "<unset>", 0);
    }

    #[test]
    fn v2_shape() {
        let metrics = json!([
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "10"}}},
        ]);
        let status = json!({"currentReplicas": 3, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 30, "averageValue": "150m"}}},
            {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "200Mi"}}},
        ]});
        check_hpa(
            json!({"minReplicas": 2, "metrics": metrics}),
            status,
            "cpu: 30%/60%, memory: 200Mi/500Mi + 1 more...",
            "2",
            3,
        );
        check_hpa(
            json!({"metrics": [
                {"type": "Pods", "pods": {"target": {"averageValue": "1k"}}},
                {"type": "External", "external": {"target": {"type": "AverageValue", "averageValue": "30"}}},
            ]}),
            json!({"currentMetrics": [{"type": "Pods", "pods": {"current": {"averageValue": "250"}}}]}),
            "250/1k, <unknown>/30 (avg)",
            "<unset>",
            0,
        );
        check_hpa(
            json!({"metrics": [
                {"type": "Object", "object": {"target": {"type": "Value", "value": "2"}}},
                {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "app", "target": {"type": "Utilization"}}},
            ]}),
            json!({"currentMetrics": [{"type": "Object", "object": {"current": {"value": "1"}}}]}),
            "1/2, cpu: <unknown>/<auto>",
            "<unset>",
            0,
        );
    }
}
