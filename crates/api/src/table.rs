//! `meta.k8s.io/v1` Table responses, as kube-apiserver sends them to
//! `kubectl get` (columns from the kind's printer).

use resources::registry::ResourceType;
use serde_json::{json, Value};

/// What each row carries besides its cells (`includeObject`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => IncludeObject::None,
            Some("Object") => IncludeObject::Object,
            _ => IncludeObject::Metadata,
        }
    }
}

/// Whether an Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        params.contains(&"as=Table")
            && params.contains(&"g=meta.k8s.io")
            && (params.contains(&"v=v1") || params.contains(&"v=v1beta1"))
    })
}

/// One Table row for `obj`.
pub fn row(rt: &ResourceType, obj: &Value, include: IncludeObject, now: jiff::Timestamp) -> Value {
    let cells = match &rt.custom {
        Some(cr) => resources::apiextensions::columns::cells(cr, obj, now),
        None => (resources::printers::printer_for(&rt.group, &rt.kind).cells)(obj, now),
    };
    let mut r = json!({"cells": cells});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            r["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or_default(),
            });
        }
        IncludeObject::Object => r["object"] = obj.clone(),
    }
    r
}

/// A Table of `items`; `list_meta` is the list's metadata (resourceVersion, continue).
pub fn table(
    rt: &ResourceType,
    items: &[Value],
    list_meta: Value,
    include: IncludeObject,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = items.iter().map(|o| row(rt, o, include, now)).collect();
    assemble(rt, rows, list_meta, with_columns)
}

/// A Table from rows already computed.
pub fn assemble(
    rt: &ResourceType,
    rows: Vec<Value>,
    list_meta: Value,
    with_columns: bool,
) -> Value {
    let printer = resources::printers::printer_for(&rt.group, &rt.kind);
    let mut t = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "rows": rows,
    });
    if with_columns {
        t["columnDefinitions"] = match &rt.custom {
            Some(cr) => resources::apiextensions::columns::definitions(cr),
            None => json!(printer.columns),
        };
    } else {
        t["columnDefinitions"] = json!(null);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_accept() {
        assert!(wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"));
        assert!(!wants_table("application/json"));
    }

    #[test]
    fn configmap_table() {
        let reg = resources::registry::Registry::builtin();
        let rt = reg.get("", "v1", "configmaps").unwrap();
        let cm = json!({"metadata": {"name": "a", "creationTimestamp": "2020-01-01T00:00:00Z"}, "data": {"k": "v"}});
        let t = table(
            rt,
            &[cm],
            json!({"resourceVersion": "5"}),
            IncludeObject::Metadata,
            true,
        );
        assert_eq!(t["rows"][0]["cells"][0], "a");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["columnDefinitions"][0]["name"], "Name");
    }
}
