//! `HorizontalPodAutoscaler`: `autoscaling/v2` (storage) ↔ `autoscaling/v1`,
//! after `pkg/apis/autoscaling/v1/conversion.go`.
//!
//! v1 keeps one CPU utilization target. The other metrics, the current metrics,
//! the conditions and the behavior ride in annotations. Metrics and conditions
//! are written in their `autoscaling/v1` (v2beta1-like) shapes; behavior is
//! written as upstream's internal Go struct marshals it (PascalCase keys, null
//! for unset) and read back case-insensitively, as `encoding/json` does. An
//! annotation that doesn't parse is ignored, as upstream ignores it.
use serde_json::{json, Value};

use super::{
    array_field, as_object, copy, copy_same, new_object, object_field, Object, AUTOSCALING_V1,
    AUTOSCALING_V2,
};

/// `autoscaling.MetricSpecsAnnotation`: metrics other than the CPU utilization target.
pub const METRIC_SPECS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// `autoscaling.MetricStatusesAnnotation`: all of `status.currentMetrics`.
pub const METRIC_STATUSES_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// `autoscaling.HorizontalPodAutoscalerConditionsAnnotation`: `status.conditions`.
pub const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `autoscaling.BehaviorSpecsAnnotation`: `spec.behavior`.
pub const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// `autoscaling.DefaultCPUUtilization`: the target a v1 HPA without one gets.
const DEFAULT_CPU_UTILIZATION: i64 = 80;

const ROUND_TRIP_ANNOTATIONS: [&str; 4] = [
    METRIC_SPECS_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    CONDITIONS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
];

const KIND: &str = "HorizontalPodAutoscaler";
const STATUS_COMMON: [&str; 4] = [
    "observedGeneration",
    "lastScaleTime",
    "currentReplicas",
    "desiredReplicas",
];

pub(super) fn v2_to_v1(mut obj: Object) -> Result<Object, String> {
    let mut metadata = take_metadata(&mut obj)?;
    // Only the annotations this conversion produces may be set on the way out.
    drop_round_trip_annotations(&mut metadata);
    let mut annotations: Vec<(&str, Value)> = Vec::new();

    let mut spec_out = None;
    if let Some(spec) = object_field(&obj, "spec", "")? {
        let mut out = Object::new();
        copy_same(
            spec,
            &mut out,
            &["scaleTargetRef", "minReplicas", "maxReplicas"],
        );
        let metrics = array_field(spec, "metrics", ".spec")?.unwrap_or_default();
        let mut others = Vec::new();
        let mut target = None;
        for (i, m) in metrics.iter().enumerate() {
            let path = format!(".spec.metrics[{i}]");
            let m = as_object(m, &path)?;
            match cpu_utilization_target(m, &path)? {
                Some(pct) => {
                    target.get_or_insert(pct);
                }
                None => others.push(Value::Object(metric_spec_to_v1(m, &path)?)),
            }
        }
        if let Some(pct) = target {
            out.insert("targetCPUUtilizationPercentage".into(), pct);
        }
        if !others.is_empty() {
            annotations.push((METRIC_SPECS_ANNOTATION, Value::Array(others)));
        }
        if let Some(behavior) = object_field(spec, "behavior", ".spec")? {
            annotations.push((BEHAVIOR_ANNOTATION, behavior_to_internal(behavior)?));
        }
        spec_out = Some(out);
    }

    let mut status_out = None;
    if let Some(status) = object_field(&obj, "status", "")? {
        let mut out = Object::new();
        copy_same(status, &mut out, &STATUS_COMMON);
        let current = array_field(status, "currentMetrics", ".status")?.unwrap_or_default();
        let mut converted = Vec::with_capacity(current.len());
        for (i, m) in current.iter().enumerate() {
            let path = format!(".status.currentMetrics[{i}]");
            let m = as_object(m, &path)?;
            if let Some(pct) = cpu_current_utilization(m, &path)? {
                // Upstream keeps the last one it sees.
                out.insert("currentCPUUtilizationPercentage".into(), pct);
            }
            converted.push(Value::Object(metric_status_to_v1(m, &path)?));
        }
        if !converted.is_empty() {
            annotations.push((METRIC_STATUSES_ANNOTATION, Value::Array(converted)));
        }
        if let Some(conditions) = array_field(status, "conditions", ".status")? {
            if !conditions.is_empty() {
                annotations.push((CONDITIONS_ANNOTATION, Value::Array(conditions.to_vec())));
            }
        }
        status_out = Some(out);
    }

    if !annotations.is_empty() {
        let map = metadata
            .entry("annotations")
            .or_insert_with(|| Value::Object(Object::new()));
        let map = map
            .as_object_mut()
            .ok_or(".metadata.annotations: expected an object")?;
        for (key, value) in annotations {
            map.insert(key.into(), Value::String(value.to_string()));
        }
    }
    Ok(finish(AUTOSCALING_V1, metadata, spec_out, status_out))
}

pub(super) fn v1_to_v2(mut obj: Object) -> Result<Object, String> {
    let mut metadata = take_metadata(&mut obj)?;
    let annotation = |key: &str| -> Option<Value> {
        let text = metadata.get("annotations")?.get(key)?.as_str()?;
        serde_json::from_str(text).ok()
    };
    let other_metrics = annotation(METRIC_SPECS_ANNOTATION)
        .and_then(|v| each(&v, |m| metric_spec_from_v1(as_object(m, "")?, "")).ok());
    let behavior = annotation(BEHAVIOR_ANNOTATION)
        .and_then(|v| behavior_from_internal(&v).ok())
        .flatten();
    let current_metrics = annotation(METRIC_STATUSES_ANNOTATION)
        .and_then(|v| each(&v, |m| metric_status_from_v1(as_object(m, "")?, "")).ok());
    let conditions =
        annotation(CONDITIONS_ANNOTATION).and_then(|v| each(&v, |c| Ok(c.clone())).ok());
    drop_round_trip_annotations(&mut metadata);

    let mut spec_out = Object::new();
    let spec = object_field(&obj, "spec", "")?;
    if let Some(spec) = spec {
        copy_same(
            spec,
            &mut spec_out,
            &["scaleTargetRef", "minReplicas", "maxReplicas"],
        );
    }
    let mut metrics = other_metrics.unwrap_or_default();
    if let Some(pct) = spec.and_then(|s| s.get("targetCPUUtilizationPercentage")) {
        if !pct.is_null() {
            metrics.push(cpu_utilization_metric(pct.clone()));
        }
    }
    if metrics.is_empty() {
        // Upstream's conversion (not its defaulting) makes v1's implicit
        // controller default explicit: it alone sees the annotation's metrics.
        metrics.push(cpu_utilization_metric(DEFAULT_CPU_UTILIZATION.into()));
    }
    spec_out.insert("metrics".into(), Value::Array(metrics));
    if let Some(behavior) = behavior {
        spec_out.insert("behavior".into(), behavior);
    }

    let status = object_field(&obj, "status", "")?;
    let mut status_out = status.map(|status| {
        let mut out = Object::new();
        copy_same(status, &mut out, &STATUS_COMMON);
        if let Some(pct) = status.get("currentCPUUtilizationPercentage") {
            if !pct.is_null() {
                out.insert(
                    "currentMetrics".into(),
                    json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": pct}}}]),
                );
            }
        }
        out
    });
    if current_metrics.is_some() || conditions.is_some() {
        let out = status_out.get_or_insert_with(Object::new);
        if let Some(current) = current_metrics {
            // The annotation has more than the CPU percentage; it wins.
            out.insert("currentMetrics".into(), Value::Array(current));
        }
        if let Some(conditions) = conditions {
            out.insert("conditions".into(), Value::Array(conditions));
        }
    }
    Ok(finish(AUTOSCALING_V2, metadata, Some(spec_out), status_out))
}

fn take_metadata(obj: &mut Object) -> Result<Object, String> {
    match obj.remove("metadata") {
        None | Some(Value::Null) => Ok(Object::new()),
        Some(Value::Object(m)) => Ok(m),
        Some(_) => Err(".metadata: expected an object".into()),
    }
}

fn drop_round_trip_annotations(metadata: &mut Object) {
    if let Some(Value::Object(map)) = metadata.get_mut("annotations") {
        for key in ROUND_TRIP_ANNOTATIONS {
            map.remove(key);
        }
    }
}

fn finish(
    api_version: &str,
    mut metadata: Object,
    spec: Option<Object>,
    status: Option<Object>,
) -> Object {
    // Go's ObjectMeta omits an empty annotation map.
    if metadata
        .get("annotations")
        .and_then(Value::as_object)
        .is_some_and(Object::is_empty)
    {
        metadata.remove("annotations");
    }
    let metadata = (!metadata.is_empty()).then_some(Value::Object(metadata));
    let mut out = new_object(api_version, KIND, metadata);
    if let Some(spec) = spec {
        out.insert("spec".into(), Value::Object(spec));
    }
    if let Some(status) = status {
        out.insert("status".into(), Value::Object(status));
    }
    out
}

/// Converts each element of a JSON array; an error for anything else.
fn each(v: &Value, f: impl Fn(&Value) -> Result<Value, String>) -> Result<Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| "expected an array".to_string())?
        .iter()
        .map(f)
        .collect()
}

fn cpu_utilization_metric(pct: Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": pct}}})
}

/// The target of a `Resource` cpu metric with an average utilization.
fn cpu_utilization_target(m: &Object, path: &str) -> Result<Option<Value>, String> {
    if m.get("type").and_then(Value::as_str) != Some("Resource") {
        return Ok(None);
    }
    let Some(resource) = object_field(m, "resource", path)? else {
        return Ok(None);
    };
    if resource.get("name").and_then(Value::as_str) != Some("cpu") {
        return Ok(None);
    }
    let target = object_field(resource, "target", &format!("{path}.resource"))?;
    Ok(target
        .and_then(|t| t.get("averageUtilization"))
        .filter(|v| !v.is_null())
        .cloned())
}

/// The current average utilization of a `Resource` cpu metric status.
fn cpu_current_utilization(m: &Object, path: &str) -> Result<Option<Value>, String> {
    if m.get("type").and_then(Value::as_str) != Some("Resource") {
        return Ok(None);
    }
    let Some(resource) = object_field(m, "resource", path)? else {
        return Ok(None);
    };
    if resource.get("name").and_then(Value::as_str) != Some("cpu") {
        return Ok(None);
    }
    let current = object_field(resource, "current", &format!("{path}.resource"))?;
    Ok(current
        .and_then(|c| c.get("averageUtilization"))
        .filter(|v| !v.is_null())
        .cloned())
}

// ---- metric specs: v2 ↔ v1 annotation shape -------------------------------

/// The source fields of a metric, each converted when present. A typed
/// conversion converts every pointer field on its own, whatever `type` says.
const SOURCES: [&str; 5] = [
    "object",
    "pods",
    "resource",
    "containerResource",
    "external",
];

fn metric_spec_to_v1(m: &Object, path: &str) -> Result<Object, String> {
    let mut out = Object::new();
    copy(m, "type", &mut out, "type");
    for source in SOURCES {
        let Some(s) = object_field(m, source, path)? else {
            continue;
        };
        let path = format!("{path}.{source}");
        let target = object_field(s, "target", &path)?
            .cloned()
            .unwrap_or_default();
        let metric = object_field(s, "metric", &path)?
            .cloned()
            .unwrap_or_default();
        let mut o = Object::new();
        match source {
            "resource" | "containerResource" => {
                copy_same(s, &mut o, &["name", "container"]);
                copy(
                    &target,
                    "averageUtilization",
                    &mut o,
                    "targetAverageUtilization",
                );
                copy(&target, "averageValue", &mut o, "targetAverageValue");
            }
            "pods" => {
                copy(&metric, "name", &mut o, "metricName");
                copy(&metric, "selector", &mut o, "selector");
                copy(&target, "averageValue", &mut o, "targetAverageValue");
            }
            "object" => {
                copy(s, "describedObject", &mut o, "target");
                copy(&metric, "name", &mut o, "metricName");
                copy(&metric, "selector", &mut o, "selector");
                copy(&target, "value", &mut o, "targetValue");
                copy(&target, "averageValue", &mut o, "averageValue");
            }
            _ => {
                copy(&metric, "name", &mut o, "metricName");
                copy(&metric, "selector", &mut o, "metricSelector");
                copy(&target, "value", &mut o, "targetValue");
                copy(&target, "averageValue", &mut o, "targetAverageValue");
            }
        }
        out.insert(source.into(), Value::Object(o));
    }
    Ok(out)
}

fn metric_spec_from_v1(m: &Object, path: &str) -> Result<Value, String> {
    let mut out = Object::new();
    copy(m, "type", &mut out, "type");
    for source in SOURCES {
        let Some(s) = object_field(m, source, path)? else {
            continue;
        };
        let has = |k: &str| s.get(k).is_some_and(|v| !v.is_null());
        let mut o = Object::new();
        let mut target = Object::new();
        let mut metric = Object::new();
        let target_type = match source {
            "resource" | "containerResource" => {
                copy_same(s, &mut o, &["name", "container"]);
                copy(
                    s,
                    "targetAverageUtilization",
                    &mut target,
                    "averageUtilization",
                );
                copy(s, "targetAverageValue", &mut target, "averageValue");
                if has("targetAverageUtilization") {
                    "Utilization"
                } else {
                    "AverageValue"
                }
            }
            "pods" => {
                copy(s, "metricName", &mut metric, "name");
                copy(s, "selector", &mut metric, "selector");
                copy(s, "targetAverageValue", &mut target, "averageValue");
                "AverageValue"
            }
            "object" => {
                copy(s, "target", &mut o, "describedObject");
                copy(s, "metricName", &mut metric, "name");
                copy(s, "selector", &mut metric, "selector");
                copy(s, "targetValue", &mut target, "value");
                copy(s, "averageValue", &mut target, "averageValue");
                if has("averageValue") {
                    "AverageValue"
                } else {
                    "Value"
                }
            }
            _ => {
                copy(s, "metricName", &mut metric, "name");
                copy(s, "metricSelector", &mut metric, "selector");
                copy(s, "targetValue", &mut target, "value");
                copy(s, "targetAverageValue", &mut target, "averageValue");
                if has("targetValue") {
                    "Value"
                } else {
                    "AverageValue"
                }
            }
        };
        target.insert("type".into(), target_type.into());
        if !matches!(source, "resource" | "containerResource") {
            o.insert("metric".into(), Value::Object(metric));
        }
        o.insert("target".into(), Value::Object(target));
        out.insert(source.into(), Value::Object(o));
    }
    Ok(Value::Object(out))
}

// ---- metric statuses: v2 ↔ v1 annotation shape ----------------------------

fn metric_status_to_v1(m: &Object, path: &str) -> Result<Object, String> {
    let mut out = Object::new();
    copy(m, "type", &mut out, "type");
    for source in SOURCES {
        let Some(s) = object_field(m, source, path)? else {
            continue;
        };
        let path = format!("{path}.{source}");
        let current = object_field(s, "current", &path)?
            .cloned()
            .unwrap_or_default();
        let metric = object_field(s, "metric", &path)?
            .cloned()
            .unwrap_or_default();
        let mut o = Object::new();
        match source {
            "resource" | "containerResource" => {
                copy_same(s, &mut o, &["name", "container"]);
                copy(
                    &current,
                    "averageUtilization",
                    &mut o,
                    "currentAverageUtilization",
                );
                copy(&current, "averageValue", &mut o, "currentAverageValue");
            }
            "pods" => {
                copy(&metric, "name", &mut o, "metricName");
                copy(&metric, "selector", &mut o, "selector");
                copy(&current, "averageValue", &mut o, "currentAverageValue");
            }
            "object" => {
                copy(s, "describedObject", &mut o, "target");
                copy(&metric, "name", &mut o, "metricName");
                copy(&metric, "selector", &mut o, "selector");
                copy(&current, "value", &mut o, "currentValue");
                copy(&current, "averageValue", &mut o, "averageValue");
            }
            _ => {
                copy(&metric, "name", &mut o, "metricName");
                copy(&metric, "selector", &mut o, "metricSelector");
                copy(&current, "value", &mut o, "currentValue");
                copy(&current, "averageValue", &mut o, "currentAverageValue");
            }
        }
        out.insert(source.into(), Value::Object(o));
    }
    Ok(out)
}

fn metric_status_from_v1(m: &Object, path: &str) -> Result<Value, String> {
    let mut out = Object::new();
    copy(m, "type", &mut out, "type");
    for source in SOURCES {
        let Some(s) = object_field(m, source, path)? else {
            continue;
        };
        let mut o = Object::new();
        let mut current = Object::new();
        let mut metric = Object::new();
        match source {
            "resource" | "containerResource" => {
                copy_same(s, &mut o, &["name", "container"]);
                copy(
                    s,
                    "currentAverageUtilization",
                    &mut current,
                    "averageUtilization",
                );
                copy(s, "currentAverageValue", &mut current, "averageValue");
            }
            "pods" => {
                copy(s, "metricName", &mut metric, "name");
                copy(s, "selector", &mut metric, "selector");
                copy(s, "currentAverageValue", &mut current, "averageValue");
            }
            "object" => {
                copy(s, "target", &mut o, "describedObject");
                copy(s, "metricName", &mut metric, "name");
                copy(s, "selector", &mut metric, "selector");
                copy(s, "currentValue", &mut current, "value");
                copy(s, "averageValue", &mut current, "averageValue");
            }
            _ => {
                copy(s, "metricName", &mut metric, "name");
                copy(s, "metricSelector", &mut metric, "selector");
                copy(s, "currentValue", &mut current, "value");
                copy(s, "currentAverageValue", &mut current, "averageValue");
            }
        }
        if !matches!(source, "resource" | "containerResource") {
            o.insert("metric".into(), Value::Object(metric));
        }
        o.insert("current".into(), Value::Object(current));
        out.insert(source.into(), Value::Object(o));
    }
    Ok(Value::Object(out))
}

// ---- behavior: v2 wire form ↔ internal Go struct JSON ----------------------

/// (v2 JSON name, internal Go field name) of `HPAScalingRules`.
const RULES_FIELDS: [(&str, &str); 4] = [
    ("stabilizationWindowSeconds", "StabilizationWindowSeconds"),
    ("selectPolicy", "SelectPolicy"),
    ("policies", "Policies"),
    ("tolerance", "Tolerance"),
];
const POLICY_FIELDS: [(&str, &str); 3] = [
    ("type", "Type"),
    ("value", "Value"),
    ("periodSeconds", "PeriodSeconds"),
];
const DIRECTIONS: [(&str, &str); 2] = [("scaleUp", "ScaleUp"), ("scaleDown", "ScaleDown")];

fn behavior_to_internal(b: &Object) -> Result<Value, String> {
    let mut out = Object::new();
    for (wire, go) in DIRECTIONS {
        let path = format!(".spec.behavior.{wire}");
        let rules = match object_field(b, wire, ".spec.behavior")? {
            None => Value::Null,
            Some(r) => {
                let mut o = Object::new();
                for (wire, go) in RULES_FIELDS {
                    let v = match (wire, r.get(wire)) {
                        ("policies", Some(Value::Array(ps))) => {
                            let mut list = Vec::with_capacity(ps.len());
                            for (i, p) in ps.iter().enumerate() {
                                let p = as_object(p, &format!("{path}.policies[{i}]"))?;
                                let mut po = Object::new();
                                for (wire, go) in POLICY_FIELDS {
                                    po.insert(
                                        go.into(),
                                        p.get(wire).cloned().unwrap_or(Value::Null),
                                    );
                                }
                                list.push(Value::Object(po));
                            }
                            Value::Array(list)
                        }
                        (_, v) => v.cloned().unwrap_or(Value::Null),
                    };
                    o.insert(go.into(), v);
                }
                Value::Object(o)
            }
        };
        out.insert(go.into(), rules);
    }
    Ok(Value::Object(out))
}

/// `o`'s field named `name`, matched case-insensitively like `encoding/json`.
fn get_ci<'a>(o: &'a Object, name: &str) -> Option<&'a Value> {
    o.get(name)
        .or_else(|| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// The v2 behavior from the annotation; None when both directions are unset.
fn behavior_from_internal(v: &Value) -> Result<Option<Value>, String> {
    let b = as_object(v, "behavior")?;
    let mut out = Object::new();
    for (wire, go) in DIRECTIONS {
        let Some(r) = get_ci(b, go) else { continue };
        let r = as_object(r, go)?;
        let mut o = Object::new();
        for (wire, go) in RULES_FIELDS {
            let Some(v) = get_ci(r, go) else { continue };
            let v = if wire == "policies" {
                Value::Array(each(v, |p| {
                    let p = as_object(p, "policy")?;
                    let mut po = Object::new();
                    for (wire, go) in POLICY_FIELDS {
                        if let Some(v) = get_ci(p, go) {
                            po.insert(wire.into(), v.clone());
                        }
                    }
                    Ok(Value::Object(po))
                })?)
            } else {
                v.clone()
            };
            o.insert(wire.into(), v);
        }
        out.insert(wire.into(), Value::Object(o));
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}
