//! Conversion between served versions of a kind that share one storage
//! version, on the JSON wire form (`serde_json::Value`).
//!
//! Kubernetes keeps each resource once, in its storage version, and converts
//! on the way in and out. Two kinds need it here:
//!
//! * `HorizontalPodAutoscaler`: stored as `autoscaling/v2`, also served as
//!   `autoscaling/v1` (`pkg/apis/autoscaling/v1/conversion.go`). What v1 can't
//!   express travels in the round-trip annotations `autoscaling.alpha.kubernetes.io/
//!   {metrics,current-metrics,conditions,behavior}`, so v2 → v1 → v2 loses nothing.
//! * `Event`: stored as core `v1`, also served as `events.k8s.io/v1`
//!   (`pkg/apis/events/v1/conversion.go`).
//!
//! Fields are copied when present and left out when absent, so a round trip
//! gives back exactly its input; unknown fields are dropped, as a typed
//! conversion would. Where upstream fills a zero value for a required v1 field
//! that the source left unset (a `Quantity` of `"0"`), we leave it out.
mod event;
mod hpa;

use serde_json::{Map, Value};

pub use hpa::{
    BEHAVIOR_ANNOTATION, CONDITIONS_ANNOTATION, METRIC_SPECS_ANNOTATION, METRIC_STATUSES_ANNOTATION,
};

type Object = Map<String, Value>;

const AUTOSCALING_V1: &str = "autoscaling/v1";
const AUTOSCALING_V2: &str = "autoscaling/v2";
const CORE_V1: &str = "v1";
const EVENTS_V1: &str = "events.k8s.io/v1";

/// The version objects of (group, resource) are stored in, when a kind is
/// served in more than one version and they share one storage.
///
/// `kind` may be the resource (`horizontalpodautoscalers`) or the Kind
/// (`HorizontalPodAutoscaler`). ("autoscaling", HPA) → ("autoscaling", "v2");
/// ("events.k8s.io", events) → ("", "v1"), i.e. core events. None for
/// everything else, core events included (they are stored as they are served).
pub fn storage_version(group: &str, kind: &str) -> Option<(&'static str, &'static str)> {
    match (group, kind) {
        ("autoscaling", "horizontalpodautoscalers" | "HorizontalPodAutoscaler") => {
            Some(("autoscaling", "v2"))
        }
        ("events.k8s.io", "events" | "Event") => Some(("", "v1")),
        _ => None,
    }
}

/// Converts `obj` (any served version of its kind; its `apiVersion` says which)
/// to `to_api_version` ("autoscaling/v1", "autoscaling/v2", "v1",
/// "events.k8s.io/v1"), setting `apiVersion` and `kind`.
///
/// Returns `obj` unchanged when it is already at `to_api_version`. Errors when
/// `obj` is not an object, has no `apiVersion`, names a pair of versions with no
/// conversion, or has a field of the wrong JSON type where the conversion needs
/// to look inside it.
pub fn convert(obj: Value, to_api_version: &str) -> Result<Value, String> {
    let Value::Object(obj) = obj else {
        return Err("object: expected a JSON object".into());
    };
    let from = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or("apiVersion: required to convert")?
        .to_owned();
    if from == to_api_version {
        return Ok(Value::Object(obj));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let out = match (kind, from.as_str(), to_api_version) {
        ("HorizontalPodAutoscaler" | "", AUTOSCALING_V2, AUTOSCALING_V1) => hpa::v2_to_v1(obj)?,
        ("HorizontalPodAutoscaler" | "", AUTOSCALING_V1, AUTOSCALING_V2) => hpa::v1_to_v2(obj)?,
        ("Event" | "", CORE_V1, EVENTS_V1) => event::core_to_events(&obj),
        ("Event" | "", EVENTS_V1, CORE_V1) => event::events_to_core(&obj),
        _ => {
            let kind = if kind.is_empty() { "object" } else { kind };
            return Err(format!(
                "no conversion for {kind} from {from} to {to_api_version}"
            ));
        }
    };
    Ok(Value::Object(out))
}

/// Starts the converted object: `apiVersion`, `kind` and `metadata` (as is).
fn new_object(api_version: &str, kind: &str, metadata: Option<Value>) -> Object {
    let mut out = Object::new();
    out.insert("apiVersion".into(), api_version.into());
    out.insert("kind".into(), kind.into());
    if let Some(metadata) = metadata {
        out.insert("metadata".into(), metadata);
    }
    out
}

/// `o[key]` as an object; None when absent or null, an error when another type.
fn object_field<'a>(o: &'a Object, key: &str, path: &str) -> Result<Option<&'a Object>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(v)) => Ok(Some(v)),
        Some(_) => Err(format!("{path}.{key}: expected an object")),
    }
}

/// `o[key]` as an array; None when absent or null, an error when another type.
fn array_field<'a>(o: &'a Object, key: &str, path: &str) -> Result<Option<&'a [Value]>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(v)) => Ok(Some(v)),
        Some(_) => Err(format!("{path}.{key}: expected an array")),
    }
}

/// `v` as an object, or an error naming `path`.
fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Object, String> {
    v.as_object()
        .ok_or_else(|| format!("{path}: expected an object"))
}

/// Copies `from[from_key]` to `to[to_key]` when present (null included).
fn copy(from: &Object, from_key: &str, to: &mut Object, to_key: &str) {
    if let Some(v) = from.get(from_key) {
        to.insert(to_key.into(), v.clone());
    }
}

/// Copies each listed key that is present, under the same name.
fn copy_same(from: &Object, to: &mut Object, keys: &[&str]) {
    for key in keys {
        copy(from, key, to, key);
    }
}

#[cfg(test)]
mod tests;
