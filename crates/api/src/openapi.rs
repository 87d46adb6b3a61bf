//! Serves the OpenAPI documents built by `resources::openapi`, computed once
//! per registry change and kept as bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::handlers::{json_bytes, AppState};

/// Rendered documents, keyed by path (`v2`, `v3`, `v3/apis/apps/v1`), for
/// one generation of the registry (a CRD change starts a new one).
#[derive(Default)]
pub struct OpenApiCache {
    docs: Mutex<(u64, HashMap<String, Bytes>)>,
}

impl OpenApiCache {
    /// Drops every rendered document (the registry changed).
    pub fn invalidate(&self) {
        self.docs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clear();
    }

    fn get_or(
        &self,
        generation: u64,
        key: &str,
        make: impl FnOnce() -> Option<serde_json::Value>,
    ) -> Option<Bytes> {
        self.get_or_bytes(generation, key, || {
            Some(Bytes::from(serde_json::to_vec(&make()?).ok()?))
        })
    }

    fn get_or_bytes(
        &self,
        generation: u64,
        key: &str,
        make: impl FnOnce() -> Option<Bytes>,
    ) -> Option<Bytes> {
        {
            let mut docs = self.docs.lock().unwrap_or_else(|e| e.into_inner());
            if docs.0 != generation {
                *docs = (generation, HashMap::new());
            }
            if let Some(b) = docs.1.get(key) {
                return Some(b.clone());
            }
        }
        let bytes = make()?;
        let mut docs = self.docs.lock().unwrap_or_else(|e| e.into_inner());
        if docs.0 == generation {
            docs.1.insert(key.to_string(), bytes.clone());
        }
        Some(bytes)
    }
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

/// What kubectl 1.27/1.28 ask for (`@` form) and the type served back (the
/// dotted form: `@` is not legal in a media type and kubectl's parser rejects it).
const V2_PROTOBUF_ACCEPT: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
const V2_PROTOBUF_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

fn accepts_v2_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',').any(|p| {
                let t = p.split(';').next().unwrap_or_default().trim();
                t == V2_PROTOBUF_ACCEPT || t == V2_PROTOBUF_TYPE
            })
        })
}

pub async fn v2(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let rest = st.rest.clone();
    if accepts_v2_protobuf(&headers) {
        let generation = rest.registry().generation();
        let doc = st.openapi.get_or_bytes(generation, "v2.pb", || {
            let json = resources::openapi::document::v2(&rest.registry());
            Some(Bytes::from(resources::openapi::v2_proto::encode_document(
                &json,
            )))
        });
        return match doc {
            Some(b) => {
                let mut r = (StatusCode::OK, b).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(V2_PROTOBUF_TYPE),
                );
                r
            }
            None => ApiError::internal("openapi v2 document").into_response(),
        };
    }
    if !accepts_json(&headers) {
        return ApiError::NotAcceptable(
            "only application/json and the gnostic protobuf form are served for /openapi/v2".into(),
        )
        .into_response();
    }
    let generation = rest.registry().generation();
    match st.openapi.get_or(generation, "v2", || {
        Some(resources::openapi::document::v2(&rest.registry()))
    }) {
        Some(b) => json_bytes(b),
        None => ApiError::internal("openapi v2 document").into_response(),
    }
}

pub async fn v3_root(State(st): State<Arc<AppState>>) -> Response {
    let rest = st.rest.clone();
    let generation = rest.registry().generation();
    match st.openapi.get_or(generation, "v3", || {
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
    let generation = rest.registry().generation();
    match st.openapi.get_or(generation, &key, || {
        resources::openapi::document::v3_group_version(&rest.registry(), &group, &version)
    }) {
        Some(b) => json_bytes(b),
        None => ApiError::NoSuchResource.into_response(),
    }
}
