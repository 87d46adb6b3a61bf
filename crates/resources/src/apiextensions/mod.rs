//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`) as data: what a CRD
//! makes the API serve, and how its custom objects are checked.
//!
//! - [`crd`]: validation and defaulting of the CRD object itself (names,
//!   versions, structural schemas, printer columns, subresources), with
//!   upstream's field paths and wording.
//! - [`schema`]: a custom object against its version's `openAPIV3Schema`:
//!   validation, unknown-field pruning and defaulting.
//! - [`columns`] and [`jsonpath`]: `additionalPrinterColumns` as Table columns.
//! - [`cel`]: `x-kubernetes-validations` rules.
//!
//! [`resource_types`] turns a CRD into the [`ResourceType`]s of its served
//! versions; the API server registers them. No I/O here.

pub mod cel;
pub mod columns;
pub mod crd;
pub mod jsonpath;
pub mod schema;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::registry::{ResourceType, Subresource, ALL_VERBS};

/// `customresourcecleanup.apiextensions.k8s.io`: kept on a CRD until its
/// custom objects are deleted.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

pub const GROUP: &str = "apiextensions.k8s.io";

/// One printer column of a CRD version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    /// integer, number, string, boolean or date.
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// `subresources.scale`: where replicas and the selector live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// What a CRD says about one served version of its custom resource.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomResource {
    /// The CRD's name (`crontabs.stable.example.com`).
    pub crd_name: String,
    /// The version objects are stored in.
    pub storage_version: String,
    /// `openAPIV3Schema` of this version, if any.
    pub schema: Option<Value>,
    /// Printer columns; empty means the default (Age only).
    pub columns: Vec<PrinterColumn>,
    pub scale: Option<ScalePaths>,
    /// Whether `status` is a subresource.
    pub status: bool,
}

// A schema is JSON without NaN, so equality is total.
impl Eq for CustomResource {}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Interns a string for the `&'static str` fields of [`Subresource`]: each
/// distinct kind name is kept once for the life of the process.
fn intern(s: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(found) = names.get(s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// The version a CRD stores objects in (the one with `storage: true`).
pub fn storage_version(crd: &Value) -> Option<String> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)?
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
        .map(str::to_string)
}

/// A version's setting, or the CRD-wide one (the pre-v1 top-level fields).
fn per_version<'a>(crd: &'a Value, version: &'a Value, pointer: &str) -> Option<&'a Value> {
    version
        .pointer(pointer)
        .or_else(|| crd.pointer(&format!("/spec{pointer}")))
}

/// The names a CRD is served under: `status.acceptedNames` once the
/// controller accepted them, else `spec.names`.
pub fn served_names(crd: &Value) -> &Value {
    match crd.pointer("/status/acceptedNames") {
        Some(n)
            if n.get("plural")
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty()) =>
        {
            n
        }
        _ => crd.pointer("/spec/names").unwrap_or(&Value::Null),
    }
}

/// The resource types of every served version of a CRD, under `names`.
pub fn resource_types(crd: &Value, names: &Value) -> Vec<ResourceType> {
    let group = str_at(crd, "/spec/group").to_string();
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = names
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let strings = |key: &str| -> Vec<String> {
        names
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let singular = match names.get("singular").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => kind.to_ascii_lowercase(),
    };
    let list_kind = match names.get("listKind").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => format!("{kind}List"),
    };
    let storage = storage_version(crd).unwrap_or_default();
    let namespaced = str_at(crd, "/spec/scope") != "Cluster";
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kind_static = intern(kind);
    let mut out = Vec::new();
    for v in &versions {
        if v.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let version = v.get("name").and_then(Value::as_str).unwrap_or_default();
        let status = per_version(crd, v, "/subresources/status").is_some();
        let scale = per_version(crd, v, "/subresources/scale").map(|s| ScalePaths {
            spec_replicas: str_at(s, "/specReplicasPath").to_string(),
            status_replicas: str_at(s, "/statusReplicasPath").to_string(),
            label_selector: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
        let columns = per_version(crd, v, "/additionalPrinterColumns")
            .and_then(Value::as_array)
            .map(|cols| cols.iter().map(printer_column).collect())
            .unwrap_or_default();
        let schema = per_version(crd, v, "/schema/openAPIV3Schema")
            .or_else(|| crd.pointer("/spec/validation/openAPIV3Schema"))
            .cloned();
        let mut subresources = Vec::new();
        let version_static = intern(version);
        let group_static = intern(&group);
        if status {
            subresources.push(Subresource {
                name: "status",
                group: group_static,
                version: version_static,
                kind: kind_static,
                verbs: &["get", "patch", "update"],
            });
        }
        if scale.is_some() {
            subresources.push(Subresource {
                name: "scale",
                group: "autoscaling",
                version: "v1",
                kind: "Scale",
                verbs: &["get", "patch", "update"],
            });
        }
        out.push(ResourceType {
            group: group.clone(),
            version: version.to_string(),
            resource: plural.to_string(),
            singular: singular.clone(),
            kind: kind.to_string(),
            list_kind: list_kind.clone(),
            namespaced,
            short_names: strings("shortNames"),
            categories: strings("categories"),
            verbs: ALL_VERBS.iter().map(|s| s.to_string()).collect(),
            subresources,
            storage_group_resource: format!("{plural}.{group}"),
            has_status: status,
            custom: Some(Arc::new(CustomResource {
                crd_name: str_at(crd, "/metadata/name").to_string(),
                storage_version: storage.clone(),
                schema,
                columns,
                scale,
                status,
            })),
        });
    }
    out
}

fn printer_column(c: &Value) -> PrinterColumn {
    PrinterColumn {
        name: str_at(c, "/name").to_string(),
        type_: str_at(c, "/type").to_string(),
        format: str_at(c, "/format").to_string(),
        description: str_at(c, "/description").to_string(),
        priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
        json_path: str_at(c, "/jsonPath").to_string(),
    }
}

/// `apiVersion` for `version` of a custom resource's group.
pub fn api_version(group: &str, version: &str) -> String {
    format!("{group}/{version}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn served_versions_become_resource_types() {
        let crd = json!({
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com",
                "scope": "Namespaced",
                "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                     "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1alpha1", "served": false, "storage": false},
                ],
            },
        });
        let types = resource_types(&crd, served_names(&crd));
        assert_eq!(types.len(), 2);
        let v1 = &types[0];
        assert_eq!(v1.singular, "crontab");
        assert_eq!(v1.list_kind, "CronTabList");
        assert_eq!(v1.storage_group_resource, "crontabs.stable.example.com");
        assert!(v1.has_status);
        assert!(v1.subresource("scale").is_some());
        assert_eq!(v1.subresource("status").unwrap().kind, "CronTab");
        let custom = v1.custom.as_ref().unwrap();
        assert_eq!(custom.storage_version, "v1");
        assert!(!types[1].has_status);
    }
}
