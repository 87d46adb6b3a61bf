//! HTTP handlers: thin adapters from requests to [`crate::rest`] and back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use resources::registry::ResourceType;
use serde_json::{json, Value};

use crate::authn::UserInfo;
use crate::discovery::{self, Aggregated};
use crate::error::ApiError;
use crate::object::meta_str;
use crate::patch;
use crate::rest::{
    DeleteOptions, Deleted, FieldValidation, ListOptions, Rest, Scope, WatchEvent, WriteOptions,
};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::table::{self, IncludeObject};

/// Kubernetes' request body limit (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub struct AppState {
    pub rest: Arc<Rest>,
    /// `host:port` clients reach the API at, for `serverAddressByClientCIDRs`.
    pub server_address: String,
    pub ready: tokio::sync::watch::Receiver<bool>,
    pub openapi: crate::openapi::OpenApiCache,
    /// TLS client identity for kubelets (`pods/log`, `exec`, `attach`,
    /// `portforward`); `None` answers those with an internal error.
    pub kubelet_client: Option<Arc<rustls::ClientConfig>>,
}

type St = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(readyz))
        .route("/api", get(api_root))
        .route("/apis", get(apis_root))
        .route("/openapi/v2", get(crate::openapi::v2))
        .route("/openapi/v3", get(crate::openapi::v3_root))
        .route("/openapi/v3/{*path}", get(crate::openapi::v3_group_version))
        .fallback(resource)
        .layer(axum::middleware::from_fn(authenticate))
        .with_state(state)
}

/// Only health and version answer without credentials (as with
/// `--anonymous-auth` limited to them); everything else is 401.
async fn authenticate(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let public = matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/");
    let authenticated = req
        .extensions()
        .get::<UserInfo>()
        .is_some_and(|u| u.groups.iter().any(|g| g == "system:authenticated"));
    if !public && !authenticated {
        return ApiError::Unauthorized.into_response();
    }
    next.run(req).await
}

pub fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": concat!("v1.33.0+skiff-", env!("CARGO_PKG_VERSION")),
        "gitCommit": option_env!("SKIFF_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}

async fn version() -> Response {
    json_response(StatusCode::OK, &version_info())
}

async fn health() -> &'static str {
    "ok"
}

async fn readyz(State(st): St) -> Response {
    if *st.ready.borrow() {
        "ok".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "[-]poststarthook/skiff-bootstrap failed: not finished\nreadyz check failed",
        )
            .into_response()
    }
}

fn accept(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
}

async fn api_root(State(st): St, headers: HeaderMap) -> Response {
    let reg = st.rest.registry();
    match Aggregated::from_accept(accept(&headers)) {
        Some(a) => typed_json(&discovery::aggregated(&reg, true, a), &a.content_type()),
        None => json_response(StatusCode::OK, &discovery::api_versions(&st.server_address)),
    }
}

async fn apis_root(State(st): St, headers: HeaderMap) -> Response {
    let reg = st.rest.registry();
    match Aggregated::from_accept(accept(&headers)) {
        Some(a) => typed_json(&discovery::aggregated(&reg, false, a), &a.content_type()),
        None => json_response(StatusCode::OK, &discovery::api_group_list(&reg)),
    }
}

pub fn json_response(code: StatusCode, v: &Value) -> Response {
    typed_json_code(code, v, "application/json")
}

fn typed_json(v: &Value, ct: &str) -> Response {
    typed_json_code(StatusCode::OK, v, ct)
}

fn typed_json_code(code: StatusCode, v: &Value, ct: &str) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut r = (code, body).into_response();
    if let Ok(h) = HeaderValue::from_str(ct) {
        r.headers_mut().insert(header::CONTENT_TYPE, h);
    }
    r
}

/// What a resource URL addresses.
#[derive(Debug, Default, PartialEq, Eq)]
struct Target {
    group: String,
    version: String,
    namespace: Option<String>,
    resource: String,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => (String::new(), v.to_string(), rest),
        ["apis", g, v, rest @ ..] => (g.to_string(), v.to_string(), rest),
        _ => return None,
    };
    let mut t = Target {
        group,
        version,
        ..Default::default()
    };
    let rest: Vec<&str> = match rest {
        // /namespaces/{ns}/{resource}... unless it is a namespace's own subresource.
        ["namespaces", ns, r, tail @ ..]
            if !(tail.is_empty() && matches!(*r, "status" | "finalize")) =>
        {
            t.namespace = Some(ns.to_string());
            std::iter::once(*r).chain(tail.iter().copied()).collect()
        }
        other => other.to_vec(),
    };
    match rest.as_slice() {
        [r] => t.resource = r.to_string(),
        [r, n] => {
            t.resource = r.to_string();
            t.name = Some(n.to_string());
        }
        [r, n, s] => {
            t.resource = r.to_string();
            t.name = Some(n.to_string());
            t.subresource = Some(s.to_string());
        }
        _ => return None,
    }
    if t.resource.is_empty() || t.name.as_deref() == Some("") {
        return None;
    }
    Some(t)
}

fn query_map(uri: &axum::http::Uri) -> Result<HashMap<String, String>, ApiError> {
    let q = uri.query().unwrap_or_default();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q)
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    Ok(pairs.into_iter().collect())
}

fn write_options(
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<WriteOptions, ApiError> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "Invalid dryRun value: {other:?}: supported values: \"All\""
            )))
        }
    };
    let field_validation = match q.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )))
        }
    };
    Ok(WriteOptions {
        dry_run,
        field_manager: Some(field_manager(q, headers)?),
        field_validation,
        applying: false,
    })
}

/// The `fieldManager` parameter, or else the User-Agent's product name
/// (`kubectl/v1.33.0 (linux/amd64)` → `kubectl`), as the API records writes.
fn field_manager(q: &HashMap<String, String>, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        if m.chars().count() > 128 {
            return Err(crate::apply::patch_options_invalid(
                resources::validation::ErrorType::TooLong,
                "fieldManager",
                "may not be more than 128 characters",
            ));
        }
        if m.chars().any(char::is_control) {
            return Err(crate::apply::patch_options_invalid(
                resources::validation::ErrorType::Invalid,
                "fieldManager",
                "invalid characters",
            ));
        }
        return Ok(m.clone());
    }
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Ok(agent
        .split('/')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect())
}

fn list_options(q: &HashMap<String, String>) -> Result<ListOptions, ApiError> {
    let label_selector =
        LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("unable to parse requirement: {e}")))?;
    let field_selector =
        FieldSelector::parse(q.get("fieldSelector").map(String::as_str).unwrap_or(""))
            .map_err(ApiError::BadRequest)?;
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(l) => {
            let n: i64 = l
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid limit: {l:?}")))?;
            (n > 0).then_some(n as usize)
        }
        None => None,
    };
    Ok(ListOptions {
        label_selector,
        field_selector,
        limit,
        continue_token: q.get("continue").cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q.get("resourceVersionMatch").cloned(),
    })
}

/// Reads a request body (JSON or YAML) within the size limit; returns the
/// object and its JSON bytes (for strict field checks).
fn read_body(headers: &HeaderMap, bytes: &Bytes) -> Result<(Value, Vec<u8>, String), ApiError> {
    let ct = content_type(headers);
    let (value, raw) = decode_bytes(&ct, bytes)?;
    Ok((value, raw, ct))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Reads at most [`MAX_BODY_BYTES`]. A larger body is read to its end (up to
/// a bound) and discarded before the 413, so HTTP/2 clients get the answer
/// instead of a reset stream.
async fn read_limited(body: Body) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    const DRAIN_LIMIT: usize = 64 * 1024 * 1024;
    let mut body = body;
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::BadRequest(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= MAX_BODY_BYTES {
                buf.extend_from_slice(&data);
            } else if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge(MAX_BODY_BYTES));
    }
    Ok(Bytes::from(buf))
}

fn decode_bytes(ct: &str, bytes: &Bytes) -> Result<(Value, Vec<u8>), ApiError> {
    match ct {
        "application/yaml"
        | "application/apply-patch+yaml"
        | "text/yaml"
        | "application/x-yaml" => {
            // JSON is YAML: a JSON body is taken as sent, which keeps its
            // duplicate keys visible to field validation.
            if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
                return Ok((v, bytes.to_vec()));
            }
            let v: Value = serde_yaml::from_slice(bytes)
                .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?;
            let raw = serde_json::to_vec(&v).map_err(ApiError::internal)?;
            Ok((v, raw))
        }
        "application/vnd.kubernetes.protobuf" => {
            let v = resources::protobuf::decode(bytes)
                .map_err(|e| ApiError::BadRequest(format!("error decoding protobuf: {e}")))?;
            let raw = serde_json::to_vec(&v).map_err(ApiError::internal)?;
            Ok((v, raw))
        }
        "application/json-patch+json"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json" => {
            let v: Value = serde_json::from_slice(bytes)
                .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
            Ok((v, bytes.to_vec()))
        }
        _ => {
            let v: Value = serde_json::from_slice(bytes).map_err(|e| {
                ApiError::BadRequest(format!(
                    "Object 'Kind' is missing in '{}': {e}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                ))
            })?;
            Ok((v, bytes.to_vec()))
        }
    }
}

/// Where an object under admission came from: a request body, or a patch
/// applied to the stored object.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    Body,
    Patch,
}

/// Values of the wrong JSON type cannot be decoded into the kind: a 400 for
/// a body (upstream's decoding error), a 422 on `patch` for a patch result.
/// Then `fieldValidation`: Strict turns unknown/duplicate fields into a 400;
/// Warn returns them as `Warning` headers. Unknown fields that are let
/// through (Warn/Ignore) are dropped from `obj`, never stored. `raw` is
/// `obj` as sent.
fn admit_fields(
    rt: &ResourceType,
    raw: &[u8],
    obj: &mut Value,
    opts: &WriteOptions,
    origin: Origin,
) -> Result<Vec<String>, ApiError> {
    use resources::openapi::strict;
    if let Some(cr) = &rt.custom {
        return crate::crd::admit_fields(cr, obj, opts);
    }
    let wrong_types = strict::type_problems(&rt.group, &rt.version, &rt.kind, obj);
    if !wrong_types.is_empty() {
        let message = strict::decode_error(&rt.kind, &rt.version, &wrong_types);
        return Err(match origin {
            Origin::Body => ApiError::BadRequest(message),
            Origin::Patch => ApiError::Invalid {
                kind: rt.kind.clone(),
                group: rt.group.clone(),
                name: crate::object::name(obj).to_string(),
                causes: vec![resources::validation::FieldError {
                    error_type: resources::validation::ErrorType::Invalid,
                    field: "patch".into(),
                    bad_value: None,
                    detail: message,
                }],
            },
        });
    }
    let problems = match opts.field_validation {
        FieldValidation::Ignore => Vec::new(),
        _ => {
            let problems = strict::field_problems(&rt.group, &rt.version, &rt.kind, raw);
            if problems.is_empty() {
                // Nothing unknown: nothing to drop either.
                return Ok(problems);
            }
            if opts.field_validation == FieldValidation::Strict {
                return Err(ApiError::BadRequest(strict::strict_decoding_error(
                    &problems,
                )));
            }
            problems
        }
    };
    strict::prune_unknown(&rt.group, &rt.version, &rt.kind, obj);
    Ok(problems)
}

fn with_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let v = format!("299 - {:?}", w);
        if let Ok(h) = HeaderValue::from_str(&v) {
            r.headers_mut().append("Warning", h);
        }
    }
    r
}

struct Resolved {
    scope: Scope,
    target: Target,
    query: HashMap<String, String>,
}

fn resolve(st: &AppState, uri: &axum::http::Uri) -> Result<Resolved, ApiError> {
    let target = parse_path(uri.path()).ok_or(ApiError::NoSuchResource)?;
    let rt = st
        .rest
        .registry()
        .get(&target.group, &target.version, &target.resource)
        .cloned()
        .ok_or(ApiError::NoSuchResource)?;
    if target.namespace.is_some() && !rt.namespaced {
        return Err(ApiError::NoSuchResource);
    }
    if let Some(sub) = &target.subresource {
        let known = rt.subresource(sub).is_some()
            || (rt.group.is_empty() && rt.kind == "Namespace" && sub == "finalize");
        if !known {
            return Err(ApiError::NoSuchResource);
        }
    }
    let query = query_map(uri)?;
    Ok(Resolved {
        scope: Scope {
            rt,
            namespace: target.namespace.clone(),
        },
        target,
        query,
    })
}

/// Every resource request: `/api/v1/...` and `/apis/<group>/<version>/...`.
async fn resource(State(st): St, req: Request) -> Response {
    // Connect subresources stream (and may upgrade): they never read a body.
    if let Some(t) = crate::connect::target(req.method(), req.uri().path()) {
        return crate::connect::serve(&st, t, req).await;
    }
    let (parts, body) = req.into_parts();
    // The body is read whole (within the limit) before anything can fail, so
    // an early error never leaves an HTTP/2 stream half-read and reset.
    let body = match read_limited(body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match serve_resource(&st, parts.method, &parts.uri, &parts.headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve_resource(
    st: &Arc<AppState>,
    method: Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Group/version roots are discovery, not resources.
    if method == Method::GET {
        let segs: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        let reg = st.rest.registry();
        match segs.as_slice() {
            ["api", v] => {
                return discovery::resource_list(&reg, "", v)
                    .map(|d| json_response(StatusCode::OK, &d))
                    .ok_or(ApiError::NoSuchResource)
            }
            ["apis", g] => {
                return discovery::group(&reg, g)
                    .map(|d| json_response(StatusCode::OK, &d))
                    .ok_or(ApiError::NoSuchResource)
            }
            ["apis", g, v] => {
                return discovery::resource_list(&reg, g, v)
                    .map(|d| json_response(StatusCode::OK, &d))
                    .ok_or(ApiError::NoSuchResource)
            }
            _ => {}
        }
    }
    let Resolved {
        scope,
        target,
        query,
    } = resolve(st, uri)?;
    let rest = &st.rest;
    let rt = scope.rt.clone();
    let accept = accept(headers).to_string();
    let sub = target.subresource.as_deref();
    match (method.clone(), target.name.as_deref()) {
        (Method::GET, None) => {
            let opts = list_options(&query)?;
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                return watch(st, scope, opts, &query, &accept).await;
            }
            if rt.namespaced && scope.namespace.is_none() && !rt.verbs.iter().any(|v| v == "list") {
                return Err(ApiError::MethodNotAllowed);
            }
            let list = rest.list_kvs(&scope, &opts).await?;
            let mut meta = json!({"resourceVersion": list.resource_version.to_string()});
            if let Some(c) = &list.continue_token {
                meta["continue"] = json!(c);
            }
            if let Some(r) = list.remaining {
                meta["remainingItemCount"] = json!(r);
            }
            let include = IncludeObject::parse(query.get("includeObject").map(String::as_str));
            let as_table = table::wants_table(&accept);
            // Encoding thousands of objects is CPU work: keep it off the
            // runtime threads that serve other requests.
            let body = tokio::task::spawn_blocking(move || {
                encode_list(&rt, list.items, meta, as_table, include)
            })
            .await
            .map_err(ApiError::internal)??;
            Ok(json_bytes(body))
        }
        (Method::GET, Some(name)) => {
            let obj = rest.get(&scope, name).await?;
            let obj = match sub {
                Some("scale") => scale_of(&rt, &obj)?,
                Some("status") | None => obj,
                Some(_) => return Err(ApiError::MethodNotAllowed),
            };
            if table::wants_table(&accept) && sub.is_none() {
                let include = IncludeObject::parse(query.get("includeObject").map(String::as_str));
                let meta = json!({"resourceVersion": meta_str(&obj, "resourceVersion").unwrap_or_default()});
                return Ok(json_response(
                    StatusCode::OK,
                    &table::table(&rt, &[obj], meta, include, true),
                ));
            }
            Ok(json_response(StatusCode::OK, &obj))
        }
        (Method::POST, None) => {
            let opts = write_options(&query, headers)?;
            let (mut obj, raw, _) = read_body(headers, &body)?;
            let warnings = admit_fields(&rt, &raw, &mut obj, &opts, Origin::Body)?;
            let created = rest.create(&scope, obj, &opts).await?;
            Ok(with_warnings(
                json_response(StatusCode::CREATED, &created),
                &warnings,
            ))
        }
        (Method::POST, Some(name)) => match sub {
            Some("binding") => {
                let (obj, _, _) = read_body(headers, &body)?;
                crate::subresources::bind(rest, &scope, name, &obj).await?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ))
            }
            Some("eviction") => {
                let (obj, _, _) = read_body(headers, &body)?;
                let dry_run: Vec<String> = if write_options(&query, headers)?.dry_run {
                    vec!["All".into()]
                } else {
                    Vec::new()
                };
                crate::subresources::evict(rest, &scope, name, &obj, &dry_run).await?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                ))
            }
            _ => Err(ApiError::MethodNotAllowed),
        },
        (Method::PUT, Some(name)) => {
            let opts = write_options(&query, headers)?;
            let (obj, raw, _) = read_body(headers, &body)?;
            let updated = match sub {
                Some("scale") => {
                    update_scale(rest, &scope, name, &opts, |_| Ok(obj.clone())).await?
                }
                Some("finalize") => {
                    let fin = obj.pointer("/spec/finalizers").cloned();
                    let out = rest
                        .update_with(&scope, name, Some("finalize"), &opts, move |old| {
                            let mut n = old.clone();
                            match &fin {
                                Some(f) => n["spec"]["finalizers"] = f.clone(),
                                None => n["spec"]["finalizers"] = json!([]),
                            }
                            Ok(n)
                        })
                        .await?;
                    out
                }
                _ => {
                    let mut obj = obj;
                    let warnings = admit_fields(&rt, &raw, &mut obj, &opts, Origin::Body)?;
                    let out = rest
                        .update_with(&scope, name, sub, &opts, |_| Ok(obj.clone()))
                        .await?;
                    return Ok(with_warnings(
                        json_response(StatusCode::OK, &out),
                        &warnings,
                    ));
                }
            };
            Ok(json_response(StatusCode::OK, &updated))
        }
        (Method::PATCH, Some(name)) => {
            let opts = write_options(&query, headers)?;
            let (patch_body, patch_raw, ct) = read_body(headers, &body)?;
            let kind = patch::PatchType::from_content_type(&ct).ok_or_else(|| {
                ApiError::UnsupportedMediaType(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json".into(),
                )
            })?;
            let force = match query.get("force").map(String::as_str) {
                None => None,
                Some("true") | Some("1") => Some(true),
                Some(_) => Some(false),
            };
            if kind == patch::PatchType::StrategicMerge && rt.custom.is_some() {
                return Err(crate::crd::strategic_merge_unsupported());
            }
            if kind == patch::PatchType::Apply {
                if sub == Some("scale") {
                    return Err(ApiError::MethodNotAllowed);
                }
                // Apply names its manager; the User-Agent does not stand in.
                if query.get("fieldManager").is_none_or(|m| m.is_empty()) {
                    return Err(crate::apply::patch_options_invalid(
                        resources::validation::ErrorType::Required,
                        "fieldManager",
                        "is required for apply patch",
                    ));
                }
                let mut config = patch_body;
                let warnings = admit_fields(&rt, &patch_raw, &mut config, &opts, Origin::Body)?;
                let applied = crate::apply::apply(
                    rest,
                    &scope,
                    name,
                    sub,
                    config,
                    &opts,
                    force.unwrap_or(false),
                )
                .await?;
                let code = if applied.created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                return Ok(with_warnings(
                    json_response(code, &applied.object),
                    &warnings,
                ));
            }
            if force.is_some() {
                return Err(crate::apply::patch_options_invalid(
                    resources::validation::ErrorType::Forbidden,
                    "force",
                    "may not be specified for non-apply patch",
                ));
            }
            let out = match sub {
                Some("scale") => {
                    update_scale(rest, &scope, name, &opts, |scale| {
                        patch::apply(kind, scale, &patch_body)
                    })
                    .await?
                }
                _ => {
                    // Field validation applies to the patched object, as upstream.
                    let warnings = std::sync::Mutex::new(Vec::new());
                    let out = rest
                        .update_with(&scope, name, sub, &opts, |old| {
                            let mut patched = patch::apply(kind, old, &patch_body)?;
                            let raw = serde_json::to_vec(&patched).map_err(ApiError::internal)?;
                            *warnings.lock().unwrap_or_else(|e| e.into_inner()) =
                                admit_fields(&rt, &raw, &mut patched, &opts, Origin::Patch)?;
                            Ok(patched)
                        })
                        .await?;
                    let warnings = warnings.into_inner().unwrap_or_else(|e| e.into_inner());
                    return Ok(with_warnings(
                        json_response(StatusCode::OK, &out),
                        &warnings,
                    ));
                }
            };
            Ok(json_response(StatusCode::OK, &out))
        }
        (Method::DELETE, Some(name)) => {
            let opts = delete_options(headers, &body, &query)?;
            match rest.delete(&scope, name, &opts).await? {
                Deleted::Gone(o) => Ok(json_response(StatusCode::OK, &o)),
                Deleted::Pending(o) => Ok(json_response(StatusCode::ACCEPTED, &o)),
            }
        }
        (Method::DELETE, None) => {
            if !rt.verbs.iter().any(|v| v == "deletecollection") {
                return Err(ApiError::MethodNotAllowed);
            }
            let list = list_options(&query)?;
            let opts = delete_options(headers, &body, &query)?;
            let items = rest.delete_collection(&scope, &list, &opts).await?;
            let body = json!({
                "kind": rt.list_kind,
                "apiVersion": rt.api_version(),
                "metadata": {},
                "items": items,
            });
            Ok(json_response(StatusCode::OK, &body))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn delete_options(
    headers: &HeaderMap,
    bytes: &Bytes,
    q: &HashMap<String, String>,
) -> Result<DeleteOptions, ApiError> {
    let mut v = if bytes.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        decode_bytes(&content_type(headers), bytes)?.0
    };
    if let Some(g) = q.get("gracePeriodSeconds") {
        v["gracePeriodSeconds"] = json!(g
            .parse::<i64>()
            .map_err(|_| ApiError::BadRequest(format!("invalid gracePeriodSeconds {g:?}")))?);
    }
    if let Some(p) = q.get("propagationPolicy") {
        v["propagationPolicy"] = json!(p);
    }
    if let Some(d) = q.get("dryRun") {
        v["dryRun"] = json!([d]);
    }
    DeleteOptions::from_json(&v)
}

/// The `autoscaling/v1` Scale view of a scalable object.
fn scale_of(rt: &ResourceType, obj: &Value) -> Result<Value, ApiError> {
    if let Some(paths) = rt.custom.as_ref().and_then(|c| c.scale.as_ref()) {
        return Ok(crate::crd::scale_of(paths, obj));
    }
    // ReplicationControllers select with a plain label map.
    let selector = match obj.pointer("/spec/selector") {
        Some(s) if rt.group.is_empty() => {
            crate::subresources::selector_string(&json!({ "matchLabels": s }))
        }
        Some(s) => crate::subresources::selector_string(s),
        None => String::new(),
    };
    let int = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    Ok(crate::subresources::scale(
        obj,
        int("/spec/replicas"),
        int("/status/replicas"),
        &selector,
    ))
}

/// Writes `spec.replicas` of the parent from a Scale produced by `f` from the current Scale.
async fn update_scale<F>(
    rest: &Rest,
    scope: &Scope,
    name: &str,
    opts: &WriteOptions,
    f: F,
) -> Result<Value, ApiError>
where
    F: Fn(&Value) -> Result<Value, ApiError> + Send + Sync,
{
    let rt = scope.rt.clone();
    let out = rest
        .update_with(scope, name, Some("scale"), opts, |old| {
            let scale = scale_of(&rt, old)?;
            let wanted = f(&scale)?;
            let replicas = wanted
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if replicas < 0 {
                return Err(ApiError::Invalid {
                    kind: "Scale".into(),
                    group: "autoscaling".into(),
                    name: name.to_string(),
                    causes: vec![resources::validation::FieldError {
                        error_type: resources::validation::ErrorType::Invalid,
                        field: "spec.replicas".into(),
                        bad_value: Some(json!(replicas)),
                        detail: "must be greater than or equal to 0".into(),
                    }],
                });
            }
            let mut n = old.clone();
            if let Some(rv) = wanted
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
            {
                n["metadata"]["resourceVersion"] = json!(rv);
            } else if let Some(m) = n.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            match rt.custom.as_ref().and_then(|c| c.scale.as_ref()) {
                Some(paths) => crate::crd::set_spec_replicas(paths, &mut n, replicas),
                None => n["spec"]["replicas"] = json!(replicas),
            }
            Ok(n)
        })
        .await?;
    scale_of(&rt, &out)
}

const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

async fn watch(
    st: &Arc<AppState>,
    scope: Scope,
    opts: ListOptions,
    q: &HashMap<String, String>,
    accept: &str,
) -> Result<Response, ApiError> {
    let send_initial = q.get("sendInitialEvents").is_some_and(|s| s == "true");
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|s| s == "true");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_else(|| Duration::from_secs(1800 + rand::random::<u64>() % 1800));
    let as_table = table::wants_table(accept);
    let include = IncludeObject::parse(q.get("includeObject").map(String::as_str));
    let rt = scope.rt.clone();
    let (initial, from, events) = match st.rest.watch(&scope, &opts, send_initial).await {
        Ok(w) => w,
        Err(e @ ApiError::Expired(_)) => {
            // As kube-apiserver: a 200 whose only event is the 410 Status.
            let line = json!({"type": "ERROR", "object": e.status()});
            let mut body = serde_json::to_vec(&line).unwrap_or_default();
            body.push(b'\n');
            return Ok(json_bytes(body));
        }
        Err(e) => return Err(e),
    };
    let encode = {
        let rt = rt.clone();
        let first = std::sync::atomic::AtomicBool::new(true);
        move |ev: &WatchEvent| -> Bytes {
            let object = if as_table && ev.event_type != "BOOKMARK" && ev.event_type != "ERROR" {
                let with_columns = first.swap(false, std::sync::atomic::Ordering::Relaxed);
                let meta = json!({"resourceVersion": meta_str(&ev.object, "resourceVersion").unwrap_or_default()});
                table::table(
                    &rt,
                    std::slice::from_ref(&ev.object),
                    meta,
                    include,
                    with_columns,
                )
            } else {
                ev.object.clone()
            };
            let mut line = serde_json::to_vec(&json!({"type": ev.event_type, "object": object}))
                .unwrap_or_default();
            line.push(b'\n');
            Bytes::from(line)
        }
    };
    let bookmark = {
        let rt = rt.clone();
        move |rv: i64, initial_end: bool| -> WatchEvent {
            let mut meta = json!({"resourceVersion": rv.to_string()});
            if initial_end {
                meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            WatchEvent {
                event_type: "BOOKMARK",
                object: json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": meta}),
            }
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut events = Box::pin(events);
        let mut last_rv = from;
        for ev in &initial {
            if tx.send(encode(ev)).await.is_err() {
                return;
            }
        }
        if send_initial && bookmarks && tx.send(encode(&bookmark(from, true))).await.is_err() {
            return;
        }
        let mut tick = tokio::time::interval(BOOKMARK_INTERVAL);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(encode(&bookmark(last_rv, false))).await.is_err() {
                        return;
                    }
                }
                ev = events.next() => match ev {
                    None => return,
                    Some(Ok(ev)) => {
                        if let Some(rv) = meta_str(&ev.object, "resourceVersion").and_then(|r| r.parse().ok()) {
                            last_rv = rv;
                        }
                        if tx.send(encode(&ev)).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        let _ = tx.send(encode(&WatchEvent { event_type: "ERROR", object: e.status() })).await;
                        return;
                    }
                },
            }
        }
    });
    let stream = tokio_stream_from(rx).map(Ok::<_, std::convert::Infallible>);
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// A list response body: a Table, or `<Kind>List` written from the stored bytes.
fn encode_list(
    rt: &ResourceType,
    items: Vec<store::KeyValue>,
    meta: Value,
    as_table: bool,
    include: IncludeObject,
) -> Result<Vec<u8>, ApiError> {
    if as_table {
        // Rows are written one at a time so only one decoded object is
        // alive at once, however long the list.
        let now = jiff::Timestamp::now();
        let mut head = table::assemble(rt, Vec::new(), meta, true);
        if let Some(o) = head.as_object_mut() {
            o.remove("rows");
        }
        let mut out = serde_json::to_vec(&head).map_err(ApiError::internal)?;
        out.pop(); // the closing brace
        out.extend_from_slice(b",\"rows\":[");
        for (i, kv) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let row = table::row(rt, &Rest::decode(rt, kv)?, include, now);
            serde_json::to_writer(&mut out, &row).map_err(ApiError::internal)?;
        }
        out.extend_from_slice(b"]}");
        return Ok(out);
    }
    let mut out =
        Vec::with_capacity(items.iter().map(|kv| kv.value.len() + 32).sum::<usize>() + 256);
    out.extend_from_slice(b"{\"kind\":");
    serde_json::to_writer(&mut out, &rt.list_kind).map_err(ApiError::internal)?;
    out.extend_from_slice(b",\"apiVersion\":");
    serde_json::to_writer(&mut out, &rt.api_version()).map_err(ApiError::internal)?;
    out.extend_from_slice(b",\"metadata\":");
    serde_json::to_writer(&mut out, &meta).map_err(ApiError::internal)?;
    out.extend_from_slice(b",\"items\":[");
    let raw = Rest::serves_stored_form(rt);
    for (i, kv) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if raw {
            Rest::write_stored(&mut out, kv)?;
        } else {
            serde_json::to_writer(&mut out, &Rest::decode(rt, kv)?).map_err(ApiError::internal)?;
        }
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// A 200 with an already-serialized JSON body.
pub fn json_bytes(body: impl Into<Body>) -> Response {
    let mut r = (StatusCode::OK, body.into()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = parse_path("/api/v1/namespaces/default/pods/web/status").unwrap();
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.resource, "pods");
        assert_eq!(t.name.as_deref(), Some("web"));
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = parse_path("/api/v1/namespaces/default").unwrap();
        assert_eq!(
            (
                t.resource.as_str(),
                t.name.as_deref(),
                t.namespace.as_deref()
            ),
            ("namespaces", Some("default"), None)
        );
        let t = parse_path("/api/v1/namespaces/kube-system/finalize").unwrap();
        assert_eq!(t.subresource.as_deref(), Some("finalize"));
        let t = parse_path("/apis/apps/v1/deployments").unwrap();
        assert_eq!(
            (t.group.as_str(), t.resource.as_str(), t.namespace),
            ("apps", "deployments", None)
        );
        let t = parse_path("/api/v1/namespaces/default/configmaps").unwrap();
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert!(parse_path("/apis/apps").is_none());
        assert!(parse_path("/foo").is_none());
    }
}
