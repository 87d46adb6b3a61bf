//! Field validation as kube-apiserver does it for `fieldValidation=Strict|Warn`:
//! fields the kind's schema does not know, and fields given twice in one object.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::schemas;

/// Unknown fields (by walking the JSON body against the kind's schema, following
/// `$ref`; `metadata` via ObjectMeta; maps with `additionalProperties`;
/// int-or-string and `x-kubernetes-preserve-unknown-fields`/free-form objects
/// accepted; RawExtension fields free-form) and duplicated fields (same key twice
/// in one JSON object, seen in the raw bytes).
///
/// Returns the problems in Kubernetes' wording, in document order:
/// `unknown field "spec.foo"`, `duplicate field "metadata.name"`, with paths as
/// upstream spells them (dotted, list indices like `spec.containers[0].foo`).
///
/// A kind without a schema is only checked for duplicates. A body that is not
/// valid JSON gives no problems here; decoding reports it. Keys starting with `$`
/// (strategic merge patch directives) are never called unknown.
pub fn field_problems(group: &str, version: &str, kind: &str, raw_json: &[u8]) -> Vec<String> {
    let Ok(node) = serde_json::from_slice::<Node>(raw_json) else {
        return Vec::new();
    };
    let schema = schemas::schema_for(group, version, kind);
    let mut out = Vec::new();
    walk(schema.map(resolve), &node, "", &mut out);
    out
}

/// The message of the 400 BadRequest kube-apiserver answers under `Strict`:
/// `strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`.
pub fn strict_decoding_error(problems: &[String]) -> String {
    format!("strict decoding error: {}", problems.join(", "))
}

/// A JSON value that keeps every key of an object, duplicates included.
#[derive(Debug)]
enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Node::Object(entries))
    }
}

/// Follows `$ref`s to the schema that says something.
fn resolve(mut schema: &'static Value) -> &'static Value {
    // Definitions never chain far; the bound only guards a malformed catalog.
    for _ in 0..16 {
        let target = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(schemas::ref_target)
            .and_then(schemas::definition);
        match target {
            Some(def) => schema = def,
            None => break,
        }
    }
    schema
}

/// Whether anything goes below this schema.
fn is_free_form(schema: &Value) -> bool {
    let flag = |k| schema.get(k).and_then(Value::as_bool).unwrap_or(false);
    flag("x-kubernetes-preserve-unknown-fields") || flag("x-kubernetes-int-or-string")
}

fn field_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Checks `node` against `schema` (`None`: free-form) and appends what is wrong.
fn walk(schema: Option<&'static Value>, node: &Node, path: &str, out: &mut Vec<String>) {
    let schema = schema.filter(|s| !is_free_form(s));
    match node {
        Node::Scalar => {}
        Node::Array(items) => {
            let item_schema = schema.and_then(|s| s.get("items")).map(resolve);
            for (i, item) in items.iter().enumerate() {
                walk(item_schema, item, &format!("{path}[{i}]"), out);
            }
        }
        Node::Object(entries) => {
            let properties = schema
                .and_then(|s| s.get("properties"))
                .and_then(Value::as_object);
            let additional = schema.and_then(|s| s.get("additionalProperties"));
            // An object schema with neither names nor a value schema is free-form
            // (RawExtension, FieldsV1, JSON).
            let checked = properties.is_some() || additional.is_some_and(Value::is_object);
            let mut seen = HashSet::new();
            for (key, value) in entries {
                let here = field_path(path, key);
                if !seen.insert(key.as_str()) {
                    out.push(format!("duplicate field \"{here}\""));
                    continue;
                }
                if !checked {
                    walk(None, value, &here, out);
                    continue;
                }
                let field_schema = properties
                    .and_then(|p| p.get(key))
                    .or_else(|| additional.filter(|a| a.is_object()));
                match field_schema {
                    Some(s) => walk(Some(resolve(s)), value, &here, out),
                    None if key.starts_with('$') => walk(None, value, &here, out),
                    None => out.push(format!("unknown field \"{here}\"")),
                }
            }
        }
    }
}

/// Drops the fields the kind's schema does not know, as decoding into the
/// typed object does upstream when unknown fields are not an error
/// (`fieldValidation=Warn|Ignore`). Kinds without a schema are left alone.
pub fn prune_unknown(group: &str, version: &str, kind: &str, obj: &mut Value) {
    if let Some(schema) = schemas::schema_for(group, version, kind) {
        prune(Some(resolve(schema)), obj);
    }
}

fn prune(schema: Option<&'static Value>, value: &mut Value) {
    let Some(schema) = schema.filter(|s| !is_free_form(s)) else {
        return;
    };
    match value {
        Value::Array(items) => {
            let item_schema = schema.get("items").map(resolve);
            for item in items {
                prune(item_schema, item);
            }
        }
        Value::Object(map) => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if properties.is_none() && additional.is_none() {
                return;
            }
            map.retain(|key, _| {
                properties.is_some_and(|p| p.contains_key(key)) || additional.is_some()
            });
            for (key, v) in map.iter_mut() {
                let field_schema = properties.and_then(|p| p.get(key)).or(additional);
                prune(field_schema.map(resolve), v);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_drops_only_unknown_fields() {
        let mut cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "y"}, "bogus": 1}, "data": {"k": "v"}, "extra": true});
        prune_unknown("", "v1", "ConfigMap", &mut cm);
        assert_eq!(
            cm,
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "y"}}, "data": {"k": "v"}})
        );
        let mut d = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i", "nope": 1, "ports": [{"containerPort": 80, "zzz": 2}]}]}}}});
        prune_unknown("apps", "v1", "Deployment", &mut d);
        assert_eq!(
            d,
            serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]}}}})
        );
    }

    /// Problems of `body` as `group/version kind`.
    fn check(gvk: (&str, &str, &str), body: &str, want: &[&str]) {
        let got = field_problems(gvk.0, gvk.1, gvk.2, body.as_bytes());
        assert_eq!(got, want, "body: {body}");
    }

    const DEPLOYMENT: (&str, &str, &str) = ("apps", "v1", "Deployment");
    const CONFIG_MAP: (&str, &str, &str) = ("", "v1", "ConfigMap");

    #[test]
    fn clean_objects_have_no_problems() {
        check(
            DEPLOYMENT,
            r#"{"apiVersion":"apps/v1","kind":"Deployment",
                "metadata":{"name":"web","labels":{"app":"web","any/key":"x"},
                            "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}\n"}},
                "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
                        "strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":1}},
                        "template":{"metadata":{"labels":{"app":"web"}},
                                    "spec":{"containers":[{"name":"web","image":"busybox",
                                        "resources":{"limits":{"cpu":"100m","memory":1024}},
                                        "ports":[{"containerPort":80}]}]}}}}"#,
            &[],
        );
    }

    #[test]
    fn unknown_fields_at_several_depths() {
        check(
            DEPLOYMENT,
            r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","foo":1},
                "spec":{"foo":{"deeper":true},"bar":2,
                        "template":{"spec":{"containers":[{"name":"a"},{"name":"b","imagePullPolicyy":"x"}]}}},
                "extra":[]}"#,
            &[
                r#"unknown field "metadata.foo""#,
                r#"unknown field "spec.foo""#,
                r#"unknown field "spec.bar""#,
                r#"unknown field "spec.template.spec.containers[1].imagePullPolicyy""#,
                r#"unknown field "extra""#,
            ],
        );
    }

    #[test]
    fn duplicate_fields() {
        check(
            CONFIG_MAP,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"},
                "data":{"k":"1","k":"2"}}"#,
            &[
                r#"duplicate field "metadata.name""#,
                r#"duplicate field "data.k""#,
            ],
        );
        check(
            DEPLOYMENT,
            r#"{"spec":{"replicas":1,"replicas":2,"template":{"spec":{"containers":[{"name":"a","image":"x","image":"y"}]}}}}"#,
            &[
                r#"duplicate field "spec.replicas""#,
                r#"duplicate field "spec.template.spec.containers[0].image""#,
            ],
        );
    }

    #[test]
    fn maps_and_free_form_fields_take_any_key() {
        check(
            CONFIG_MAP,
            r#"{"data":{"anything":"v","a.b/c":"w"},"binaryData":{"x":"AA=="}}"#,
            &[],
        );
        check(
            ("", "v1", "Service"),
            r#"{"spec":{"ports":[{"port":80,"targetPort":"http"},{"port":81,"targetPort":8080}],
                        "selector":{"app":"web"}}}"#,
            &[],
        );
        // RawExtension is free-form.
        check(
            ("apps", "v1", "ControllerRevision"),
            r#"{"revision":1,"data":{"spec":{"whatever":{"nested":[1]}}}}"#,
            &[],
        );
        // managedFields[].fieldsV1 is free-form.
        check(
            CONFIG_MAP,
            r#"{"metadata":{"managedFields":[{"manager":"k","fieldsV1":{"f:data":{"f:k":{}}}}]}}"#,
            &[],
        );
    }

    #[test]
    fn other_kinds_and_edges() {
        check(
            ("autoscaling", "v1", "Scale"),
            r#"{"spec":{"replicas":3,"bogus":1}}"#,
            &[r#"unknown field "spec.bogus""#],
        );
        check(
            ("apps", "v1", "DeploymentList"),
            r#"{"items":[{"spec":{"nope":1}}],"metadata":{"resourceVersion":"1"}}"#,
            &[r#"unknown field "items[0].spec.nope""#],
        );
        // Strategic merge patch directives are not fields.
        check(
            DEPLOYMENT,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"name":"a","$patch":"delete"}]}}}}"#,
            &[],
        );
        // No schema: only duplicates.
        check(
            ("example.com", "v1", "Widget"),
            r#"{"a":1,"b":{"c":1,"c":2}}"#,
            &[r#"duplicate field "b.c""#],
        );
        // Not JSON: decoding reports it, not this.
        check(CONFIG_MAP, "{not json", &[]);
    }

    #[test]
    fn strict_message() {
        let problems = vec![
            r#"unknown field "spec.foo""#.to_string(),
            r#"unknown field "spec.bar""#.to_string(),
        ];
        assert_eq!(
            strict_decoding_error(&problems),
            r#"strict decoding error: unknown field "spec.foo", unknown field "spec.bar""#
        );
    }
}
