//! Small helpers shared by the validation modules: field paths, JSON access,
//! and Go-style rendering of bad values in messages.

use super::{Errs, FieldError};
use serde_json::{Map, Value};

/// `parent.name` (or `name` at the root).
pub(crate) fn ch(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// `parent[i]`.
pub(crate) fn ix(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// `parent[key]`, as `field.Path.Key`.
pub(crate) fn ky(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

/// A member that is present and not null.
pub(crate) fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// A string member, `""` when absent (as a Go zero value).
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An optional string member.
pub(crate) fn opt_s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An integer member.
pub(crate) fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// A boolean member, `false` when absent.
pub(crate) fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// An array member, empty when absent.
pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// An object member.
pub(crate) fn obj<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// Iterate a `map[string]string` member; non-string values are shown as JSON.
pub(crate) fn str_map(v: &Value, key: &str) -> Vec<(String, String)> {
    obj(v, key)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let val = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), val)
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) const EMPTY: Value = Value::Null;

/// The object at `key`, or `null` (which reads as empty everywhere).
pub(crate) fn sub<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&EMPTY)
}

pub(crate) const NEGATIVE_MSG: &str = "must be greater than or equal to 0";
pub(crate) const IMMUTABLE_MSG: &str = "field is immutable";

/// `ValidateNonnegativeField` on an optional integer member.
pub(crate) fn nonneg(v: &Value, key: &str, path: &str, errs: &mut Errs) {
    if let Some(n) = int(v, key) {
        if n < 0 {
            errs.push(FieldError::invalid(ch(path, key), n, NEGATIVE_MSG));
        }
    }
}

/// `ValidateImmutableField` on one member of two objects.
pub(crate) fn immutable(new: &Value, old: &Value, key: &str, path: &str, errs: &mut Errs) {
    let n = new.get(key).unwrap_or(&Value::Null);
    let o = old.get(key).unwrap_or(&Value::Null);
    if !semantic_eq(n, o) {
        errs.push(FieldError::invalid(ch(path, key), n.clone(), IMMUTABLE_MSG));
    }
}

/// Equality that treats absent, null, empty string/array/object and `false`/0
/// members alike, as Go's zero values compare after decoding.
pub(crate) fn semantic_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().all(|k| {
                semantic_eq(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| semantic_eq(p, q))
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ if is_zero(a) && is_zero(b) => true,
        _ => a == b,
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(_) => false,
    }
}

/// Go's `%q` for a string.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Render a bad value the way `field.Error.ErrorBody` prints Go values:
/// strings quoted, numbers and booleans bare, string maps and slices as Go
/// literals, label selectors as `v1.LabelSelector{...}`, other objects as JSON.
pub(crate) fn go_format(v: &Value) -> String {
    match v {
        Value::Null => "\"null\"".to_string(),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            format!("[]string{{{}}}", go_string_items(items))
        }
        Value::Object(m) if m.values().all(Value::is_string) && !m.is_empty() => {
            go_string_map(Some(m))
        }
        Value::Object(m) if is_selector(m) => go_selector(m),
        other => other.to_string(),
    }
}

fn go_string_items(items: &[Value]) -> String {
    items
        .iter()
        .map(|i| go_quote(i.as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn go_string_map(m: Option<&Map<String, Value>>) -> String {
    match m {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v.as_str().unwrap_or(""))))
                .collect::<Vec<_>>()
                .join(", ");
            format!("map[string]string{{{body}}}")
        }
    }
}

fn is_selector(m: &Map<String, Value>) -> bool {
    !m.is_empty()
        && m.keys()
            .all(|k| k == "matchLabels" || k == "matchExpressions")
        && m.get("matchLabels")
            .is_none_or(|v| v.is_object() || v.is_null())
        && m.get("matchExpressions")
            .is_none_or(|v| v.is_array() || v.is_null())
}

fn go_selector(m: &Map<String, Value>) -> String {
    let labels = go_string_map(m.get("matchLabels").and_then(Value::as_object));
    let exprs = match m.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(list) => {
            let items = list
                .iter()
                .map(|r| {
                    let values = match r.get("values").and_then(Value::as_array) {
                        None => "[]string(nil)".to_string(),
                        Some(vs) => format!("[]string{{{}}}", go_string_items(vs)),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(s(r, "key")),
                        go_quote(s(r, "operator")),
                        values
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("[]v1.LabelSelectorRequirement{{{items}}}")
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

/// An int-or-string member (`intstr.IntOrString`).
pub(crate) enum IntOrString<'a> {
    Int(i64),
    Str(&'a str),
}

pub(crate) fn int_or_string<'a>(v: &'a Value, key: &str) -> Option<IntOrString<'a>> {
    match v.get(key)? {
        Value::Number(n) => Some(IntOrString::Int(n.as_i64().unwrap_or(i64::MAX))),
        Value::String(s) => Some(IntOrString::Str(s)),
        _ => None,
    }
}
