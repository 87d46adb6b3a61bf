//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386) and
//! strategic merge patch.

use serde_json::{Map, Value};

use resources::openapi::schemas::resolve;

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
            let schema = schema_of(old);
            strategic_merge(&mut doc, patch, schema);
        }
        PatchType::Apply => {
            return Err(ApiError::UnsupportedMediaType(
                "server-side apply is not supported yet".into(),
            ))
        }
    }
    Ok(doc)
}

/// The schema of an object's kind, from its apiVersion and kind.
fn schema_of(o: &Value) -> Option<&'static Value> {
    let av = o.get("apiVersion").and_then(Value::as_str)?;
    let (group, version) = av.split_once('/').unwrap_or(("", av));
    let kind = o.get("kind").and_then(Value::as_str)?;
    resources::openapi::schemas::schema_for(group, version, kind).map(resolve)
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

/// A field's property schema (unresolved, so its own extensions are kept).
fn property(schema: Option<&'static Value>, key: &str) -> Option<&'static Value> {
    let schema = schema?;
    schema
        .get("properties")
        .and_then(|p| p.get(key))
        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

/// How a list field merges, from the schema's `x-kubernetes-patch-strategy`
/// and `x-kubernetes-patch-merge-key` (the `patchStrategy`/`patchMergeKey`
/// tags upstream). `None`: the list is replaced.
enum ListMerge {
    ByKey(&'static str),
    Primitives,
}

fn list_merge(prop: Option<&'static Value>) -> Option<ListMerge> {
    let prop = prop?;
    let strategy = prop
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)?;
    if !strategy.split(',').any(|s| s == "merge") {
        return None;
    }
    match prop
        .get("x-kubernetes-patch-merge-key")
        .and_then(Value::as_str)
    {
        Some(key) => Some(ListMerge::ByKey(key)),
        None => Some(ListMerge::Primitives),
    }
}

/// Strategic merge patch: maps merge recursively, `null` deletes, lists
/// merge as the kind's schema says (by merge key, or as a set of
/// primitives) and are replaced otherwise; `$patch: delete|replace`,
/// `$setElementOrder/`, `$retainKeys` and `$deleteFromPrimitiveList/`
/// directives are honoured. `schema` is the schema of `doc`.
pub fn strategic_merge(doc: &mut Value, patch: &Value, schema: Option<&'static Value>) {
    let Some(p) = patch.as_object() else {
        *doc = patch.clone();
        return;
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut m = p.clone();
            m.remove("$patch");
            *doc = Value::Object(m);
            return;
        }
        // Upstream's handleDirectiveInMergeMap: the map becomes empty.
        Some("delete") => {
            *doc = Value::Object(Map::new());
            return;
        }
        _ => {}
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    let target = doc.as_object_mut().expect("made an object above");
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        target.retain(|k, _| keep.contains(&k.as_str()));
    }
    // `$setElementOrder/<list>`: the live list as it was before merging, to
    // order the merged list by afterwards.
    let orders: Vec<(&str, &Vec<Value>, Vec<Value>)> = p
        .iter()
        .filter_map(|(k, v)| {
            let field = k.strip_prefix("$setElementOrder/")?;
            let order = v.as_array()?;
            let live = target
                .get(field)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Some((field, order, live))
        })
        .collect();
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
        let prop = property(schema, k);
        let child = prop.map(resolve);
        match v {
            Value::Object(_) => {
                let entry = target.entry(k.clone()).or_insert(Value::Null);
                strategic_merge(entry, v, child);
            }
            Value::Array(items) => {
                let item_schema = child.and_then(|c| c.get("items")).map(resolve);
                match (list_merge(prop), target.get_mut(k)) {
                    (Some(ListMerge::ByKey(key)), Some(Value::Array(existing)))
                        if items.iter().all(Value::is_object) =>
                    {
                        merge_list(existing, items, key, item_schema);
                    }
                    (Some(ListMerge::Primitives), Some(Value::Array(existing))) => {
                        for item in items {
                            if !existing.contains(item) {
                                existing.push(item.clone());
                            }
                        }
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
    for (field, order, live) in orders {
        let key = match list_merge(property(schema, field)) {
            Some(ListMerge::ByKey(key)) => Some(key),
            _ => None,
        };
        if let Some(Value::Array(list)) = target.get_mut(field) {
            let merged = std::mem::take(list);
            *list = order_list(merged, order, &live, key);
        }
    }
}

/// Orders a merged list as `$setElementOrder` asks (upstream's
/// `normalizeElementOrder`): the items the order names come in its order,
/// the items only the server had keep their live order, and the two are
/// interleaved by their live positions (`mergeSortedSlice`).
fn order_list(
    merged: Vec<Value>,
    order: &[Value],
    live: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let id = |v: &Value| -> Option<Value> {
        match key {
            Some(k) => v.get(k).cloned(),
            None => Some(v.clone()),
        }
    };
    let index_in = |list: &[Value], v: &Value| -> Option<usize> {
        let want = id(v)?;
        list.iter().position(|x| id(x).as_ref() == Some(&want))
    };
    let (mut named, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| index_in(order, v).is_some());
    named.sort_by_key(|v| index_in(order, v));
    server_only.sort_by_key(|v| index_in(live, v).unwrap_or(usize::MAX));
    let mut out = Vec::with_capacity(named.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = named.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
            (Some(l), Some(r)) => matches!(
                (index_in(live, l), index_in(live, r)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

fn merge_list(
    existing: &mut Vec<Value>,
    items: &[Value],
    key: &str,
    item_schema: Option<&'static Value>,
) {
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
            Some(i) => strategic_merge(&mut existing[i], item, item_schema),
            None => {
                // Merged onto nothing, so that directives and nulls inside a
                // new item do not end up in the object.
                let mut fresh = Value::Object(Map::new());
                strategic_merge(&mut fresh, item, item_schema);
                existing.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smp_merges_containers_by_name() {
        let old = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}}}});
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
        let old = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]}, "spec": {"containers": [{"name": "a"}, {"name": "b"}], "tolerations": [{"key": "k"}]}});
        let patch = json!({"metadata": {"labels": {"a": null}, "finalizers": ["y"]}, "spec": {"containers": [{"name": "a", "$patch": "delete"}], "tolerations": [{"key": "j"}]}});
        let out = apply(PatchType::StrategicMerge, &old, &patch).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
        assert_eq!(out["spec"]["containers"], json!([{"name": "b"}]));
        // Lists without a merge strategy are replaced; merge-strategy
        // primitive lists are unions.
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "j"}]));
        assert_eq!(out["metadata"]["finalizers"], json!(["x", "y"]));
    }

    fn deployment(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": containers}}}})
    }

    fn names(d: &Value) -> Vec<&str> {
        d["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn smp_set_element_order_orders_the_merged_list() {
        let old = deployment(json!([{"name": "web"}, {"name": "side"}, {"name": "extra"}]));
        let check = |patch: Value, want: &[&str]| {
            let out = apply(PatchType::StrategicMerge, &old, &patch).unwrap();
            assert_eq!(names(&out), want, "{patch}");
        };
        // A new item placed first, as kubectl edit/apply send it.
        check(
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "log"}, {"name": "web"}, {"name": "side"}],
                "containers": [{"name": "log", "image": "l"}]}}}}),
            &["log", "web", "side", "extra"],
        );
        // Reordering alone; the item only the server has keeps its place.
        check(
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}]}}}}),
            &["side", "web", "extra"],
        );
        check(
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "extra"}, {"name": "web"}]}}}}),
            // Upstream's interleaving: "side" sat before "extra" live.
            &["side", "extra", "web"],
        );
        // Primitive lists are ordered by value.
        let pod =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"finalizers": ["a", "b", "c"]}});
        let out = apply(
            PatchType::StrategicMerge,
            &pod,
            &json!({"metadata": {"$setElementOrder/finalizers": ["c", "b"], "$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "b"]));
    }

    #[test]
    fn smp_directives_on_maps_and_new_items() {
        let old = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"spec": {"containers": [{"name": "web"}]}}}});
        // What kubectl apply sends when the file switches to Recreate.
        let out = apply(
            PatchType::StrategicMerge,
            &old,
            &json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let out = apply(
            PatchType::StrategicMerge,
            &old,
            &json!({"spec": {"strategy": {"$patch": "delete"}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["strategy"], json!({}));
        // Directives and nulls inside a new list item are not stored.
        let out = apply(
            PatchType::StrategicMerge,
            &old,
            &json!({"spec": {"template": {"spec": {"containers": [{"name": "log", "image": null,
                "$setElementOrder/env": [{"name": "A"}], "env": [{"name": "A", "value": "1"}]}]}}}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][1],
            json!({"name": "log", "env": [{"name": "A", "value": "1"}]})
        );
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
