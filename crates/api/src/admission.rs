//! Admission checks that every write passes (NamespaceLifecycle for now).

use serde_json::Value;

use crate::error::{ApiError, GroupResource};
use crate::rest::{Rest, Scope};

/// NamespaceLifecycle: objects can only be created in a namespace that
/// exists and is not being deleted.
pub async fn check_namespace_accepts(rest: &Rest, ns: &str) -> Result<(), ApiError> {
    let rt = rest
        .registry()
        .get("", "v1", "namespaces")
        .cloned()
        .ok_or(ApiError::NoSuchResource)?;
    let scope = Scope {
        rt,
        namespace: None,
    };
    match rest.get(&scope, ns).await {
        Ok(obj) => {
            let terminating = obj.pointer("/metadata/deletionTimestamp").is_some()
                || obj.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
            if terminating {
                return Err(ApiError::Forbidden(format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                )));
            }
            Ok(())
        }
        Err(ApiError::NotFound { .. }) => Err(ApiError::NotFound {
            gr: GroupResource {
                group: String::new(),
                resource: "namespaces".into(),
            },
            name: ns.to_string(),
        }),
        Err(e) => Err(e),
    }
}
