//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
//! strategic merge patch.

use serde_json::{Map, Value};

use crate::error::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    StrategicMerge,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => {
                Some(PatchType::Apply)
            }
            _ => None,
        }
    }
}

/// The object `old` with `patch` applied.
pub fn apply(kind: PatchType, old: &Value, patch: &Value) -> Result<Value, ApiError> {
    let mut doc = old.clone();
    match kind {
        PatchType::Json => {
            let ops: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                ApiError::BadRequest(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            })?;
            json_patch::patch(&mut doc, &ops).map_err(|e| ApiError::Invalid {
                kind: kind_of(old),
                group: group_of(old),
                name: crate::object::name(old).to_string(),
                causes: vec![resources::validation::FieldError {
                    error_type: resources::validation::ErrorType::Invalid,
                    field: String::new(),
                    bad_value: None,
                    detail: format!("the JSON patch could not be applied: {e}"),
                }],
            })?;
        }
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "a merge patch must be a JSON object".into(),
                ));
            }
            json_patch::merge(&mut doc, patch);
        }
        PatchType::StrategicMerge => {
            if !patch.is_object() {
                return Err(ApiError::BadRequest(
                    "a strategic merge patch must be a JSON object".into(),
                ));
            }
            strategic_merge(&mut doc, patch, "");
        }
        PatchType::Apply => {
            return Err(ApiError::UnsupportedMediaType(
                "server-side apply is not supported yet".into(),
            ))
        }
    }
    Ok(doc)
}

fn kind_of(o: &Value) -> String {
    o.get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn group_of(o: &Value) -> String {
    o.get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|a| a.split_once('/'))
        .map(|(g, _)| g.to_string())
        .unwrap_or_default()
}

/// The merge key of a list field, by its name, for the built-in kinds
/// (`patchMergeKey` tags in k8s.io/api). Lists without one are replaced.
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "hostAliases"
        | "resourceClaims"
        | "schedulingGates" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        "ports" => return None, // containerPort for containers, port for services: decided by context
        _ => return None,
    })
}

/// Strategic merge patch (the subset kubectl's built-in commands send):
/// maps merge recursively, `null` deletes, lists with a merge key merge by
/// it, `$patch: delete|replace`, `$setElementOrder/`, `$retainKeys`, and
/// `$deleteFromPrimitiveList/` directives are honoured.
pub fn strategic_merge(doc: &mut Value, patch: &Value, path: &str) {
    let Some(p) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut m = p.clone();
        m.remove("$patch");
        *doc = Value::Object(m);
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let target = doc.as_object_mut().expect("made an object above");
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, v) in p {
        if k == "$retainKeys" || k == "$patch" || k.starts_with("$setElementOrder/") {
            continue;
        }
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(del)) = (
                target.get_mut(field).and_then(Value::as_array_mut),
                v.as_array(),
            ) {
                list.retain(|x| !del.contains(x));
            }
            continue;
        }
        if v.is_null() {
            target.remove(k);
            continue;
        }
        let child_path = format!("{path}/{k}");
        match v {
            Value::Object(_) => {
                let entry = target.entry(k.clone()).or_insert(Value::Null);
                strategic_merge(entry, v, &child_path);
            }
            Value::Array(items) => {
                let key = if k == "ports" {
                    if path.ends_with("/spec") && !path.contains("containers") {
                        Some("port")
                    } else {
                        Some("containerPort")
                    }
                } else {
                    merge_key(k)
                };
                match (key, target.get_mut(k)) {
                    (Some(key), Some(Value::Array(existing)))
                        if items.iter().all(Value::is_object) =>
                    {
                        merge_list(existing, items, key, &child_path);
                    }
                    _ => {
                        let cleaned: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .cloned()
                            .collect();
                        target.insert(k.clone(), Value::Array(cleaned));
                    }
                }
            }
            _ => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: &str, path: &str) {
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *existing = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return;
    }
    for item in items {
        let id = item.get(key);
        let pos = existing
            .iter()
            .position(|e| e.get(key) == id && id.is_some());
        if item.get("$patch").and_then(Value::as_str) == Some("delete") {
            if let Some(i) = pos {
                existing.remove(i);
            }
            continue;
        }
        match pos {
            Some(i) => strategic_merge(&mut existing[i], item, path),
            None => existing.push(item.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smp_merges_containers_by_name() {
        let old = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}}}});
        let patch = json!({"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "b", "image": "y:2"}]}}}});
        let out = apply(PatchType::StrategicMerge, &old, &patch).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1]["image"],
            "y:2"
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["image"],
            "x:1"
        );
    }

    #[test]
    fn smp_null_deletes_and_patch_delete() {
        let old = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"metadata": {"labels": {"a": null}}, "spec": {"containers": [{"name": "a", "$patch": "delete"}]}});
        let out = apply(PatchType::StrategicMerge, &old, &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(out["spec"]["containers"], json!([{"name": "b"}]));
    }

    #[test]
    fn merge_and_json_patch() {
        let old = json!({"spec": {"replicas": 1}});
        assert_eq!(
            apply(PatchType::Merge, &old, &json!({"spec": {"replicas": 3}})).unwrap()["spec"]
                ["replicas"],
            3
        );
        let out = apply(
            PatchType::Json,
            &old,
            &json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]),
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 5);
        assert!(apply(
            PatchType::Json,
            &old,
            &json!([{"op": "test", "path": "/spec/replicas", "value": 9}])
        )
        .is_err());
        assert!(apply(PatchType::Json, &old, &json!({"op": "bogus"})).is_err());
    }
}
