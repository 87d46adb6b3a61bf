//! Custom resources in the API server: the hooks the generic REST code calls
//! for kinds a CustomResourceDefinition defines (version rewriting, schema
//! defaulting, validation and pruning, the scale subresource), and the
//! [`controller`] that turns CRDs into served resources.
//!
//! Every hook is a no-op for built-in kinds (`ResourceType::custom` is `None`).

pub mod controller;

use resources::apiextensions::{self, schema, CustomResource, ScalePaths};
use resources::registry::ResourceType;
use resources::validation::FieldError;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::rest::{FieldValidation, WriteOptions};

/// Conversion strategy `None`: the served version differs from the stored
/// one only in `apiVersion`.
pub fn serve_version(rt: &ResourceType, obj: &mut Value) {
    if rt.custom.is_some() {
        if let Some(o) = obj.as_object_mut() {
            o.insert("apiVersion".into(), json!(rt.api_version()));
        }
    }
}

/// The object as the storage version spells it.
pub fn store_version(rt: &ResourceType, obj: &mut Value) {
    if let Some(cr) = &rt.custom {
        if let Some(o) = obj.as_object_mut() {
            o.insert(
                "apiVersion".into(),
                json!(apiextensions::api_version(&rt.group, &cr.storage_version)),
            );
        }
    }
}

/// Built-in defaults, then the schema's `default`s.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value) {
    resources::defaults::apply_defaults(&rt.group, &rt.kind, obj);
    if let Some(schema) = rt.custom.as_ref().and_then(|c| c.schema.as_ref()) {
        schema::default(schema, obj);
    }
}

/// Schema violations of a custom object (none for built-in kinds).
pub fn validate(rt: &ResourceType, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    match rt.custom.as_ref().and_then(|c| c.schema.as_ref()) {
        Some(schema) => schema::validate(schema, obj, old),
        None => Vec::new(),
    }
}

/// Whether an update changes what `metadata.generation` counts: for custom
/// objects everything but metadata (and status, when it is a subresource).
pub fn spec_changed(rt: &ResourceType, old: &Value, new: &Value) -> bool {
    if rt.custom.is_none() {
        return crate::object::spec_part(old) != crate::object::spec_part(new);
    }
    let strip = |v: &Value| {
        let mut o = v.clone();
        if let Some(m) = o.as_object_mut() {
            m.remove("metadata");
            if rt.has_status {
                m.remove("status");
            }
        }
        o
    };
    strip(old) != strip(new)
}

/// Unknown fields of a custom object: always dropped; under `Strict` a 400
/// listing them, under `Warn` one warning each.
pub fn admit_fields(
    cr: &CustomResource,
    obj: &mut Value,
    opts: &WriteOptions,
) -> Result<Vec<String>, ApiError> {
    let Some(schema) = cr.schema.as_ref() else {
        return Ok(Vec::new());
    };
    let dropped: Vec<String> = schema::prune(schema, obj)
        .into_iter()
        .map(|p| format!("unknown field {p:?}"))
        .collect();
    match opts.field_validation {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Strict if !dropped.is_empty() => Err(ApiError::BadRequest(
            resources::openapi::strict_decoding_error(&dropped),
        )),
        _ => Ok(dropped),
    }
}

/// The answer to a strategic merge patch of a custom object, as upstream.
pub fn strategic_merge_unsupported() -> ApiError {
    ApiError::UnsupportedMediaType(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into(),
    )
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect()
}

fn at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    segments(path).iter().try_fold(obj, |v, s| v.get(*s))
}

/// The `autoscaling/v1` Scale of a custom object.
pub fn scale_of(paths: &ScalePaths, obj: &Value) -> Value {
    let int = |p: &str| at(obj, p).and_then(Value::as_i64).unwrap_or(0);
    let selector = paths
        .label_selector
        .as_deref()
        .and_then(|p| at(obj, p))
        .and_then(Value::as_str)
        .unwrap_or_default();
    crate::subresources::scale(
        obj,
        int(&paths.spec_replicas),
        int(&paths.status_replicas),
        selector,
    )
}

/// Writes `replicas` at `specReplicasPath`, creating objects on the way.
pub fn set_spec_replicas(paths: &ScalePaths, obj: &mut Value, replicas: i64) {
    let segs = segments(&paths.spec_replicas);
    let Some((last, parents)) = segs.split_last() else {
        return;
    };
    let mut cur = obj;
    for s in parents {
        if !cur.get(*s).is_some_and(Value::is_object) {
            cur[*s] = json!({});
        }
        cur = &mut cur[*s];
    }
    cur[*last] = json!(replicas);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_paths() {
        let paths = ScalePaths {
            spec_replicas: ".spec.size".into(),
            status_replicas: ".status.count".into(),
            label_selector: Some(".status.selector".into()),
        };
        let mut obj = json!({"metadata": {"name": "a"}, "spec": {"size": 2}, "status": {"count": 1, "selector": "app=a"}});
        let s = scale_of(&paths, &obj);
        assert_eq!(s["spec"]["replicas"], 2);
        assert_eq!(s["status"]["replicas"], 1);
        assert_eq!(s["status"]["selector"], "app=a");
        set_spec_replicas(&paths, &mut obj, 5);
        assert_eq!(obj["spec"]["size"], 5);
        let mut empty = json!({});
        set_spec_replicas(&paths, &mut empty, 3);
        assert_eq!(empty, json!({"spec": {"size": 3}}));
    }
}
