//! Field validation as kube-apiserver does it for `fieldValidation=Strict|Warn`:
//! fields the kind's schema does not know, and fields given twice in one object.

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::schemas::{self, resolve};

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

/// A value of a JSON type that the kind's Go field cannot hold, found the way
/// kube-apiserver's JSON decoder (`sigs.k8s.io/json`, a fork of Go's
/// `encoding/json`) finds it when it decodes the body into the typed object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeProblem {
    /// Where the value is, as Kubernetes field paths are spelled:
    /// `spec.replicas`, `spec.template.spec.containers[0].ports[0].containerPort`,
    /// `metadata.labels[app]`.
    pub path: String,
    /// The decoder's message, e.g. `json: cannot unmarshal string into Go struct
    /// field DeploymentSpec.spec.replicas of type int32`.
    pub message: String,
    /// The decoder stops here: the value went through a type's own
    /// `UnmarshalJSON` (int-or-string, quantity, time) and that failed. Go notes
    /// other mismatches and carries on, so a stopping problem is the one
    /// reported even when a noted one came first (see [`decode_error`]).
    pub stops_decoding: bool,
}

/// Values of the wrong JSON type in `obj`, walked against the schema of
/// `group/version kind` (the catalog [`field_problems`] uses): a string where
/// an integer is wanted, an object where a list is, a list where a map is, a
/// fraction or an out-of-range number for an integer, and so on.
///
/// As upstream: `null` is always fine (it means absent); int-or-string takes a
/// string or an int32; a quantity takes a string or a number; times take a
/// string; RawExtension, `x-kubernetes-preserve-unknown-fields` and other
/// free-form values take anything; fields the schema does not know are left to
/// [`field_problems`]. Integers must be written as integers (`3.0` is refused,
/// as Go's `strconv.ParseInt` refuses it). Only the JSON type is checked, not
/// formats (a quantity string that does not parse is validation's business).
///
/// Returns nothing for a kind without a schema. Allocates only for problems.
pub fn type_problems(group: &str, version: &str, kind: &str, obj: &Value) -> Vec<TypeProblem> {
    let mut out = Vec::new();
    if let Some(schema) = schemas::schema_for(group, version, kind) {
        let name = schemas::catalog().name_for(group, version, kind);
        let (schema, name) = resolve_named(schema, name);
        check_value(shape_of(schema, name), obj, None, &mut out);
    }
    out
}

/// The 400 BadRequest message kube-apiserver answers when a create or update
/// body does not decode: `Deployment in version "v1" cannot be handled as a
/// Deployment: json: cannot unmarshal string into Go struct field
/// DeploymentSpec.spec.replicas of type int32`. Like Go's decoder it names one
/// problem: the first that stops decoding, else the first.
pub fn decode_error(kind: &str, version: &str, problems: &[TypeProblem]) -> String {
    let cause = problems
        .iter()
        .find(|p| p.stops_decoding)
        .or_else(|| problems.first())
        .map_or("", |p| p.message.as_str());
    format!("{kind} in version \"{version}\" cannot be handled as a {kind}: {cause}")
}

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// What a schema lets a value be, in Go's terms.
#[derive(Clone, Copy)]
enum Shape {
    /// Anything goes (RawExtension, preserve-unknown-fields, free-form objects).
    Any,
    /// `intstr.IntOrString`: a string, or else decoded as an int32.
    IntOrString,
    /// `resource.Quantity`: a string or a number.
    Quantity,
    /// `metav1.Time`/`MicroTime`: decoded as a string by its own UnmarshalJSON.
    Time,
    Bool,
    /// Integer of this many bits.
    Int(u32),
    Float,
    String,
    /// `[]byte`, a base64 string.
    Bytes,
    Array(&'static Value),
    Map(&'static Value),
    /// A struct: its definition name and its properties.
    Struct(&'static str, &'static serde_json::Map<String, Value>),
}

/// The schema that says something about a value, with the name of the
/// last definition reached.
fn resolve_named(
    schema: &'static Value,
    name: Option<&'static str>,
) -> (&'static Value, Option<&'static str>) {
    match schemas::referenced(schema) {
        Some((n, def)) => (def, Some(n)),
        None => (schema, name),
    }
}

/// The shape of a property, item or map value schema.
fn shape_for(schema: &'static Value) -> Shape {
    let (schema, name) = resolve_named(schema, None);
    shape_of(schema, name)
}

fn shape_of(schema: &'static Value, name: Option<&'static str>) -> Shape {
    match name {
        Some(QUANTITY) => return Shape::Quantity,
        Some(INT_OR_STRING) => return Shape::IntOrString,
        _ => {}
    }
    let flag = |k| schema.get(k).and_then(Value::as_bool).unwrap_or(false);
    if flag("x-kubernetes-preserve-unknown-fields") {
        return Shape::Any;
    }
    let format = schema.get("format").and_then(Value::as_str);
    if flag("x-kubernetes-int-or-string") || format == Some("int-or-string") {
        return Shape::IntOrString;
    }
    if schema.get("oneOf").is_some() || schema.get("anyOf").is_some() {
        return Shape::Any;
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    match schema.get("type").and_then(Value::as_str) {
        Some("string") => match format {
            Some("date-time") => Shape::Time,
            Some("byte") => Shape::Bytes,
            _ => Shape::String,
        },
        Some("integer") => match format {
            Some("int32") => Shape::Int(32),
            _ => Shape::Int(64),
        },
        Some("number") => Shape::Float,
        Some("boolean") => Shape::Bool,
        Some("array") => schema.get("items").map_or(Shape::Any, Shape::Array),
        Some("object") | None => {
            if let Some(props) = properties {
                Shape::Struct(name.unwrap_or(""), props)
            } else {
                match schema.get("additionalProperties") {
                    Some(value @ Value::Object(_)) => Shape::Map(value),
                    _ => Shape::Any,
                }
            }
        }
        Some(_) => Shape::Any,
    }
}

/// One step from the root to a value. Steps live on the call stack, so the
/// walk allocates nothing until it has a problem to describe.
struct Step<'a> {
    parent: Option<&'a Step<'a>>,
    kind: StepKind<'a>,
}

enum StepKind<'a> {
    /// A field of the struct whose definition is `owner`.
    Field {
        name: &'a str,
        owner: &'static str,
    },
    Index(usize),
    Key(&'a str),
}

/// Checks `value` against `shape` and appends what is wrong.
fn check_value(shape: Shape, value: &Value, at: Option<&Step<'_>>, out: &mut Vec<TypeProblem>) {
    // `null` decodes to the zero value (absent) whatever the Go type.
    if value.is_null() {
        return;
    }
    let ok = match shape {
        Shape::Any => true,
        Shape::IntOrString => value.is_string() || fits_int(value, 32),
        Shape::Quantity => {
            if !(value.is_string() || value.is_number()) {
                push(at, QUANTITY_FORMAT_ERROR.to_string(), true, out);
            }
            true
        }
        Shape::Time => value.is_string(),
        Shape::Bool => value.is_boolean(),
        Shape::Int(bits) => fits_int(value, bits),
        Shape::Float => value.is_number(),
        Shape::String => value.is_string(),
        // Go also fills a []byte from a JSON list of numbers.
        Shape::Bytes => value.is_string() || value.is_array(),
        Shape::Array(items) => match value {
            Value::Array(list) => {
                let item = shape_for(items);
                if !matches!(item, Shape::Any) {
                    for (i, v) in list.iter().enumerate() {
                        let step = Step {
                            parent: at,
                            kind: StepKind::Index(i),
                        };
                        check_value(item, v, Some(&step), out);
                    }
                }
                true
            }
            _ => false,
        },
        Shape::Map(values) => match value {
            Value::Object(map) => {
                let item = shape_for(values);
                if !matches!(item, Shape::Any) {
                    for (k, v) in map {
                        let step = Step {
                            parent: at,
                            kind: StepKind::Key(k),
                        };
                        check_value(item, v, Some(&step), out);
                    }
                }
                true
            }
            _ => false,
        },
        Shape::Struct(owner, properties) => match value {
            Value::Object(map) => {
                for (k, v) in map {
                    // Unknown fields are `field_problems`' business.
                    let Some(field) = properties.get(k) else {
                        continue;
                    };
                    let step = Step {
                        parent: at,
                        kind: StepKind::Field { name: k, owner },
                    };
                    check_value(shape_for(field), v, Some(&step), out);
                }
                true
            }
            _ => false,
        },
    };
    if !ok {
        // Go's UnmarshalTypeError: the JSON kind (numbers that do not fit an
        // integer are spelled out) and the Go type it could not go into.
        let numeric_target = matches!(shape, Shape::Int(_) | Shape::IntOrString);
        let what = match value {
            Value::Bool(_) => "bool".to_string(),
            Value::Number(n) if numeric_target => format!("number {n}"),
            Value::Number(_) => "number".to_string(),
            Value::String(_) => "string".to_string(),
            Value::Array(_) => "array".to_string(),
            Value::Object(_) | Value::Null => "object".to_string(),
        };
        let go = match shape {
            // IntOrString and Time decode the non-string case with a nested
            // json.Unmarshal into an int32 or a string.
            Shape::IntOrString => "int32".to_string(),
            Shape::Time => "string".to_string(),
            other => go_type(other),
        };
        let (owner, field) = go_context(at);
        let message = if owner.is_empty() && field.is_empty() {
            format!("json: cannot unmarshal {what} into Go value of type {go}")
        } else {
            format!(
                "json: cannot unmarshal {what} into Go struct field {owner}.{field} of type {go}"
            )
        };
        let stops = matches!(shape, Shape::IntOrString | Shape::Time);
        push(at, message, stops, out);
    }
}

/// An integer Go's `strconv.ParseInt` takes that fits in `bits`.
fn fits_int(value: &Value, bits: u32) -> bool {
    let Some(n) = value.as_i64() else {
        return false;
    };
    bits >= 64 || (n >= -(1i64 << (bits - 1)) && n < (1i64 << (bits - 1)))
}

fn push(at: Option<&Step<'_>>, message: String, stops_decoding: bool, out: &mut Vec<TypeProblem>) {
    out.push(TypeProblem {
        path: step_path(at),
        message,
        stops_decoding,
    });
}

/// The steps from the root down to `at`.
fn steps<'s, 'a>(mut at: Option<&'s Step<'a>>) -> Vec<&'s Step<'a>> {
    let mut all = Vec::new();
    while let Some(step) = at {
        all.push(step);
        at = step.parent;
    }
    all.reverse();
    all
}

/// `spec.template.spec.containers[0].ports[0].containerPort`, `metadata.labels[app]`.
fn step_path(at: Option<&Step<'_>>) -> String {
    let mut path = String::new();
    for step in steps(at) {
        match step.kind {
            StepKind::Field { name, .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
            }
            StepKind::Index(i) => path.push_str(&format!("[{i}]")),
            StepKind::Key(k) => path.push_str(&format!("[{k}]")),
        }
    }
    path
}

/// Go's error context: the innermost struct whose field is being decoded, by
/// its type name, and the JSON names of the fields from the root (list
/// indices and map keys are not part of it).
fn go_context(at: Option<&Step<'_>>) -> (&'static str, String) {
    let mut owner = "";
    let mut field = String::new();
    for step in steps(at) {
        if let StepKind::Field { name, owner: o } = step.kind {
            owner = short_name(o);
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(name);
        }
    }
    (owner, field)
}

/// `io.k8s.api.apps.v1.DeploymentSpec` → `DeploymentSpec`.
fn short_name(definition: &str) -> &str {
    definition.rsplit('.').next().unwrap_or(definition)
}

/// The Go type as `reflect.Type.String()` prints it: `int32`, `[]v1.Container`,
/// `map[string]string`, `v1.DeploymentStrategy`. Named string and integer
/// types (`v1.Protocol`) are not in the schema and print as their underlying
/// type.
fn go_type(shape: Shape) -> String {
    match shape {
        Shape::Any => "interface {}".to_string(),
        Shape::IntOrString => "intstr.IntOrString".to_string(),
        Shape::Quantity => "resource.Quantity".to_string(),
        Shape::Time => "v1.Time".to_string(),
        Shape::Bool => "bool".to_string(),
        Shape::Int(bits) => format!("int{bits}"),
        Shape::Float => "float64".to_string(),
        Shape::String => "string".to_string(),
        Shape::Bytes => "[]uint8".to_string(),
        Shape::Array(items) => format!("[]{}", go_type(shape_for(items))),
        Shape::Map(values) => match shape_for(values) {
            // Every quantity map in the built-in kinds is a v1.ResourceList.
            Shape::Quantity => "v1.ResourceList".to_string(),
            value => format!("map[string]{}", go_type(value)),
        },
        Shape::Struct(name, _) => {
            let mut segments = name.rsplit('.');
            let ty = segments.next().unwrap_or(name);
            match segments.next() {
                Some(package) => format!("{package}.{ty}"),
                None => ty.to_string(),
            }
        }
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

    /// (path, message) of each type problem of `obj`.
    fn types(gvk: (&str, &str, &str), obj: Value) -> Vec<(String, String)> {
        type_problems(gvk.0, gvk.1, gvk.2, &obj)
            .into_iter()
            .map(|p| (p.path, p.message))
            .collect()
    }

    fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
        want.iter()
            .map(|(p, m)| (p.to_string(), m.to_string()))
            .collect()
    }

    fn deployment() -> Value {
        serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": null},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx", "args": ["-g", "daemon off;"],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "100m", "memory": 1048576}, "requests": {"cpu": 0.5}}}],
                        "terminationGracePeriodSeconds": 30, "hostNetwork": false}}}})
    }

    #[test]
    fn well_typed_objects_have_no_type_problems() {
        assert_eq!(types(DEPLOYMENT, deployment()), []);
        // null means absent, for any type.
        let mut d = deployment();
        d["spec"]["replicas"] = Value::Null;
        d["spec"]["template"]["spec"]["containers"][0]["ports"] = Value::Null;
        d["metadata"]["labels"]["x"] = Value::Null;
        assert_eq!(types(DEPLOYMENT, d), []);
        // Free-form values take anything.
        let rev = serde_json::json!({"revision": 2, "data": "anything",
            "metadata": {"managedFields": [{"fieldsV1": [1, "x"]}]}});
        assert_eq!(types(("apps", "v1", "ControllerRevision"), rev), []);
        // No schema, no problems.
        let widget = serde_json::json!({"spec": {"replicas": "three"}});
        assert_eq!(types(("example.com", "v1", "Widget"), widget), []);
    }

    #[test]
    fn deployment_type_problems() {
        let mut d = deployment();
        d["spec"]["replicas"] = serde_json::json!("three");
        assert_eq!(
            types(DEPLOYMENT, d.clone()),
            pairs(&[(
                "spec.replicas",
                "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
            )])
        );
        let problems = type_problems("apps", "v1", "Deployment", &d);
        assert_eq!(
            decode_error("Deployment", "v1", &problems),
            "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        );

        let mut d = deployment();
        d["spec"]["replicas"] = serde_json::json!(3.5);
        d["spec"]["paused"] = serde_json::json!("yes");
        d["spec"]["progressDeadlineSeconds"] = serde_json::json!(3_000_000_000u64);
        d["spec"]["revisionHistoryLimit"] = serde_json::json!(3.0);
        d["spec"]["strategy"] = serde_json::json!("RollingUpdate");
        d["metadata"]["labels"] = serde_json::json!(["x"]);
        d["metadata"]["annotations"] = serde_json::json!({"a": 1});
        let spec = &mut d["spec"]["template"]["spec"];
        spec["containers"][0]["args"] = serde_json::json!([true]);
        spec["containers"][0]["ports"][0]["containerPort"] = serde_json::json!("80");
        spec["terminationGracePeriodSeconds"] = serde_json::json!("30");
        spec["initContainers"] = serde_json::json!({});
        let mut got = types(DEPLOYMENT, d);
        got.sort();
        let mut want = pairs(&[
            ("metadata.annotations[a]", "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.annotations of type string"),
            ("metadata.labels", "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
            ("spec.paused", "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool"),
            ("spec.progressDeadlineSeconds", "json: cannot unmarshal number 3000000000 into Go struct field DeploymentSpec.spec.progressDeadlineSeconds of type int32"),
            ("spec.replicas", "json: cannot unmarshal number 3.5 into Go struct field DeploymentSpec.spec.replicas of type int32"),
            ("spec.revisionHistoryLimit", "json: cannot unmarshal number 3.0 into Go struct field DeploymentSpec.spec.revisionHistoryLimit of type int32"),
            ("spec.strategy", "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.strategy of type v1.DeploymentStrategy"),
            ("spec.template.spec.containers[0].args[0]", "json: cannot unmarshal bool into Go struct field Container.spec.template.spec.containers.args of type string"),
            ("spec.template.spec.containers[0].ports[0].containerPort", "json: cannot unmarshal string into Go struct field ContainerPort.spec.template.spec.containers.ports.containerPort of type int32"),
            ("spec.template.spec.initContainers", "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.initContainers of type []v1.Container"),
            ("spec.template.spec.terminationGracePeriodSeconds", "json: cannot unmarshal string into Go struct field PodSpec.spec.template.spec.terminationGracePeriodSeconds of type int64"),
        ]);
        want.sort();
        assert_eq!(got, want);

        let mut d = deployment();
        d["spec"]["template"]["spec"]["containers"] = serde_json::json!({});
        assert_eq!(
            types(DEPLOYMENT, d),
            pairs(&[(
                "spec.template.spec.containers",
                "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container"
            )])
        );
        let mut d = deployment();
        d["spec"] = serde_json::json!([]);
        assert_eq!(
            types(DEPLOYMENT, d),
            pairs(&[(
                "spec",
                "json: cannot unmarshal array into Go struct field Deployment.spec of type v1.DeploymentSpec"
            )])
        );
    }

    #[test]
    fn int_or_string_fields() {
        let svc = |target: Value, port: Value| {
            serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": port, "targetPort": target, "nodePort": null}]}})
        };
        let service = ("", "v1", "Service");
        for target in [serde_json::json!(8080), serde_json::json!("http")] {
            assert_eq!(types(service, svc(target, serde_json::json!(80))), []);
        }
        assert_eq!(
            types(service, svc(serde_json::json!(8080), serde_json::json!("80"))),
            pairs(&[(
                "spec.ports[0].port",
                "json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32"
            )])
        );
        assert_eq!(
            types(service, svc(serde_json::json!(true), serde_json::json!(80))),
            pairs(&[(
                "spec.ports[0].targetPort",
                "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32"
            )])
        );
        assert_eq!(
            types(service, svc(serde_json::json!(80.5), serde_json::json!(80))),
            pairs(&[(
                "spec.ports[0].targetPort",
                "json: cannot unmarshal number 80.5 into Go struct field ServicePort.spec.ports.targetPort of type int32"
            )])
        );
        // Int-or-string in a Deployment strategy, too.
        let mut d = deployment();
        d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = serde_json::json!({"a": 1});
        assert_eq!(
            types(DEPLOYMENT, d),
            pairs(&[(
                "spec.strategy.rollingUpdate.maxSurge",
                "json: cannot unmarshal object into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type int32"
            )])
        );
    }

    #[test]
    fn quantities_take_strings_and_numbers() {
        let pod = |limits: Value| {
            serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": limits}}],
                    "overhead": {"cpu": 1}}})
        };
        let kind = ("", "v1", "Pod");
        assert_eq!(
            types(
                kind,
                pod(serde_json::json!({"cpu": "250m", "memory": 64e6, "x/y": 2}))
            ),
            []
        );
        let problems = type_problems("", "v1", "Pod", &pod(serde_json::json!({"cpu": true})));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "spec.containers[0].resources.limits[cpu]");
        assert_eq!(problems[0].message, QUANTITY_FORMAT_ERROR);
        assert!(problems[0].stops_decoding);
        assert_eq!(
            types(kind, pod(serde_json::json!(["1"]))),
            pairs(&[(
                "spec.containers[0].resources.limits",
                "json: cannot unmarshal array into Go struct field ResourceRequirements.spec.containers.resources.limits of type v1.ResourceList"
            )])
        );
    }

    #[test]
    fn config_map_data_is_a_map_of_strings() {
        let cm = |data: Value| serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data});
        assert_eq!(
            types(CONFIG_MAP, cm(serde_json::json!({"a": "1", "b": ""}))),
            []
        );
        assert_eq!(
            types(CONFIG_MAP, cm(serde_json::json!({"a": 1, "b": "2", "c": {"d": "e"}}))),
            pairs(&[
                ("data[a]", "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"),
                ("data[c]", "json: cannot unmarshal object into Go struct field ConfigMap.data of type string"),
            ])
        );
        assert_eq!(
            types(CONFIG_MAP, cm(serde_json::json!("a=b"))),
            pairs(&[(
                "data",
                "json: cannot unmarshal string into Go struct field ConfigMap.data of type map[string]string"
            )])
        );
        // Times are strings; their own decoder stops at the first bad one.
        let mut bad_time = cm(serde_json::json!({}));
        bad_time["metadata"]["creationTimestamp"] = serde_json::json!(12);
        bad_time["immutable"] = serde_json::json!("no");
        let problems = type_problems("", "v1", "ConfigMap", &bad_time);
        assert_eq!(problems.len(), 2);
        assert_eq!(
            decode_error("ConfigMap", "v1", &problems),
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp of type string"
        );
    }
}
