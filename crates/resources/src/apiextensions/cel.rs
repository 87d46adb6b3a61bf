//! `x-kubernetes-validations`: CEL rules on schema nodes, evaluated with the
//! `cel-interpreter` crate. `self` is the node's value; a rule that mentions
//! `oldSelf` is a transition rule, evaluated only on update where the old
//! object has the node too. A false rule reports
//! `<path>: Invalid value: "<type>": <message>` (the message, the value of
//! `messageExpression`, or `failed rule: <rule>`), as upstream.

use std::collections::HashMap;
use std::sync::Arc;

use cel_interpreter::objects::Key;
use cel_interpreter::{Context, Program, Value as Cel};
use serde_json::Value;

use crate::validation::{ErrorType, FieldError};

/// Checks that a rule parses.
pub fn compile(rule: &str) -> Result<(), String> {
    Program::compile(rule)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn to_cel(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cel::Int(i),
            None => Cel::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(a) => Cel::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: HashMap<Key, Cel> = m
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            Cel::from(map)
        }
    }
}

fn schema_type(s: &Value, v: &Value) -> String {
    match s.get("type").and_then(Value::as_str) {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => match v {
            Value::Object(_) => "object".into(),
            Value::Array(_) => "array".into(),
            Value::String(_) => "string".into(),
            Value::Number(_) => "number".into(),
            Value::Bool(_) => "boolean".into(),
            Value::Null => "null".into(),
        },
    }
}

/// Evaluates the rules of `schema` against `obj` (and `old` on update).
pub fn validate(schema: &Value, obj: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    node(schema, obj, old, "", errs);
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn node(s: &Value, v: &Value, old: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(rules) = s.get("x-kubernetes-validations").and_then(Value::as_array) {
        for rule in rules {
            check_rule(s, rule, v, old, path, errs);
        }
    }
    match v {
        Value::Object(map) => {
            let props = s.get("properties").and_then(Value::as_object);
            let extra = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, child_v) in map {
                let Some(cs) = props.and_then(|p| p.get(k)).or(extra) else {
                    continue;
                };
                let child_old = old.and_then(|o| o.get(k));
                node(cs, child_v, child_old, &child(path, k), errs);
            }
        }
        Value::Array(items) => {
            if let Some(is) = s.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    node(is, item, None, &format!("{path}[{i}]"), errs);
                }
            }
        }
        _ => {}
    }
}

fn check_rule(
    s: &Value,
    rule: &Value,
    v: &Value,
    old: Option<&Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let Some(text) = rule.get("rule").and_then(Value::as_str) else {
        return;
    };
    let transition = text.contains("oldSelf");
    if transition && old.is_none() {
        return;
    }
    let path = match rule.get("fieldPath").and_then(Value::as_str) {
        Some(fp) if !fp.is_empty() => format!("{path}{fp}"),
        _ => path.to_string(),
    };
    let path = path.trim_start_matches('.').to_string();
    let error_type = match rule.get("reason").and_then(Value::as_str) {
        Some("FieldValueForbidden") => ErrorType::Forbidden,
        Some("FieldValueRequired") => ErrorType::Required,
        Some("FieldValueDuplicate") => ErrorType::Duplicate,
        _ => ErrorType::Invalid,
    };
    let bad = |detail: String| {
        let value = match error_type {
            ErrorType::Invalid | ErrorType::Duplicate => Some(Value::String(schema_type(s, v))),
            _ => None,
        };
        FieldError::new(error_type, path.clone(), value, detail)
    };
    let program = match Program::compile(text) {
        Ok(p) => p,
        Err(e) => {
            errs.push(bad(format!("rule compile error: {e}")));
            return;
        }
    };
    let mut ctx = Context::default();
    ctx.add_variable_from_value("self", to_cel(v));
    if let Some(o) = old {
        ctx.add_variable_from_value("oldSelf", to_cel(o));
    }
    match program.execute(&ctx) {
        Ok(Cel::Bool(true)) => {}
        Ok(Cel::Bool(false)) => {
            let message = rule
                .get("messageExpression")
                .and_then(Value::as_str)
                .and_then(|m| Program::compile(m).ok())
                .and_then(|p| match p.execute(&ctx) {
                    Ok(Cel::String(s)) if !s.is_empty() => Some(s.to_string()),
                    _ => None,
                })
                .or_else(|| {
                    rule.get("message")
                        .and_then(Value::as_str)
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| format!("failed rule: {text}"));
            errs.push(bad(message));
        }
        Ok(other) => errs.push(bad(format!(
            "rule did not evaluate to a boolean: {other:?}"
        ))),
        Err(e) => errs.push(bad(format!("{text}: {e}"))),
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
                "spec": {
                    "type": "object",
                    "x-kubernetes-validations": [
                        {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas"},
                        {"rule": "self.maxReplicas <= 100", "messageExpression": "'maxReplicas is ' + string(self.maxReplicas)"},
                        {"rule": "self.maxReplicas >= oldSelf.maxReplicas"},
                    ],
                    "properties": {
                        "minReplicas": {"type": "integer"},
                        "maxReplicas": {"type": "integer"},
                        "name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.startsWith('a')", "fieldPath": ""}]},
                    },
                },
            },
        })
    }

    fn run(obj: Value, old: Option<Value>) -> Vec<String> {
        let mut errs = Vec::new();
        validate(&schema(), &obj, old.as_ref(), &mut errs);
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn rules() {
        assert!(compile("self.a > 1").is_ok());
        assert!(compile("self.a >").is_err(), "incomplete");
        assert!(run(
            json!({"spec": {"minReplicas": 1, "maxReplicas": 2, "name": "ab"}}),
            None
        )
        .is_empty());
        assert_eq!(
            run(json!({"spec": {"minReplicas": 3, "maxReplicas": 2}}), None),
            ["spec: Invalid value: \"object\": minReplicas must not exceed maxReplicas"]
        );
        assert_eq!(
            run(
                json!({"spec": {"minReplicas": 3, "maxReplicas": 200}}),
                None
            ),
            ["spec: Invalid value: \"object\": maxReplicas is 200"]
        );
        assert_eq!(
            run(
                json!({"spec": {"minReplicas": 1, "maxReplicas": 2, "name": "b"}}),
                None
            ),
            ["spec.name: Invalid value: \"string\": failed rule: self.startsWith('a')"]
        );
        // Transition rules only on update.
        assert_eq!(
            run(
                json!({"spec": {"minReplicas": 1, "maxReplicas": 2}}),
                Some(json!({"spec": {"minReplicas": 1, "maxReplicas": 5}}))
            ),
            ["spec: Invalid value: \"object\": failed rule: self.maxReplicas >= oldSelf.maxReplicas"]
        );
    }
}
