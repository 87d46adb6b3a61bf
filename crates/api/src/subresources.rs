//! Pod subresources that act on other state: `binding` (what the scheduler
//! posts) and `eviction` (what `kubectl drain` posts).

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::object::now_rfc3339;
use crate::rest::{DeleteOptions, Rest, Scope, WriteOptions};

/// `pods/binding`: sets `spec.nodeName` once and records `PodScheduled=True`.
pub async fn bind(rest: &Rest, scope: &Scope, name: &str, binding: &Value) -> Result<(), ApiError> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::BadRequest("target.name: Required value".into()))?
        .to_string();
    let opts = WriteOptions::default();
    rest.update_with(scope, name, None, &opts, |old| {
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::Conflict {
                gr: scope.gr(),
                name: name.to_string(),
                message: "pod is being deleted, cannot be assigned to a host".into(),
            });
        }
        if let Some(n) = old
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::Conflict {
                gr: scope.gr(),
                name: name.to_string(),
                message: format!("pod {name} is already assigned to node {n:?}"),
            });
        }
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!(node);
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        Ok(new)
    })
    .await?;
    let now = now_rfc3339();
    rest.update_with(scope, name, Some("status"), &opts, |old| {
        let mut new = old.clone();
        let conds = new["status"]["conditions"].as_array().cloned().unwrap_or_default();
        let mut conds: Vec<Value> = conds.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
        conds.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
        new["status"]["conditions"] = json!(conds);
        if let Some(m) = new["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        Ok(new)
    })
    .await?;
    Ok(())
}

/// `pods/eviction`: deletes the pod with the eviction's delete options.
/// PodDisruptionBudgets are not consulted yet (the disruption controller
/// that keeps their status comes with the scheduler work).
pub async fn evict(
    rest: &Rest,
    scope: &Scope,
    name: &str,
    eviction: &Value,
) -> Result<(), ApiError> {
    let d = eviction.get("deleteOptions").cloned().unwrap_or_default();
    let opts = DeleteOptions {
        grace_period_seconds: d.get("gracePeriodSeconds").and_then(Value::as_i64),
        propagation_policy: d
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_uid: d
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_resource_version: d
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run: d
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All")),
    };
    rest.delete(scope, name, &opts).await?;
    Ok(())
}

/// A `metav1.LabelSelector` in its string form (`a=b,c in (d)`), as Scale's
/// `status.selector` carries it.
pub fn selector_string(sel: &Value) -> String {
    let mut parts = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in m {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or_default();
            let values: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            parts.push(match e["operator"].as_str().unwrap_or_default() {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                _ => continue,
            });
        }
    }
    parts.sort();
    parts.join(",")
}

/// The `autoscaling/v1` Scale of `obj` with the given replica counts and
/// selector (empty: none).
pub fn scale(obj: &Value, spec_replicas: i64, status_replicas: i64, selector: &str) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or_default();
    let mut status = json!({"replicas": status_replicas});
    if !selector.is_empty() {
        status["selector"] = json!(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m.get("name"),
            "namespace": m.get("namespace"),
            "uid": m.get("uid"),
            "resourceVersion": m.get("resourceVersion"),
            "creationTimestamp": m.get("creationTimestamp"),
        },
        "spec": {"replicas": spec_replicas},
        "status": status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_strings() {
        let s = json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}, {"key": "x", "operator": "DoesNotExist"}]});
        assert_eq!(selector_string(&s), "!x,app=web,tier in (a,b)");
    }
}
