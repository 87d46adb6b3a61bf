//! `ApiError`: every failure the API reports, turned into a `metav1.Status`
//! in exactly one place.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use resources::validation::FieldError;
use serde_json::{json, Value};

/// The group/resource an error is about (`deployments.apps`).
#[derive(Clone, Debug, Default)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}", self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{gr} \"{name}\" not found")]
    NotFound { gr: GroupResource, name: String },
    #[error("the server could not find the requested resource")]
    NoSuchResource,
    #[error("{gr} \"{name}\" already exists")]
    AlreadyExists { gr: GroupResource, name: String },
    #[error("Operation cannot be fulfilled on {gr} \"{name}\": {message}")]
    Conflict {
        gr: GroupResource,
        name: String,
        message: String,
    },
    #[error("{}", invalid_message(.kind, .group, .name, .causes))]
    Invalid {
        kind: String,
        group: String,
        name: String,
        causes: Vec<FieldError>,
    },
    /// Server-side apply would change fields other managers own.
    #[error("{message}")]
    ApplyConflict {
        message: String,
        /// `(message, field)` per conflicting field.
        causes: Vec<(String, String)>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// `apierrors.NewForbidden(resource, name, err)`: what admission plugins
    /// and registries refuse about one object.
    #[error("{}", forbidden_message(.gr, .name, .message))]
    ForbiddenObject {
        gr: GroupResource,
        name: String,
        message: String,
    },
    /// NamespaceLifecycle's refusal of new content in a terminating
    /// namespace: a [`ApiError::ForbiddenObject`] with the
    /// `NamespaceTerminating` cause clients look for.
    #[error("{}", forbidden_message(.gr, .name, &format!("unable to create new content in namespace {namespace} because it is being terminated")))]
    NamespaceTerminating {
        gr: GroupResource,
        name: String,
        namespace: String,
    },
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("Request entity too large: limit is {0}")]
    TooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    NotAcceptable(String),
    /// 410: the requested history is compacted away.
    #[error("{0}")]
    Expired(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// A Status built field by field, as upstream builds a few by hand (the
    /// eviction's 429 with a `DisruptionBudget` cause, its 500 for a pod
    /// under several budgets). An empty `reason` is left out.
    #[error("{message}")]
    Custom {
        code: StatusCode,
        reason: &'static str,
        message: String,
        causes: Vec<StatusCause>,
        /// Sent as `details.retryAfterSeconds` and a `Retry-After` header.
        retry_after_seconds: u32,
    },
}

/// One `metav1.StatusCause` (`reason` is the cause type).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusCause {
    pub reason: String,
    pub message: String,
}

fn forbidden_message(gr: &GroupResource, name: &str, message: &str) -> String {
    if name.is_empty() {
        format!("{gr} is forbidden: {message}")
    } else {
        format!("{gr} \"{name}\" is forbidden: {message}")
    }
}

fn invalid_message(kind: &str, group: &str, name: &str, causes: &[FieldError]) -> String {
    let qualified = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let list: Vec<String> = causes.iter().map(|c| c.to_string()).collect();
    let body = if list.len() == 1 {
        list[0].clone()
    } else {
        format!("[{}]", list.join(", "))
    };
    format!("{qualified} \"{name}\" is invalid: {body}")
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn code(&self) -> StatusCode {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchResource => StatusCode::NOT_FOUND,
            ApiError::AlreadyExists { .. }
            | ApiError::Conflict { .. }
            | ApiError::ApplyConflict { .. } => StatusCode::CONFLICT,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::ForbiddenObject { .. }
            | ApiError::NamespaceTerminating { .. } => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Expired(_) => StatusCode::GONE,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Custom { code, .. } => *code,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoSuchResource => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_)
            | ApiError::ForbiddenObject { .. }
            | ApiError::NamespaceTerminating { .. } => "Forbidden",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::Expired(_) => "Expired",
            ApiError::Timeout(_) => "Timeout",
            ApiError::TooManyRequests(_) => "TooManyRequests",
            ApiError::Internal(_) => "InternalError",
            ApiError::Custom { reason, .. } => reason,
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            ApiError::NotFound { gr, name }
            | ApiError::AlreadyExists { gr, name }
            | ApiError::Conflict { gr, name, .. }
            | ApiError::ForbiddenObject { gr, name, .. } => {
                let mut d = json!({"name": name, "kind": gr.resource});
                if !gr.group.is_empty() {
                    d["group"] = json!(gr.group);
                }
                Some(d)
            }
            ApiError::NamespaceTerminating {
                gr,
                name,
                namespace,
            } => {
                let mut d = json!({"name": name, "kind": gr.resource, "causes": [{
                    "reason": "NamespaceTerminating",
                    "message": format!("namespace {namespace} is being terminated"),
                    "field": "metadata.namespace",
                }]});
                if !gr.group.is_empty() {
                    d["group"] = json!(gr.group);
                }
                Some(d)
            }
            ApiError::Invalid {
                kind,
                group,
                name,
                causes,
            } => {
                let mut d = json!({
                    "name": name,
                    "kind": kind,
                    "causes": causes.iter().map(|c| json!({
                        "reason": c.reason(),
                        "message": c.message(),
                        "field": c.field,
                    })).collect::<Vec<_>>(),
                });
                if !group.is_empty() {
                    d["group"] = json!(group);
                }
                Some(d)
            }
            ApiError::ApplyConflict { causes, .. } => Some(json!({
                "causes": causes.iter().map(|(message, field)| json!({
                    "reason": "FieldManagerConflict",
                    "message": message,
                    "field": field,
                })).collect::<Vec<_>>(),
            })),
            ApiError::Internal(m) => Some(json!({"causes": [{"message": m}]})),
            ApiError::Custom {
                causes,
                retry_after_seconds,
                ..
            } => {
                let mut d = json!({});
                if !causes.is_empty() {
                    d["causes"] = causes
                        .iter()
                        .map(|c| json!({"reason": c.reason, "message": c.message}))
                        .collect();
                }
                if *retry_after_seconds > 0 {
                    d["retryAfterSeconds"] = json!(retry_after_seconds);
                }
                (d != json!({})).then_some(d)
            }
            _ => None,
        }
    }

    /// The `metav1.Status` body, also used inside watch ERROR events.
    pub fn status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code().as_u16(),
        });
        if self.reason().is_empty() {
            if let Some(m) = s.as_object_mut() {
                m.remove("reason");
            }
        }
        if let Some(d) = self.details() {
            s["details"] = d;
        }
        s
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Compacted {
                requested,
                compacted,
            } => ApiError::Expired(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            store::Error::FutureRevision { requested, current } => ApiError::Timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        let mut resp = (self.code(), body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        if let ApiError::Custom {
            retry_after_seconds,
            ..
        } = &self
        {
            if *retry_after_seconds > 0 {
                resp.headers_mut().insert(
                    header::RETRY_AFTER,
                    header::HeaderValue::from(*retry_after_seconds),
                );
            }
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resources::validation::ErrorType;

    #[test]
    fn status_bodies_read_like_kubernetes() {
        let e = ApiError::NotFound {
            gr: GroupResource {
                group: "apps".into(),
                resource: "deployments".into(),
            },
            name: "web".into(),
        };
        let s = e.status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["group"], "apps");

        let e = ApiError::Invalid {
            kind: "ConfigMap".into(),
            group: "".into(),
            name: "Bad".into(),
            causes: vec![FieldError {
                error_type: ErrorType::Required,
                field: "data".into(),
                bad_value: None,
                detail: String::new(),
            }],
        };
        let s = e.status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["details"]["causes"][0]["field"], "data");
        assert!(s["message"]
            .as_str()
            .unwrap()
            .starts_with("ConfigMap \"Bad\" is invalid: data: Required value"));
    }

    #[test]
    fn namespace_terminating_carries_its_cause() {
        let e = ApiError::NamespaceTerminating {
            gr: GroupResource {
                group: String::new(),
                resource: "configmaps".into(),
            },
            name: "late".into(),
            namespace: "doomed".into(),
        };
        let s = e.status();
        assert_eq!(
            s["message"],
            "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
        );
        assert_eq!(s["code"], 403);
        assert_eq!(s["reason"], "Forbidden");
        assert_eq!(
            s["details"]["causes"],
            json!([{"reason": "NamespaceTerminating", "message": "namespace doomed is being terminated", "field": "metadata.namespace"}])
        );
    }

    #[test]
    fn forbidden_objects_and_hand_built_statuses() {
        let e = ApiError::ForbiddenObject {
            gr: GroupResource {
                group: String::new(),
                resource: "pods".into(),
            },
            name: "web".into(),
            message: "no PriorityClass with name foo was found".into(),
        };
        let s = e.status();
        assert_eq!(
            s["message"],
            "pods \"web\" is forbidden: no PriorityClass with name foo was found"
        );
        assert_eq!(
            (s["code"].as_u64(), s["reason"].as_str()),
            (Some(403), Some("Forbidden"))
        );
        assert_eq!(s["details"], json!({"name": "web", "kind": "pods"}));

        let e = ApiError::Custom {
            code: StatusCode::TOO_MANY_REQUESTS,
            reason: "TooManyRequests",
            message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
            causes: vec![StatusCause {
                reason: "DisruptionBudget".into(),
                message: "The disruption budget db is still being processed by the server.".into(),
            }],
            retry_after_seconds: 10,
        };
        let s = e.status();
        assert_eq!(s["code"], 429);
        assert_eq!(s["details"]["retryAfterSeconds"], 10);
        assert_eq!(s["details"]["causes"][0]["reason"], "DisruptionBudget");
        let resp = e.into_response();
        assert_eq!(resp.headers()[header::RETRY_AFTER], "10");

        let e = ApiError::Custom {
            code: StatusCode::INTERNAL_SERVER_ERROR,
            reason: "",
            message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
            causes: Vec::new(),
            retry_after_seconds: 0,
        };
        let s = e.status();
        assert_eq!(s.get("reason"), None);
        assert_eq!(s.get("details"), None);
        assert_eq!(s["code"], 500);
    }
}
