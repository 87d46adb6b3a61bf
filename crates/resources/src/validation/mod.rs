//! Validation of Kubernetes objects in their v1 wire form (`serde_json::Value`).
//!
//! The API server calls [`validate`] on create and update (after decoding and
//! after [`crate::defaults::apply_defaults`]) and [`validate_status_update`]
//! for writes to the `status` subresource. Rules and messages follow upstream
//! Kubernetes (`pkg/apis/*/validation`), so a `kubectl` user sees the same
//! `field: message` lines a real cluster prints.

mod apps;
mod batch;
mod core;
mod meta;
mod names;
mod other;
mod pod;
pub mod quantity;
mod util;

#[cfg(test)]
mod tests;

use serde_json::Value;
use std::fmt;

pub use names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value,
};
pub(crate) use pod::VOLUME_SOURCES;
pub(crate) use util::go_quote as util_quote;

/// The kind of a field error, as Kubernetes' `field.ErrorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    /// A value of the wrong JSON type (`field.TypeInvalid`).
    TypeInvalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
}

impl ErrorType {
    /// The `StatusCause.reason` string.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
        }
    }

    /// The human text Kubernetes puts in front of a message.
    pub fn text(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
        }
    }
}

/// One validation failure, as Kubernetes' `field.Error`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub error_type: ErrorType,
    /// Path of the bad field, e.g. `spec.template.spec.containers[0].name`.
    pub field: String,
    pub bad_value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    pub(crate) fn new(
        error_type: ErrorType,
        field: impl Into<String>,
        bad_value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            error_type,
            field: field.into(),
            bad_value,
            detail: detail.into(),
        }
    }
    pub(crate) fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }
    pub(crate) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(ErrorType::Invalid, field, Some(value.into()), detail)
    }
    pub(crate) fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(value.into()), "")
    }
    pub(crate) fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::NotFound, field, Some(value.into()), "")
    }
    pub(crate) fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        valid: &[&str],
    ) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| util::go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, field, Some(value.into()), detail)
    }
    pub(crate) fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        Self::new(
            ErrorType::TooLong,
            field,
            None,
            format!("must have at most {max_bytes} bytes"),
        )
    }

    /// The `StatusCause.reason` string (`FieldValueInvalid`, ...).
    pub fn reason(&self) -> &'static str {
        self.error_type.reason()
    }

    /// The message without the field name, as `field.Error.ErrorBody()`.
    pub fn message(&self) -> String {
        let mut s = match self.error_type {
            ErrorType::Required
            | ErrorType::Forbidden
            | ErrorType::TooLong
            | ErrorType::Internal => self.error_type.text().to_string(),
            _ => match &self.bad_value {
                None => self.error_type.text().to_string(),
                Some(v) => format!("{}: {}", self.error_type.text(), util::go_format(v)),
            },
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

impl std::error::Error for FieldError {}

pub(crate) type Errs = Vec<FieldError>;

/// Full validation of a create (`old == None`) or an update (`old == Some`).
///
/// `group` is the API group (`""` for core). Kinds not known here get
/// object-meta validation only.
pub fn validate(
    group: &str,
    kind: &str,
    namespaced: bool,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let rule = names::name_rule(group, kind);
    match old {
        None => meta::validate_object_meta(obj, namespaced, rule, &mut errs),
        Some(old) => meta::validate_object_meta_update(obj, old, &mut errs),
    }
    match group {
        "" => core::validate(kind, obj, old, &mut errs),
        "apps" => apps::validate(kind, obj, old, &mut errs),
        "batch" => batch::validate(kind, obj, old, &mut errs),
        crate::apiextensions::GROUP if kind == "CustomResourceDefinition" => {
            errs.extend(crate::apiextensions::crd::validate(obj, old))
        }
        _ => other::validate(group, kind, obj, old, &mut errs),
    }
    errs
}

/// Validation of a write to the `status` subresource: metadata update rules
/// plus status fields. The spec is not checked.
pub fn validate_status_update(
    group: &str,
    kind: &str,
    _namespaced: bool,
    obj: &Value,
    old: &Value,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    meta::validate_object_meta_update(obj, old, &mut errs);
    match (group, kind) {
        ("", "Pod") => pod::validate_pod_status_update(obj, old, &mut errs),
        ("", "Service") => core::validate_service_status(obj, &mut errs),
        ("", "Node") => core::validate_node_resources(obj, &mut errs),
        ("", "ReplicationController")
        | ("apps", "ReplicaSet")
        | ("apps", "Deployment")
        | ("apps", "StatefulSet")
        | ("apps", "DaemonSet") => apps::validate_workload_status(kind, obj, &mut errs),
        ("batch", "Job") => batch::validate_job_status(obj, &mut errs),
        ("policy", "PodDisruptionBudget") => other::validate_pdb_status(obj, &mut errs),
        _ => {}
    }
    errs
}
