//! OpenAPI definitions of custom resources, built from their CRD version's
//! `openAPIV3Schema` as kube-apiserver publishes them: named after the
//! reversed group (`com.example.stable.v1.CronTab`), with `apiVersion`,
//! `kind` and `metadata` (ObjectMeta) filled in and tagged with
//! `x-kubernetes-group-version-kind` so `kubectl explain` finds them.

use serde_json::{json, Map, Value};

use super::schemas::{GVK_EXTENSION, LIST_META, OBJECT_META, REF_PREFIX};
use crate::registry::ResourceType;

/// `com.example.stable` for `stable.example.com`.
fn reversed(group: &str) -> String {
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

/// Definition names of a custom resource's kind and list kind.
pub fn names(rt: &ResourceType) -> Option<(String, String)> {
    rt.custom.as_ref()?;
    let base = format!("{}.{}", reversed(&rt.group), rt.version);
    Some((
        format!("{base}.{}", rt.kind),
        format!("{base}.{}", rt.list_kind),
    ))
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The kind's and the list kind's definitions (Swagger 2.0 `$ref`s).
pub fn definitions(rt: &ResourceType) -> Vec<(String, Value)> {
    let (Some(cr), Some((object_name, list_name))) = (&rt.custom, names(rt)) else {
        return Vec::new();
    };
    let mut object = match &cr.schema {
        Some(Value::Object(m)) => m.clone(),
        _ => {
            let mut m = Map::new();
            m.insert("type".into(), json!("object"));
            m.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
            m
        }
    };
    object.insert("type".into(), json!("object"));
    let props = object.entry("properties").or_insert_with(|| json!({}));
    if let Some(p) = props.as_object_mut() {
        p.insert(
            "apiVersion".into(),
            json!({"type": "string", "description": API_VERSION_DOC}),
        );
        p.insert(
            "kind".into(),
            json!({"type": "string", "description": KIND_DOC}),
        );
        p.insert(
            "metadata".into(),
            json!({"description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
                   "$ref": format!("{REF_PREFIX}{OBJECT_META}")}),
        );
    }
    object.insert(
        GVK_EXTENSION.into(),
        json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]),
    );
    let list = json!({
        "description": format!("{} is a list of {}", rt.list_kind, rt.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": API_VERSION_DOC},
            "items": {
                "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", rt.resource),
                "type": "array",
                "items": {"$ref": format!("{REF_PREFIX}{object_name}")},
            },
            "kind": {"type": "string", "description": KIND_DOC},
            "metadata": {
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "$ref": format!("{REF_PREFIX}{LIST_META}"),
            },
        },
        GVK_EXTENSION: [{"group": rt.group, "version": rt.version, "kind": rt.list_kind}],
    });
    vec![(object_name, Value::Object(object)), (list_name, list)]
}
