//! The pod "connect" subresources (`rest.Connecter` upstream): `log`,
//! `exec`, `attach` and `portforward`, proxied to the kubelet of the pod's
//! node over TLS with the API server's kubelet client certificate.
//!
//! Locations and validation follow `pkg/registry/core/pod/strategy.go`
//! (`LogLocation`, `ExecLocation`, `AttachLocation`, `PortForwardLocation`).
//! Upgrade requests (WebSocket or SPDY) are forwarded as they are and the
//! kubelet's `101` is spliced to the client both ways (the kubelet does the
//! protocol translation); logs stream through as the kubelet writes them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::error::{ApiError, StatusCause};
use crate::handlers::AppState;
use crate::rest::Scope;

/// The kubelet port when the node does not say (`--kubelet-port` default).
const DEFAULT_KUBELET_PORT: u16 = 10250;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a kubelet's error body is kept.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// One of the connect subresources of a pod, or `nodes/proxy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    /// The pod's name; for `nodes/proxy`, the node's.
    pub pod: String,
    pub subresource: &'static str,
    /// For `nodes/proxy`: the kubelet path after `proxy/`.
    pub path: String,
}

/// Recognizes `/api/v1/namespaces/{ns}/pods/{name}/{log|exec|attach|portforward}`.
pub fn target(method: &Method, path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let ["api", "v1", "nodes", node, "proxy", rest @ ..] = segs.as_slice() {
        return (!node.is_empty()).then(|| Target {
            namespace: String::new(),
            pod: node.to_string(),
            subresource: "proxy",
            path: rest.join("/"),
        });
    }
    let ["api", "v1", "namespaces", ns, "pods", pod, sub] = segs.as_slice() else {
        return None;
    };
    let subresource = match (*sub, method) {
        ("log", &Method::GET) => "log",
        ("exec", &Method::GET | &Method::POST) => "exec",
        ("attach", &Method::GET | &Method::POST) => "attach",
        ("portforward", &Method::GET | &Method::POST) => "portforward",
        _ => return None,
    };
    if ns.is_empty() || pod.is_empty() {
        return None;
    }
    Some(Target {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        subresource,
        path: String::new(),
    })
}

/// The TLS client config for kubelets: presents `cert_pem`/`key_pem` and,
/// as upstream without `--kubelet-certificate-authority`, does not verify
/// the kubelet's (self-signed) serving certificate.
pub fn kubelet_client_config(
    cert_pem: &str,
    key_pem: &str,
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("kubelet client certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("kubelet client key: {e}"))?;
    let mut config = client::tls::unverified_client_config()
        .map_err(|e| e.to_string())?
        .with_client_auth_cert(certs, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves one connect request.
pub async fn serve(st: &Arc<AppState>, t: Target, req: Request) -> Response {
    match proxy(st, &t, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn query_pairs(req: &Request) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(req.uri().query().unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn flag(q: &[(String, String)], name: &str) -> bool {
    matches!(param(q, name), Some("true" | "1" | "True" | "TRUE" | "t"))
}

async fn get(
    st: &AppState,
    resource: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Value, ApiError> {
    let rt = st
        .rest
        .registry()
        .get("", "v1", resource)
        .cloned()
        .ok_or(ApiError::NoSuchResource)?;
    st.rest
        .get(
            &Scope {
                rt,
                namespace: namespace.map(str::to_string),
            },
            name,
        )
        .await
}

/// Every container name in upstream's `VisitContainers` order.
fn container_names(pod: &Value) -> Vec<String> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| {
            pod.pointer(&format!("/spec/{k}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// `validateContainer`: an empty name picks the only container.
pub fn validate_container(pod: &Value, name: &str, container: &str) -> Result<String, ApiError> {
    if container.is_empty() {
        let containers = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        return match containers.len() {
            1 => Ok(containers[0]
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()),
            0 => Err(ApiError::BadRequest(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => Err(ApiError::BadRequest(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                container_names(pod).join(" ")
            ))),
        };
    }
    if !container_names(pod).iter().any(|c| c == container) {
        return Err(ApiError::BadRequest(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    Ok(container.to_string())
}

/// `host:port` of a node's kubelet: InternalIP, else Hostname, and the
/// port from `status.daemonEndpoints`.
pub fn kubelet_address(node: &Value) -> Option<(String, u16)> {
    let addrs = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let pick = |kind: &str| {
        addrs
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(kind))
            .and_then(|a| a.get("address").and_then(Value::as_str))
            .filter(|a| !a.is_empty())
            .map(str::to_string)
    };
    let host = pick("InternalIP").or_else(|| pick("Hostname"))?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p > 0 && *p <= u16::MAX as u64)
        .map(|p| p as u16)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Some((host, port))
}

fn encode(pairs: &[(&str, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// The kubelet path and query for `t` (`None`: a log of an unscheduled pod,
/// which is empty).
fn location(t: &Target, pod: &Value, q: &[(String, String)]) -> Result<Option<String>, ApiError> {
    let name = &t.pod;
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ns = &t.namespace;
    match t.subresource {
        "log" => {
            let container = validate_container(pod, name, param(q, "container").unwrap_or(""))?;
            if node.is_empty() {
                return Ok(None);
            }
            let mut p: Vec<(&str, String)> = Vec::new();
            for f in ["follow", "previous", "timestamps"] {
                if flag(q, f) {
                    p.push((f, "true".into()));
                }
            }
            for n in ["sinceSeconds", "tailLines", "limitBytes"] {
                if let Some(v) = param(q, n).filter(|v| !v.is_empty()) {
                    let parsed: i64 = v.parse().map_err(|_| {
                        ApiError::BadRequest(format!(
                            "{n}: invalid value {v:?}: must be an integer"
                        ))
                    })?;
                    p.push((n, parsed.to_string()));
                }
            }
            if let Some(v) = param(q, "sinceTime").filter(|v| !v.is_empty()) {
                let ts: jiff::Timestamp = v.parse().map_err(|_| {
                    ApiError::BadRequest(format!("sinceTime: invalid value {v:?}: must be RFC3339"))
                })?;
                p.push(("sinceTime", crate::object::format_time(ts)));
            }
            Ok(Some(format!(
                "/containerLogs/{ns}/{name}/{container}?{}",
                encode(&p)
            )))
        }
        "exec" | "attach" => {
            let container = validate_container(pod, name, param(q, "container").unwrap_or(""))?;
            if node.is_empty() {
                return Err(ApiError::BadRequest(format!(
                    "pod {name} does not have a host assigned"
                )));
            }
            let mut p: Vec<(&str, String)> = Vec::new();
            for f in ["stdin", "stdout", "stderr", "tty"] {
                if flag(q, f) {
                    p.push((f, "1".into()));
                }
            }
            if t.subresource == "exec" {
                for (k, v) in q {
                    if k == "command" {
                        p.push(("command", v.clone()));
                    }
                }
            }
            Ok(Some(format!(
                "/{}/{ns}/{name}/{container}?{}",
                t.subresource,
                encode(&p)
            )))
        }
        _ => {
            if node.is_empty() {
                return Err(ApiError::BadRequest(format!(
                    "pod {name} does not have a host assigned"
                )));
            }
            let ports: Vec<&str> = q
                .iter()
                .filter(|(k, _)| k == "ports")
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            for p in &ports {
                if !p.parse::<u16>().is_ok_and(|n| n > 0) {
                    return Err(ApiError::BadRequest(format!(
                        "ports: Invalid value: {p:?}: must be a valid port number"
                    )));
                }
            }
            let query = if ports.is_empty() {
                String::new()
            } else {
                format!("?{}", encode(&[("port", ports.join(","))]))
            };
            Ok(Some(format!("/portForward/{ns}/{name}{query}")))
        }
    }
}

/// Request headers that are not forwarded: the client's credentials stay
/// here (the kubelet trusts the API server's certificate, not them).
fn forwarded(name: &HeaderName, upgrade: bool) -> bool {
    let hop = matches!(
        name.as_str(),
        "host"
            | "authorization"
            | "cookie"
            | "proxy-authorization"
            | "keep-alive"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "content-length"
    );
    let upgrade_only = matches!(name.as_str(), "connection" | "upgrade");
    !hop && (upgrade || !upgrade_only)
}

async fn proxy(st: &Arc<AppState>, t: &Target, mut req: Request) -> Result<Response, ApiError> {
    let q = query_pairs(&req)?;
    let (path, node_name) = if t.subresource == "proxy" {
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        (format!("/{}{query}", t.path), t.pod.clone())
    } else {
        let pod = get(st, "pods", Some(&t.namespace), &t.pod).await?;
        let Some(path) = location(t, &pod, &q)? else {
            return Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response());
        };
        let node_name = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        (path, node_name)
    };
    let node_name = node_name.as_str();
    let node = get(st, "nodes", None, node_name).await?;
    let (host, port) = kubelet_address(&node).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "node {node_name} has no address to reach its kubelet"
        ))
    })?;
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let tls = st
        .kubelet_client
        .clone()
        .ok_or_else(|| ApiError::Internal("no kubelet client credentials are configured".into()))?;
    let url = format!(
        "https://{}/{}",
        host_port(&host, port),
        path.trim_start_matches('/')
    );
    let io = dial(&host, port, tls)
        .await
        .map_err(|e| backend_error(&req, &url, e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| backend_error(&req, &url, e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended with an error");
        }
    });
    let mut out = hyper::Request::builder()
        .method(if t.subresource == "log" {
            Method::GET
        } else {
            req.method().clone()
        })
        .uri(&path);
    for (name, value) in req.headers() {
        if forwarded(name, upgrade) {
            out = out.header(name, value);
        }
    }
    out = out.header(header::HOST, host_port(&host, port));
    let out = out
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(ApiError::internal)?;
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let resp = sender
        .send_request(out)
        .await
        .map_err(|e| backend_error(&req, &url, e.to_string()))?;

    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client_upgrade) = client_upgrade else {
            return Err(ApiError::Internal(
                "the kubelet upgraded a plain request".into(),
            ));
        };
        let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
        for (name, value) in resp.headers() {
            answer = answer.header(name, value);
        }
        let answer = answer.body(Body::empty()).map_err(ApiError::internal)?;
        tokio::spawn(async move {
            let (kubelet, client) = match tokio::join!(hyper::upgrade::on(resp), client_upgrade) {
                (Ok(k), Ok(c)) => (k, c),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(error = %e, "stream upgrade failed");
                    return;
                }
            };
            let (mut k, mut c) = (TokioIo::new(kubelet), TokioIo::new(client));
            let _ = tokio::io::copy_bidirectional(&mut c, &mut k).await;
        });
        return Ok(answer);
    }
    if upgrade {
        // A refused upgrade goes back as the kubelet said it (clients show
        // the body after "unable to upgrade connection: ").
        let status = resp.status();
        let ct = resp.headers().get(header::CONTENT_TYPE).cloned();
        let body = read_limited(resp.into_body()).await;
        let mut r = (status, body).into_response();
        if let Some(ct) = ct {
            r.headers_mut().insert(header::CONTENT_TYPE, ct);
        }
        return Ok(r);
    }
    let status = resp.status();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&read_limited(resp.into_body()).await).into_owned();
        return Err(response_error(status, text, &t.pod));
    }
    // Logs (and node proxy answers): streamed through as they come.
    let content_type = if t.subresource == "proxy" {
        resp.headers().get(header::CONTENT_TYPE).cloned()
    } else {
        None
    };
    let mut r = Response::new(Body::new(resp.into_body()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or_else(|| HeaderValue::from_static("text/plain")),
    );
    Ok(r)
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn dial(
    host: &str,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let addr = host_port(host, port);
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&addr))
        .await
        .map_err(|_| format!("dial tcp {addr}: i/o timeout"))?
        .map_err(|e| format!("dial tcp {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("invalid kubelet host {host:?}: {e}"))?,
    };
    tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("tls handshake with {addr}: {e}"))
}

/// A kubelet that cannot be reached: a 500 with the transport's error, as
/// upstream returns Go's `url.Error` (`Get "https://…": dial tcp …`).
fn backend_error(req: &Request, url: &str, e: impl std::fmt::Display) -> ApiError {
    let method = if req.method() == Method::GET {
        "Get"
    } else {
        "Post"
    };
    ApiError::Custom {
        code: StatusCode::INTERNAL_SERVER_ERROR,
        reason: "",
        message: format!("{method} \"{url}\": {e}"),
        causes: Vec::<StatusCause>::new(),
        retry_after_seconds: 0,
    }
}

/// A kubelet's refusal as upstream's `GenericHttpResponseChecker` turns it
/// into a Status.
fn response_error(status: StatusCode, body: String, name: &str) -> ApiError {
    match status {
        StatusCode::BAD_REQUEST => ApiError::BadRequest(body),
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::Internal(body),
        StatusCode::NOT_FOUND => ApiError::Custom {
            code: status,
            reason: "NotFound",
            message: format!("the server could not find the requested resource ( pods/log {name})"),
            causes: vec![StatusCause {
                reason: "UnexpectedServerResponse".into(),
                message: body,
            }],
            retry_after_seconds: 0,
        },
        _ => ApiError::Custom {
            code: status,
            reason: "",
            message: format!(
                "the server responded with the status code {} but did not return more information ( pods/log {name})",
                status.as_u16()
            ),
            causes: vec![StatusCause {
                reason: "UnexpectedServerResponse".into(),
                message: body,
            }],
            retry_after_seconds: 0,
        },
    }
}

async fn read_limited(body: hyper::body::Incoming) -> bytes::Bytes {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = Vec::new();
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(d) = frame.into_data() {
            buf.extend_from_slice(&d);
            if buf.len() > MAX_ERROR_BODY {
                buf.truncate(MAX_ERROR_BODY);
                break;
            }
        }
    }
    bytes::Bytes::from(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], node: &str) -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "nodeName": node,
                "initContainers": [{"name": "init"}],
                "containers": containers.iter().map(|c| json!({"name": c})).collect::<Vec<_>>(),
            }
        })
    }

    fn q(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn t(sub: &'static str) -> Target {
        Target {
            namespace: "default".into(),
            pod: "web".into(),
            subresource: sub,
            path: String::new(),
        }
    }

    #[test]
    fn targets() {
        assert_eq!(
            target(&Method::GET, "/api/v1/namespaces/default/pods/web/log"),
            Some(t("log"))
        );
        assert_eq!(
            target(&Method::POST, "/api/v1/namespaces/default/pods/web/exec"),
            Some(t("exec"))
        );
        assert_eq!(
            target(&Method::POST, "/api/v1/namespaces/default/pods/web/log"),
            None
        );
        assert_eq!(
            target(&Method::GET, "/api/v1/namespaces/default/pods/web/status"),
            None
        );
        assert_eq!(
            target(&Method::GET, "/apis/apps/v1/namespaces/d/pods/web/log"),
            None
        );
    }

    #[test]
    fn container_choice_matches_upstream_messages() {
        let two = pod(&["a", "b"], "n1");
        let e = validate_container(&two, "web", "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "a container name must be specified for pod web, choose one of: [init a b]"
        );
        assert_eq!(validate_container(&two, "web", "init").unwrap(), "init");
        assert_eq!(
            validate_container(&two, "web", "y")
                .unwrap_err()
                .to_string(),
            "container y is not valid for pod web"
        );
        assert_eq!(
            validate_container(&pod(&["a"], "n1"), "web", "").unwrap(),
            "a"
        );
    }

    #[test]
    fn locations() {
        let p = pod(&["a"], "n1");
        let l = location(
            &t("exec"),
            &p,
            &q(&[
                ("command", "sh"),
                ("command", "-c"),
                ("command", "echo hi"),
                ("stdout", "true"),
                ("tty", "true"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            l,
            "/exec/default/web/a?stdout=1&tty=1&command=sh&command=-c&command=echo+hi"
        );
        let l = location(&t("log"), &p, &q(&[("follow", "true"), ("tailLines", "5")]))
            .unwrap()
            .unwrap();
        assert_eq!(l, "/containerLogs/default/web/a?follow=true&tailLines=5");
        let l = location(
            &t("portforward"),
            &p,
            &q(&[("ports", "80"), ("ports", "8080")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(l, "/portForward/default/web?port=80%2C8080");
        // Unscheduled: an empty log, a 400 for streams.
        let p = pod(&["a"], "");
        assert_eq!(location(&t("log"), &p, &[]).unwrap(), None);
        assert_eq!(
            location(&t("attach"), &p, &[]).unwrap_err().to_string(),
            "pod web does not have a host assigned"
        );
    }

    #[test]
    fn kubelet_client_identity_is_minted() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::pki::Pki::load_or_create(&crate::pki::PkiConfig {
            dir: dir.path().into(),
            sans_dns: vec!["localhost".into()],
            sans_ip: vec![],
        })
        .unwrap();
        let cfg = pki.kubelet_client_config().unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(cfg.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn kubelet_addresses() {
        let n = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "node-a"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}}}});
        assert_eq!(kubelet_address(&n), Some(("10.0.0.5".into(), 10251)));
        let n = json!({"status": {"addresses": [{"type": "Hostname", "address": "node-a"}]}});
        assert_eq!(kubelet_address(&n), Some(("node-a".into(), 10250)));
        assert_eq!(kubelet_address(&json!({})), None);
    }
}
