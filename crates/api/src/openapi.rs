//! Serves the OpenAPI documents built by `resources::openapi`, computed once
//! per registry change and kept as bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::handlers::AppState;

/// Rendered documents, keyed by path (`v2`, `v3`, `v3/apis/apps/v1`).
#[derive(Default)]
pub struct OpenApiCache {
    docs: Mutex<HashMap<String, Bytes>>,
}

impl OpenApiCache {
    /// Drops every rendered document (the registry changed).
    pub fn invalidate(&self) {
        self.docs.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    fn get_or(&self, key: &str, make: impl FnOnce() -> Option<serde_json::Value>) -> Option<Bytes> {
        if let Some(b) = self.docs.lock().unwrap_or_else(|e| e.into_inner()).get(key) {
            return Some(b.clone());
        }
        let doc = make()?;
        let bytes = Bytes::from(serde_json::to_vec(&doc).ok()?);
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), bytes.clone());
        Some(bytes)
    }
}

fn json_bytes(b: Bytes) -> Response {
    let mut r = (StatusCode::OK, b).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn accepts_json(headers: &HeaderMap) -> bool {
    let a = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    a.split(',').any(|p| {
        let t = p.split(';').next().unwrap_or_default().trim();
        matches!(t, "application/json" | "*/*" | "application/*" | "")
    })
}

pub async fn v2(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !accepts_json(&headers) {
        // The protobuf form is not served; kubectl then uses its built-in
        // strategic-merge metadata.
        return ApiError::NotAcceptable("only application/json is served for /openapi/v2".into())
            .into_response();
    }
    let rest = st.rest.clone();
    match st.openapi.get_or("v2", || {
        Some(resources::openapi::document::v2(&rest.registry()))
    }) {
        Some(b) => json_bytes(b),
        None => ApiError::internal("openapi v2 document").into_response(),
    }
}

pub async fn v3_root(State(st): State<Arc<AppState>>) -> Response {
    let rest = st.rest.clone();
    match st.openapi.get_or("v3", || {
        Some(resources::openapi::document::v3_root(&rest.registry()))
    }) {
        Some(b) => json_bytes(b),
        None => ApiError::internal("openapi v3 document").into_response(),
    }
}

pub async fn v3_group_version(
    State(st): State<Arc<AppState>>,
    Path(path): Path<String>,
) -> Response {
    let (group, version) = match path
        .trim_matches('/')
        .split('/')
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["api", v] => (String::new(), v.to_string()),
        ["apis", g, v] => (g.to_string(), v.to_string()),
        _ => return ApiError::NoSuchResource.into_response(),
    };
    let rest = st.rest.clone();
    let key = format!("v3/{path}");
    match st.openapi.get_or(&key, || {
        resources::openapi::document::v3_group_version(&rest.registry(), &group, &version)
    }) {
        Some(b) => json_bytes(b),
        None => ApiError::NoSuchResource.into_response(),
    }
}
