//! `additionalPrinterColumns` as `meta.k8s.io/v1 Table` columns and cells,
//! as kube-apiserver's custom resource table convertor builds them: Name
//! first, then the CRD's columns (or Age alone when it names none).

use jiff::Timestamp;
use serde_json::{json, Value};

use super::{jsonpath, CustomResource, PrinterColumn};

fn age_column() -> PrinterColumn {
    PrinterColumn {
        name: "Age".into(),
        type_: "date".into(),
        format: String::new(),
        description: "Time since the object was created (metadata.creationTimestamp).".into(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }
}

fn effective(cr: &CustomResource) -> Vec<PrinterColumn> {
    if cr.columns.is_empty() {
        vec![age_column()]
    } else {
        cr.columns.clone()
    }
}

/// `columnDefinitions` of the Table.
pub fn definitions(cr: &CustomResource) -> Value {
    let mut cols = vec![json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "Name of the object, unique within its namespace (or cluster, for cluster-scoped kinds).",
        "priority": 0,
    })];
    for c in effective(cr) {
        cols.push(json!({
            "name": c.name,
            "type": c.type_,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        }));
    }
    Value::Array(cols)
}

/// One row's cells: the name, then each column's value (null when the path
/// finds nothing or the value does not fit the column's type).
pub fn cells(cr: &CustomResource, obj: &Value, now: Timestamp) -> Vec<Value> {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut out = vec![Value::String(name.to_string())];
    for c in effective(cr) {
        let found = jsonpath::find(&c.json_path, obj).ok();
        let value = found.as_ref().and_then(|f| f.first().copied());
        out.push(match value {
            None => Value::Null,
            Some(v) => cell(&c.type_, v, now),
        });
    }
    out
}

fn cell(type_: &str, v: &Value, now: Timestamp) -> Value {
    match type_ {
        "string" => match v {
            Value::String(s) => Value::String(s.clone()),
            Value::Null => Value::Null,
            other => Value::String(other.to_string()),
        },
        "integer" => match v {
            Value::Number(n) if n.is_i64() || n.is_u64() => v.clone(),
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 => json!(f as i64),
                _ => Value::Null,
            },
            _ => Value::Null,
        },
        "number" => match v {
            Value::Number(_) => v.clone(),
            _ => Value::Null,
        },
        "boolean" => match v {
            Value::Bool(_) => v.clone(),
            _ => Value::Null,
        },
        "date" => match v.as_str().and_then(|s| s.parse::<Timestamp>().ok()) {
            Some(t) => {
                let d = now.duration_since(t);
                match std::time::Duration::try_from(d) {
                    Ok(d) => Value::String(crate::printers::human_duration(d)),
                    Err(_) if d.as_secs() >= -1 => Value::String("0s".into()),
                    Err(_) => Value::String("<invalid>".into()),
                }
            }
            None => Value::Null,
        },
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(columns: Vec<PrinterColumn>) -> CustomResource {
        CustomResource {
            crd_name: "x.example.com".into(),
            storage_version: "v1".into(),
            schema: None,
            columns,
            scale: None,
            status: false,
        }
    }

    fn column(name: &str, type_: &str, path: &str, priority: i64) -> PrinterColumn {
        PrinterColumn {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            description: String::new(),
            priority,
            json_path: path.into(),
        }
    }

    #[test]
    fn cells_follow_column_types() {
        let now: Timestamp = "2025-01-10T12:00:00Z".parse().unwrap();
        let obj = json!({
            "metadata": {"name": "a", "creationTimestamp": "2025-01-10T11:00:00Z"},
            "spec": {"replicas": 3, "image": "nginx", "on": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        });
        let c = cr(vec![
            column("Replicas", "integer", ".spec.replicas", 0),
            column("Image", "string", ".spec.image", 1),
            column(
                "Ready",
                "string",
                ".status.conditions[?(@.type==\"Ready\")].status",
                0,
            ),
            column("On", "boolean", ".spec.on", 0),
            column("Missing", "string", ".spec.nothing", 0),
            column("Wrong", "integer", ".spec.image", 0),
            column("Age", "date", ".metadata.creationTimestamp", 0),
        ]);
        assert_eq!(
            cells(&c, &obj, now),
            vec![
                json!("a"),
                json!(3),
                json!("nginx"),
                json!("True"),
                json!(true),
                Value::Null,
                Value::Null,
                json!("60m"),
            ]
        );
        assert_eq!(definitions(&c)[2]["priority"], 1);
        let plain = cr(vec![]);
        assert_eq!(definitions(&plain).as_array().unwrap().len(), 2);
        assert_eq!(cells(&plain, &obj, now), vec![json!("a"), json!("60m")]);
    }
}
