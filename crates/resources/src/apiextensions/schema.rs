//! A custom object against its version's structural `openAPIV3Schema`:
//! [`validate`] (errors worded as kube-apiserver's OpenAPI validator words
//! them), [`prune`] (unknown fields dropped and reported) and [`default`]
//! (`default` values filled in).
//!
//! Paths are dotted with list indices in brackets (`spec.items[0].name`).
//! The root's `apiVersion`, `kind` and `metadata` are the API server's
//! business: they are never pruned here and `metadata` is not checked
//! against the schema.

use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};

use crate::validation::{ErrorType, FieldError};

use super::cel;

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

fn flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool) == Some(true)
}

fn props(s: &Value) -> Option<&Map<String, Value>> {
    s.get("properties").and_then(Value::as_object)
}

/// `additionalProperties` as a schema (`true` means any value).
fn additional(s: &Value) -> Option<&Value> {
    match s.get("additionalProperties") {
        Some(Value::Bool(true)) => Some(&Value::Null),
        Some(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// The JSON type name of a value, as the validator reports it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "number" => v.is_number(),
        "integer" => type_name(v) == "integer",
        other => type_name(v) == other,
    }
}

/// Go's `%v` of a number (`10`, `1.5`).
fn number_text(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => v.to_string(),
    }
}

fn invalid(path: &str, value: Value, detail: String) -> FieldError {
    FieldError::new(ErrorType::Invalid, path, Some(value), detail)
}

/// Every violation of `schema` by `obj` (a whole custom object). `old` is
/// the object before an update, for CEL transition rules.
pub fn validate(schema: &Value, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(o) = obj.as_object() else {
        return errs;
    };
    // The root is an object; its metadata is validated as any object's.
    let mut body = o.clone();
    body.remove("metadata");
    let body = Value::Object(body);
    node(schema, &body, "", &mut errs);
    if errs.is_empty() {
        cel::validate(schema, obj, old, &mut errs);
    }
    errs
}

fn node(s: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let name = if path.is_empty() { "." } else { path };
    if v.is_null() {
        if flag(s, "nullable") {
            return;
        }
        if let Some(t) = s
            .get("type")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            errs.push(FieldError::new(
                ErrorType::TypeInvalid,
                path,
                Some(Value::String("null".into())),
                format!("{name} in body must be of type {t}: \"null\""),
            ));
        }
        return;
    }
    if flag(s, "x-kubernetes-int-or-string") {
        if !(v.is_string() || type_name(v) == "integer") {
            errs.push(FieldError::new(
                ErrorType::TypeInvalid,
                path,
                Some(Value::String(type_name(v).into())),
                format!(
                    "{name} in body must be of type integer,string: \"{}\"",
                    type_name(v)
                ),
            ));
            return;
        }
    } else if let Some(t) = s
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        if !has_type(v, t) {
            errs.push(FieldError::new(
                ErrorType::TypeInvalid,
                path,
                Some(Value::String(type_name(v).into())),
                format!("{name} in body must be of type {t}: \"{}\"", type_name(v)),
            ));
            return;
        }
    }
    if let Some(choices) = s.get("enum").and_then(Value::as_array) {
        if !choices.is_empty() && !choices.contains(v) {
            let values: Vec<String> = choices
                .iter()
                .map(|c| match c {
                    Value::String(s) => crate::validation::util_quote(s),
                    other => crate::validation::util_quote(&other.to_string()),
                })
                .collect();
            errs.push(FieldError::new(
                ErrorType::NotSupported,
                path,
                Some(v.clone()),
                format!("supported values: {}", values.join(", ")),
            ));
        }
    }
    match v {
        Value::Number(_) => number(s, v, path, name, errs),
        Value::String(text) => string(s, text, path, name, errs),
        Value::Array(items) => array(s, items, path, name, errs),
        Value::Object(map) => object(s, map, path, name, errs),
        _ => {}
    }
}

fn number(s: &Value, v: &Value, path: &str, name: &str, errs: &mut Vec<FieldError>) {
    let x = v.as_f64().unwrap_or_default();
    if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
        if flag(s, "exclusiveMaximum") && x >= max {
            let m = number_text(&s["maximum"]);
            errs.push(invalid(
                path,
                v.clone(),
                format!("{name} in body should be less than {m}"),
            ));
        } else if x > max {
            let m = number_text(&s["maximum"]);
            errs.push(invalid(
                path,
                v.clone(),
                format!("{name} in body should be less than or equal to {m}"),
            ));
        }
    }
    if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
        if flag(s, "exclusiveMinimum") && x <= min {
            let m = number_text(&s["minimum"]);
            errs.push(invalid(
                path,
                v.clone(),
                format!("{name} in body should be greater than {m}"),
            ));
        } else if x < min {
            let m = number_text(&s["minimum"]);
            errs.push(invalid(
                path,
                v.clone(),
                format!("{name} in body should be greater than or equal to {m}"),
            ));
        }
    }
    if let Some(factor) = s.get("multipleOf").and_then(Value::as_f64) {
        if factor > 0.0 && (x / factor).fract().abs() > 1e-9 {
            let m = number_text(&s["multipleOf"]);
            errs.push(invalid(
                path,
                v.clone(),
                format!("{name} in body should be a multiple of {m}"),
            ));
        }
    }
}

/// Compiled `pattern`s, kept across requests.
fn pattern_matches(pattern: &str, text: &str) -> Option<bool> {
    static CACHE: OnceLock<Mutex<std::collections::HashMap<String, Option<regex::Regex>>>> =
        OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if cache.len() > 1024 {
        cache.clear();
    }
    let re = cache
        .entry(pattern.to_string())
        .or_insert_with(|| regex::Regex::new(pattern).ok());
    re.as_ref().map(|re| re.is_match(text))
}

/// Whether `pattern` compiles (CRD validation).
pub fn pattern_compiles(pattern: &str) -> bool {
    pattern_matches(pattern, "").is_some()
}

fn string(s: &Value, text: &str, path: &str, name: &str, errs: &mut Vec<FieldError>) {
    let len = text.chars().count() as u64;
    let v = || Value::String(text.to_string());
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
        if len > max {
            errs.push(FieldError::new(
                ErrorType::TooLong,
                path,
                Some(v()),
                format!("may not be more than {max} bytes"),
            ));
        }
    }
    if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
        if len < min {
            errs.push(invalid(
                path,
                v(),
                format!("{name} in body should be at least {min} chars long"),
            ));
        }
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str) {
        if pattern_matches(p, text) == Some(false) {
            errs.push(invalid(
                path,
                v(),
                format!("{name} in body should match '{p}'"),
            ));
        }
    }
    if let Some(f) = s.get("format").and_then(Value::as_str) {
        if !format_ok(f, text) {
            errs.push(FieldError::new(
                ErrorType::TypeInvalid,
                path,
                Some(v()),
                format!(
                    "{name} in body must be of type {f}: {}",
                    crate::validation::util_quote(text)
                ),
            ));
        }
    }
}

/// The formats simple enough to check here; others pass.
fn format_ok(format: &str, text: &str) -> bool {
    match format {
        "date-time" | "datetime" => text.parse::<jiff::Timestamp>().is_ok(),
        "date" => text.parse::<jiff::civil::Date>().is_ok(),
        "int32" => text.parse::<i32>().is_ok(),
        "int64" => text.parse::<i64>().is_ok(),
        "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
        "uuid" => {
            let hex: String = text.chars().filter(|c| *c != '-').collect();
            text.len() == 36 && hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
        }
        _ => true,
    }
}

/// The `max*`/`min*` bounds on how many entries a list or object has
/// (upstream says "items" in the too-many message for both).
fn count(
    s: &Value,
    (max_key, min_key, noun): (&str, &str, &str),
    len: usize,
    path: &str,
    name: &str,
    errs: &mut Vec<FieldError>,
) {
    let n = len as u64;
    if let Some(max) = s.get(max_key).and_then(Value::as_u64) {
        if n > max {
            errs.push(FieldError::new(
                ErrorType::TooMany,
                path,
                Some(Value::from(n)),
                format!("must have at most {max} items"),
            ));
        }
    }
    if let Some(min) = s.get(min_key).and_then(Value::as_u64) {
        if n < min {
            errs.push(invalid(
                path,
                Value::from(n),
                format!("{name} in body should have at least {min} {noun}"),
            ));
        }
    }
}

fn array(s: &Value, items: &[Value], path: &str, name: &str, errs: &mut Vec<FieldError>) {
    count(
        s,
        ("maxItems", "minItems", "items"),
        items.len(),
        path,
        name,
        errs,
    );
    let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
    if flag(s, "uniqueItems") || list_type == Some("set") {
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                errs.push(FieldError::new(
                    ErrorType::Duplicate,
                    index(path, i),
                    Some(item.clone()),
                    "",
                ));
            }
        }
    }
    if list_type == Some("map") {
        let keys: Vec<&str> = s
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
            .map(|k| k.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let key_of = |item: &Value| -> Map<String, Value> {
            keys.iter()
                .filter_map(|k| item.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect()
        };
        let seen: Vec<Map<String, Value>> = items.iter().map(key_of).collect();
        for i in 0..seen.len() {
            if seen[..i].contains(&seen[i]) {
                errs.push(FieldError::new(
                    ErrorType::Duplicate,
                    index(path, i),
                    Some(Value::Object(seen[i].clone())),
                    "",
                ));
            }
        }
    }
    if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
        for (i, item) in items.iter().enumerate() {
            node(item_schema, item, &index(path, i), errs);
        }
    }
}

fn object(s: &Value, map: &Map<String, Value>, path: &str, name: &str, errs: &mut Vec<FieldError>) {
    count(
        s,
        ("maxProperties", "minProperties", "properties"),
        map.len(),
        path,
        name,
        errs,
    );
    if let Some(required) = s.get("required").and_then(Value::as_array) {
        for r in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                errs.push(FieldError::new(
                    ErrorType::Required,
                    child(path, r),
                    None,
                    "",
                ));
            }
        }
    }
    let properties = props(s);
    let extra = additional(s);
    for (k, v) in map {
        let p = child(path, k);
        match properties.and_then(|p| p.get(k)) {
            Some(ps) => node(ps, v, &p, errs),
            None => {
                if let Some(a) = extra.filter(|a| a.is_object()) {
                    node(a, v, &p, errs);
                }
            }
        }
    }
    if flag(s, "x-kubernetes-embedded-resource") {
        for field in ["apiVersion", "kind"] {
            if map
                .get(field)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                errs.push(FieldError::new(
                    ErrorType::Required,
                    child(path, field),
                    None,
                    "must not be empty",
                ));
            }
        }
    }
}

/// Top-level fields of `ObjectMeta`: what survives pruning in `metadata`.
const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Drops the fields `schema` does not specify (unless it preserves unknown
/// fields there) and returns their paths, in document order.
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let mut dropped = Vec::new();
    let Some(map) = obj.as_object_mut() else {
        return dropped;
    };
    prune_metadata(map, "", &mut dropped);
    prune_object(schema, map, "", true, &mut dropped);
    dropped
}

fn prune_metadata(map: &mut Map<String, Value>, path: &str, dropped: &mut Vec<String>) {
    if let Some(Value::Object(meta)) = map.get_mut("metadata") {
        let p = child(path, "metadata");
        meta.retain(|k, _| {
            let keep = OBJECT_META_FIELDS.contains(&k.as_str());
            if !keep {
                dropped.push(child(&p, k));
            }
            keep
        });
    }
}

fn prune_object(
    s: &Value,
    map: &mut Map<String, Value>,
    path: &str,
    root: bool,
    dropped: &mut Vec<String>,
) {
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    let embedded = root || flag(s, "x-kubernetes-embedded-resource");
    if embedded && !root {
        prune_metadata(map, path, dropped);
    }
    let properties = props(s);
    let extra = additional(s);
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        let p = child(path, &k);
        if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            // metadata was handled above; apiVersion/kind are the object's own.
            if k != "metadata" {
                if let (Some(ps), Some(v)) = (properties.and_then(|m| m.get(&k)), map.get_mut(&k)) {
                    prune_value(ps, v, &p, dropped);
                }
            }
            continue;
        }
        match properties.and_then(|m| m.get(&k)) {
            Some(ps) => {
                if let Some(v) = map.get_mut(&k) {
                    prune_value(ps, v, &p, dropped);
                }
            }
            None => match extra {
                Some(a) => {
                    if a.is_object() {
                        if let Some(v) = map.get_mut(&k) {
                            prune_value(a, v, &p, dropped);
                        }
                    }
                }
                None if preserve => {}
                None => {
                    map.remove(&k);
                    dropped.push(p);
                }
            },
        }
    }
}

fn prune_value(s: &Value, v: &mut Value, path: &str, dropped: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if flag(s, "x-kubernetes-int-or-string") {
                return;
            }
            let structural = props(s).is_some()
                || s.get("additionalProperties").is_some()
                || flag(s, "x-kubernetes-embedded-resource");
            if structural || !flag(s, "x-kubernetes-preserve-unknown-fields") {
                prune_object(s, map, path, false, dropped);
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_value(item_schema, item, &index(path, i), dropped);
                }
            }
        }
        _ => {}
    }
}

/// Fills in `default`s of absent fields (and of nulls where null is not
/// allowed), depth first, in objects, list items and map values.
pub fn default(schema: &Value, obj: &mut Value) {
    default_value(schema, obj);
}

fn default_value(s: &Value, v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(properties) = props(s) {
                for (k, ps) in properties {
                    let Some(d) = ps.get("default") else {
                        continue;
                    };
                    match map.get(k) {
                        None => {
                            map.insert(k.clone(), d.clone());
                        }
                        Some(Value::Null) if !flag(ps, "nullable") => {
                            map.insert(k.clone(), d.clone());
                        }
                        _ => {}
                    }
                }
                for (k, child) in map.iter_mut() {
                    if let Some(ps) = properties.get(k) {
                        default_value(ps, child);
                    }
                }
            } else if let Some(a) = additional(s).filter(|a| a.is_object()) {
                for child in map.values_mut() {
                    default_value(a, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for item in items {
                    default_value(item_schema, item);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z]+$"},
                        "replicas": {"type": "integer", "default": 1, "minimum": 0},
                        "size": {"type": "integer", "maximum": 10},
                        "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1},
                        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                        "port": {"x-kubernetes-int-or-string": true},
                        "tags": {"type": "array", "maxItems": 2, "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                  "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer", "default": 80}}}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "note": {"type": "string", "nullable": true},
                    },
                },
                "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
            },
        })
    }

    fn messages(obj: Value) -> Vec<String> {
        validate(&schema(), &obj, None)
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn violations_are_worded_as_upstream() {
        let got = messages(json!({"spec": {
            "name": "x", "replicas": "string", "size": 11, "color": "pink",
            "ratio": 1, "port": 1.5, "tags": ["a", "b", "a"], "note": null,
        }}));
        let want = [
            "spec.color: Unsupported value: \"pink\": supported values: \"red\", \"blue\"",
            "spec.name: Invalid value: \"x\": spec.name in body should be at least 2 chars long",
            "spec.port: Invalid value: \"number\": spec.port in body must be of type integer,string: \"number\"",
            "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1",
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
            "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
            "spec.tags: Too many: 3: must have at most 2 items",
            "spec.tags[2]: Duplicate value: \"a\"",
        ];
        for w in want {
            assert!(got.iter().any(|g| g == w), "missing {w:?} in {got:#?}");
        }
        assert_eq!(got.len(), want.len(), "{got:#?}");
        assert_eq!(messages(json!({"spec": {}})), ["spec.name: Required value"]);
        assert_eq!(
            messages(json!({"spec": {"name": "ABC"}})),
            ["spec.name: Invalid value: \"ABC\": spec.name in body should match '^[a-z]+$'"]
        );
        assert_eq!(
            messages(json!({"spec": {"name": "abcdefghij"}})),
            ["spec.name: Too long: may not be more than 8 bytes"]
        );
        assert_eq!(
            messages(json!({"spec": {"name": "ab", "ports": [{"name": "a"}, {"name": "a"}]}})),
            ["spec.ports[1]: Duplicate value: map[string]string{\"name\":\"a\"}"]
        );
        assert!(messages(
            json!({"spec": {"name": "ab", "port": "http", "labels": {"a": "b"}, "free": {"x": 1}}})
        )
        .is_empty());
        assert_eq!(
            messages(json!({"spec": {"name": "ab", "labels": {"a": 1}}})),
            ["spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\""]
        );
    }

    #[test]
    fn unknown_fields_are_pruned_where_not_preserved() {
        let mut obj = json!({
            "apiVersion": "x/v1", "kind": "K",
            "metadata": {"name": "a", "bogus": 1},
            "spec": {"name": "ab", "foo": 1, "free": {"any": {"thing": 1}}, "ports": [{"name": "a", "extra": true}], "labels": {"k": "v"}},
            "top": 1,
        });
        let dropped = prune(&schema(), &mut obj);
        assert_eq!(
            dropped,
            ["metadata.bogus", "spec.foo", "spec.ports[0].extra", "top"]
        );
        assert_eq!(obj["spec"]["free"]["any"]["thing"], 1);
        assert_eq!(obj["spec"]["labels"]["k"], "v");
        assert!(obj.get("top").is_none());
    }

    #[test]
    fn defaults_fill_absent_fields_recursively() {
        let mut obj = json!({"spec": {"name": "ab", "ports": [{"name": "a"}], "color": null}});
        default(&schema(), &mut obj);
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["spec"]["color"], "red");
        assert_eq!(obj["spec"]["ports"][0]["port"], 80);
        assert!(obj.get("status").is_none());
    }
}
