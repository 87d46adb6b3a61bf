//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): the
//! applied configuration is merged into the live object by the field
//! manager, which records ownership in `metadata.managedFields` and refuses
//! to take fields another manager owns unless forced.

use resources::fieldmanager::{self, ApplyError};
use resources::validation::{ErrorType, FieldError};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::object::{self, meta_mut};
use crate::rest::{field_types, reset_fields, Rest, Scope, WriteOptions};

/// What an apply did: the object, and whether it was created.
pub struct Applied {
    pub object: Value,
    pub created: bool,
}

/// Applies `config` to the object `name` (creating it if it does not exist).
pub async fn apply(
    rest: &Rest,
    scope: &Scope,
    name: &str,
    subresource: Option<&str>,
    mut config: Value,
    opts: &WriteOptions,
    force: bool,
) -> Result<Applied, ApiError> {
    let rt = scope.rt.clone();
    let manager = opts
        .field_manager
        .clone()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            patch_options_invalid(
                ErrorType::Required,
                "fieldManager",
                "is required for apply patch",
            )
        })?;
    check_config(&rt.kind, name, &mut config)?;
    let api_version = rt.api_version();
    let time = object::now_rfc3339();
    let req = fieldmanager::Request {
        manager: &manager,
        subresource,
        api_version: &api_version,
        time: &time,
        types: field_types(&rt),
        ignored: reset_fields(&rt, subresource),
    };
    // A resourceVersion in the configuration is a precondition; otherwise
    // the apply retries on conflicting writes like any update.
    let precondition = object::meta_str(&config, "resourceVersion").map(str::to_string);
    let opts = WriteOptions {
        applying: true,
        ..opts.clone()
    };
    loop {
        let updated = rest
            .update_with(scope, name, subresource, &opts, |live| {
                let mut merged = match fieldmanager::apply(Some(live), &config, &req, force) {
                    // kubectl taking over from its own client-side apply.
                    Err(ApplyError::Conflicts(c))
                        if manager == "kubectl"
                            && fieldmanager::last_applied_allows(live, &c, &req) =>
                    {
                        fieldmanager::apply(Some(live), &config, &req, true)
                    }
                    other => other,
                }
                .map_err(apply_error)?;
                match &precondition {
                    Some(rv) => meta_mut(&mut merged).insert("resourceVersion".into(), json!(rv)),
                    None => meta_mut(&mut merged).remove("resourceVersion"),
                };
                Ok(merged)
            })
            .await;
        match updated {
            Ok(object) => {
                return Ok(Applied {
                    object,
                    created: false,
                })
            }
            Err(ApiError::NotFound { .. }) if subresource.is_none() && precondition.is_none() => {
                let obj = fieldmanager::apply(None, &config, &req, force).map_err(apply_error)?;
                match rest.create(scope, obj, &opts).await {
                    Ok(object) => {
                        return Ok(Applied {
                            object,
                            created: true,
                        })
                    }
                    // Created meanwhile by someone else: apply onto it.
                    Err(ApiError::AlreadyExists { .. }) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The configuration names the kind and object the request addresses (the
/// field manager checks its apiVersion and that it leaves managedFields to
/// the server).
fn check_config(kind: &str, name: &str, config: &mut Value) -> Result<(), ApiError> {
    if !config.is_object() {
        return Err(ApiError::BadRequest(
            "error decoding YAML: the applied configuration must be an object".into(),
        ));
    }
    let k = config
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if k != kind {
        return Err(ApiError::BadRequest(format!(
            "Incorrect kind specified in apply patch. Specified patch kind: {k}, expected: {kind}"
        )));
    }
    match object::meta_str(config, "name") {
        Some(n) if !n.is_empty() && n != name => Err(ApiError::BadRequest(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        ))),
        Some(n) if !n.is_empty() => Ok(()),
        _ => {
            meta_mut(config).insert("name".into(), json!(name));
            Ok(())
        }
    }
}

fn apply_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Conflicts(c) => ApiError::ApplyConflict {
            message: fieldmanager::conflict_message(&c),
            causes: fieldmanager::conflict_causes(&c),
        },
        ApplyError::Invalid(message) => ApiError::BadRequest(message),
    }
}

/// A 422 about the request's options, as the API reports a bad `PatchOptions`.
pub fn patch_options_invalid(error_type: ErrorType, field: &str, detail: &str) -> ApiError {
    ApiError::Invalid {
        kind: "PatchOptions".into(),
        group: "meta.k8s.io".into(),
        name: String::new(),
        causes: vec![FieldError {
            error_type,
            field: field.into(),
            bad_value: None,
            detail: detail.into(),
        }],
    }
}
