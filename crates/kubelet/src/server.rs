//! The kubelet's HTTPS endpoint (port 10250): logs, exec, attach,
//! port-forward, the pod list and stats, for the API server only.
//!
//! TLS with a client certificate from the cluster CA is required; only the
//! API server's kubelet client identity (CN `kube-apiserver-kubelet-client`)
//! is authorized, as with kubelet webhook authorization granting the
//! apiserver `nodes/proxy` and nobody else. Routes and errors follow the
//! kubelet's `server.go`: errors are plain text with a status code, which
//! the API server turns into a `metav1.Status`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::cri::{self, api};
use crate::logs;
use crate::streaming::upgrade::{self, HEADER_PROTOCOL_VERSION, SPDY_31};
use crate::streaming::{portforward, remotecommand, wsstream, StreamError};

/// The only client identity served (the API server's `--kubelet-client-certificate`).
pub const API_SERVER_CLIENT_CN: &str = "kube-apiserver-kubelet-client";

/// What the server needs from the pod manager.
pub trait PodHost: Send + Sync + 'static {
    /// The container of a pod (its current instance, or the one before with
    /// `previous`). Errors carry the message shown to the user.
    fn container(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<ContainerRef, HostError>;
    /// The pod's sandbox id, for port-forward.
    fn sandbox(&self, ns: &str, pod: &str) -> Result<String, HostError>;
    /// The pods bound to this node (`/pods`).
    fn pods(&self) -> Vec<Pod>;
    /// The `/stats/summary` document.
    fn stats_summary(&self) -> BoxFuture<'static, serde_json::Value>;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRef {
    pub container_id: String,
    pub log_path: PathBuf,
    pub running: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// 404, e.g. `pod does not exist`, `container not found ("web")`.
    #[error("{0}")]
    NotFound(String),
    /// 400, e.g. `container "web" in pod "x" is waiting to start: ContainerCreating`.
    #[error("{0}")]
    BadRequest(String),
}

/// Where and with which identity the server listens.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub cert_pem: String,
    pub key_pem: String,
    /// The cluster CA: client certificates must chain to it.
    pub client_ca_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid {what}: {reason}")]
    Pem { what: &'static str, reason: String },
    #[error("building the TLS config: {0}")]
    Tls(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("minting the serving certificate: {0}")]
    Mint(#[from] rcgen::Error),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Body = BoxBody<Bytes, std::io::Error>;

struct State {
    rt: cri::Runtime,
    host: Arc<dyn PodHost>,
}

/// The rustls config: the serving cert, client certs checked against the
/// CA (absent ones let through, to be answered 401), HTTP/1.1 only since
/// every stream is an HTTP/1.1 upgrade.
pub fn tls_config(cfg: &ServerConfig) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let pem = |what, reason: String| ServerError::Pem { what, reason };
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cfg.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| pem("serving certificate", e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(cfg.key_pem.as_bytes())
        .map_err(|e| pem("serving key", e.to_string()))?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(cfg.client_ca_pem.as_bytes()) {
        let ca = ca.map_err(|e| pem("client CA", e.to_string()))?;
        roots.add(ca).map_err(|e| pem("client CA", e.to_string()))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| ServerError::Tls(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves until `shutdown` fires. Streams already running are left to end
/// on their own.
pub async fn serve(
    config: ServerConfig,
    rt: cri::Runtime,
    host: Arc<dyn PodHost>,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let tls = tls_config(&config)?;
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServerError::Listen {
            addr: config.addr,
            source,
        })?;
    tracing::info!(addr = %config.addr, "kubelet server listening");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let state = Arc::new(State { rt, host });
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "kubelet TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let user = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| common_name(c.as_ref()).unwrap_or_default());
            let svc = hyper::service::service_fn(move |req| {
                let state = state.clone();
                let user = user.clone();
                async move { Ok::<_, Infallible>(route(state, user, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "kubelet connection ended with an error");
            }
        });
    }
}

fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

fn text(code: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(msg.into())));
    *r.status_mut() = code;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json(v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(serde_json::to_vec(v).unwrap_or_default())));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

fn host_error(e: HostError) -> Response<Body> {
    match e {
        HostError::NotFound(m) => text(StatusCode::NOT_FOUND, m),
        HostError::BadRequest(m) => text(StatusCode::BAD_REQUEST, m),
    }
}

/// The kubelet's answer to a failed runtime call (`streaming.WriteError`):
/// gRPC NotFound is a 404, anything else a 500, the message as text.
fn runtime_error(status: &tonic::Status) -> Response<Body> {
    let code = match status.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text(
        code,
        format!(
            "rpc error: code = {:?} desc = {}",
            status.code(),
            status.message()
        ),
    )
}

fn stream_error(e: StreamError) -> Response<Body> {
    match e {
        StreamError::Refused { status, message } => text(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            message,
        ),
        other => text(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

async fn route(state: Arc<State>, user: Option<String>, req: Request<Incoming>) -> Response<Body> {
    let Some(user) = user else {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    if user != API_SERVER_CLIENT_CN {
        let verb = if req.method() == Method::GET {
            "get"
        } else {
            "create"
        };
        let sub = match segs.first() {
            Some(&"stats") => "stats",
            Some(&"healthz") => "healthz",
            _ => "proxy",
        };
        return text(
            StatusCode::FORBIDDEN,
            format!("Forbidden (user={user}, verb={verb}, resource=nodes, subresource={sub})"),
        );
    }
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(req.uri().query().unwrap_or("")).unwrap_or_default();
    match (req.method().clone(), segs.as_slice()) {
        (Method::GET, ["healthz"]) => text(StatusCode::OK, "ok"),
        (Method::GET, ["pods"]) => {
            let items = state.host.pods();
            json(
                &serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}),
            )
        }
        (Method::GET, ["stats", "summary"]) => json(&state.host.stats_summary().await),
        (Method::GET, ["containerLogs", ns, pod, container]) => {
            container_logs(&state, ns, pod, container, &query)
        }
        (Method::GET | Method::POST, ["exec" | "attach", ns, pod, container])
        | (Method::GET | Method::POST, ["exec" | "attach", ns, pod, _, container]) => {
            let attach = segs[0] == "attach";
            exec(&state, req, ns, pod, container, attach, &query).await
        }
        (Method::GET | Method::POST, ["portForward", ns, pod])
        | (Method::GET | Method::POST, ["portForward", ns, pod, _]) => {
            port_forward(&state, req, ns, pod, &query).await
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn bool_param(q: &[(String, String)], name: &str) -> Result<bool, String> {
    match param(q, name) {
        None | Some("") => Ok(false),
        Some("true" | "1" | "True" | "TRUE" | "t") => Ok(true),
        Some("false" | "0" | "False" | "FALSE" | "f") => Ok(false),
        Some(v) => Err(format!("strconv.ParseBool: parsing {v:?}: invalid syntax")),
    }
}

fn int_param(q: &[(String, String)], name: &str) -> Result<Option<i64>, String> {
    match param(q, name) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("strconv.ParseInt: parsing {v:?}: invalid syntax")),
    }
}

/// `PodLogOptions` from the query, as the kubelet decodes them.
pub fn log_options(q: &[(String, String)]) -> Result<(logs::LogOptions, bool), String> {
    let since_seconds = int_param(q, "sinceSeconds")?;
    let since_time = match param(q, "sinceTime") {
        None | Some("") => None,
        Some(t) => Some(
            t.parse::<jiff::Timestamp>()
                .map_err(|e| format!("parsing time {t:?}: {e}"))?,
        ),
    };
    let since = match (since_seconds, since_time) {
        (Some(s), _) => Some(jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s.max(0))),
        (None, t) => t,
    };
    Ok((
        logs::LogOptions {
            follow: bool_param(q, "follow")?,
            tail_lines: int_param(q, "tailLines")?,
            since,
            timestamps: bool_param(q, "timestamps")?,
            limit_bytes: int_param(q, "limitBytes")?,
        },
        bool_param(q, "previous")?,
    ))
}

fn container_logs(
    state: &Arc<State>,
    ns: &str,
    pod: &str,
    container: &str,
    q: &[(String, String)],
) -> Response<Body> {
    let (opts, previous) = match log_options(q) {
        Ok(o) => o,
        Err(m) => return text(StatusCode::BAD_REQUEST, m),
    };
    let c = match state.host.container(ns, pod, container, previous) {
        Ok(c) => c,
        Err(e) => return host_error(e),
    };
    let (host, ns2, pod2, name) = (
        state.host.clone(),
        ns.to_string(),
        pod.to_string(),
        container.to_string(),
    );
    let id = c.container_id.clone();
    // Following ends once this container instance no longer runs.
    let running: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(move || {
        !previous
            && host
                .container(&ns2, &pod2, &name, false)
                .is_ok_and(|now| now.container_id == id && now.running)
    });
    let body = logs::stream(c.log_path, opts, running).map(|r| r.map(Frame::data));
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(body)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

fn header_str<'a>(req: &'a Request<Incoming>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn is_websocket(req: &Request<Incoming>) -> bool {
    header_str(req, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"))
        && req
            .headers()
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

fn is_spdy(req: &Request<Incoming>) -> bool {
    header_str(req, "upgrade").is_some_and(|u| u.eq_ignore_ascii_case(SPDY_31))
}

/// The client's `Sec-WebSocket-Key`, required for the 101 answer.
fn websocket_key(req: &Request<Incoming>) -> Result<String, Box<Response<Body>>> {
    header_str(req, "sec-websocket-key")
        .map(str::to_string)
        .ok_or_else(|| Box::new(text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key")))
}

/// The 101 answer to a WebSocket upgrade with `protocol` chosen.
fn websocket_accept(key: &str, protocol: &str) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&wsstream::accept_key(key.as_bytes())) {
        h.insert("sec-websocket-accept", v);
    }
    if let Ok(v) = HeaderValue::from_str(protocol) {
        h.insert("sec-websocket-protocol", v);
    }
    r
}

fn offered_protocols(req: &Request<Incoming>) -> Vec<String> {
    wsstream::offered(
        req.headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

async fn exec(
    state: &Arc<State>,
    req: Request<Incoming>,
    ns: &str,
    pod: &str,
    container: &str,
    attach: bool,
    q: &[(String, String)],
) -> Response<Body> {
    let websocket = is_websocket(&req);
    let opts = match remotecommand::Options::from_query(q) {
        Ok(o) => o,
        Err(m) => return text(StatusCode::BAD_REQUEST, m),
    };
    let command: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if !attach && command.is_empty() {
        return text(StatusCode::BAD_REQUEST, "you must specify a command");
    }
    let protocol = if websocket {
        let key = match websocket_key(&req) {
            Ok(k) => k,
            Err(r) => return *r,
        };
        match wsstream::negotiate(&offered_protocols(&req), remotecommand::WEBSOCKET_PROTOCOLS) {
            Some(p) => Some((p, key)),
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unable to upgrade: unable to negotiate protocol: client supports {:?}, server supports {:?}",
                        offered_protocols(&req),
                        remotecommand::WEBSOCKET_PROTOCOLS
                    ),
                )
            }
        }
    } else {
        None
    };
    let c = match state.host.container(ns, pod, container, false) {
        Ok(c) => c,
        Err(e) => return host_error(e),
    };
    // As the kubelet: the request is checked before the upgrade is.
    if !websocket && !is_spdy(&req) {
        return text(StatusCode::BAD_REQUEST, "Upgrade request required");
    }
    let mut runtime = state.rt.runtime.clone();
    let url = if attach {
        runtime
            .attach(api::AttachRequest {
                container_id: c.container_id,
                stdin: opts.stdin,
                tty: opts.tty,
                stdout: opts.stdout,
                stderr: opts.stderr,
            })
            .await
            .map(|r| r.into_inner().url)
    } else {
        runtime
            .exec(api::ExecRequest {
                container_id: c.container_id,
                cmd: command,
                tty: opts.tty,
                stdin: opts.stdin,
                stdout: opts.stdout,
                stderr: opts.stderr,
            })
            .await
            .map(|r| r.into_inner().url)
    };
    let url = match url {
        Ok(u) => u,
        Err(s) => return runtime_error(&s),
    };
    match protocol {
        Some((protocol, key)) => {
            let session = match remotecommand::connect_runtime(&url, opts).await {
                Ok(s) => s,
                Err(e) => return stream_error(e),
            };
            let resp = websocket_accept(&key, &protocol);
            tokio::spawn(async move {
                match hyper::upgrade::on(req).await {
                    Ok(up) => {
                        let ws = WebSocketStream::from_raw_socket(
                            TokioIo::new(up),
                            WsRole::Server,
                            None,
                        )
                        .await;
                        remotecommand::serve_websocket(ws, protocol, session).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
                }
            });
            resp
        }
        None => spdy_passthrough(req, &url).await,
    }
}

async fn port_forward(
    state: &Arc<State>,
    req: Request<Incoming>,
    ns: &str,
    pod: &str,
    q: &[(String, String)],
) -> Response<Body> {
    let websocket = is_websocket(&req);
    let tunnel = portforward::tunneling_protocol();
    let key = if websocket {
        match websocket_key(&req) {
            Ok(k) => k,
            Err(r) => return *r,
        }
    } else {
        String::new()
    };
    if websocket && !offered_protocols(&req).contains(&tunnel) {
        return text(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: no tunneling spdy protocols provided",
        );
    }
    let mut ports = Vec::new();
    for p in q
        .iter()
        .filter(|(k, _)| k == "port")
        .flat_map(|(_, v)| v.split(','))
        .filter(|p| !p.is_empty())
    {
        match p.trim().parse::<u16>() {
            Ok(n) if n > 0 => ports.push(n as i32),
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("unable to parse {p:?} as a port"),
                )
            }
        }
    }
    let sandbox = match state.host.sandbox(ns, pod) {
        Ok(s) => s,
        Err(e) => return host_error(e),
    };
    if !websocket && !is_spdy(&req) {
        return text(StatusCode::BAD_REQUEST, "Upgrade request required");
    }
    let url = match state
        .rt
        .runtime
        .clone()
        .port_forward(api::PortForwardRequest {
            pod_sandbox_id: sandbox,
            port: ports,
        })
        .await
    {
        Ok(r) => r.into_inner().url,
        Err(s) => return runtime_error(&s),
    };
    if !websocket {
        return spdy_passthrough(req, &url).await;
    }
    let io = match portforward::connect_runtime(&url).await {
        Ok(io) => io,
        Err(e) => return stream_error(e),
    };
    let resp = websocket_accept(&key, &tunnel);
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(up) => {
                let ws =
                    WebSocketStream::from_raw_socket(TokioIo::new(up), WsRole::Server, None).await;
                portforward::tunnel_websocket(ws, io).await;
            }
            Err(e) => tracing::debug!(error = %e, "port-forward upgrade failed"),
        }
    });
    resp
}

/// A SPDY client is handed to the runtime's stream server as is (the
/// kubelet's `proxyStream`): same protocol offers, the runtime's answer.
async fn spdy_passthrough(req: Request<Incoming>, url: &str) -> Response<Body> {
    let offers: Vec<(String, String)> = req
        .headers()
        .get_all(HEADER_PROTOCOL_VERSION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| (HEADER_PROTOCOL_VERSION.to_string(), p.trim().to_string()))
        .collect();
    let answer = match upgrade::request(url, "POST", SPDY_31, &offers).await {
        Ok(a) => a,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if answer.status != 101 {
        let code = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return text(code, answer.body().await);
    }
    let mut resp = Response::new(full(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static(SPDY_31));
    if let Some(v) = answer
        .header(HEADER_PROTOCOL_VERSION)
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(HEADER_PROTOCOL_VERSION, v);
    }
    tokio::spawn(async move {
        match hyper::upgrade::on(req).await {
            Ok(up) => portforward::splice(TokioIo::new(up), answer.io).await,
            Err(e) => tracing::debug!(error = %e, "SPDY upgrade failed"),
        }
    });
    resp
}

/// The kubelet's self-signed serving certificate in `dir` (`kubelet.crt`,
/// `kubelet.key`, as the kubelet writes them without `--tls-cert-file`),
/// minted on first use for the node's name and addresses. Returns
/// `(cert PEM, key PEM)`.
pub fn load_or_create_serving_cert(
    dir: &Path,
    node_name: &str,
    ips: &[IpAddr],
) -> Result<(String, String), ServerError> {
    let (cert_path, key_path) = (dir.join("kubelet.crt"), dir.join("kubelet.key"));
    if let (Ok(c), Ok(k)) = (
        std::fs::read_to_string(&cert_path),
        std::fs::read_to_string(&key_path),
    ) {
        return Ok((c, k));
    }
    let io = |op, path: &Path| {
        let path = path.to_path_buf();
        move |source| ServerError::Io { op, path, source }
    };
    std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    let mut names = vec![node_name.to_string()];
    if node_name != "localhost" {
        names.push("localhost".into());
    }
    let mut params = rcgen::CertificateParams::new(names)?;
    for ip in ips.iter().chain([IpAddr::from([127, 0, 0, 1])].iter()) {
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress(*ip));
    }
    let now = jiff::Timestamp::now().as_second();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{node_name}@{now}"));
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
    write_private(&cert_path, &cert_pem).map_err(io("writing", &cert_path))?;
    write_private(&key_path, &key_pem).map_err(io("writing", &key_path))?;
    Ok((cert_pem, key_pem))
}

fn write_private(path: &Path, data: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn log_options_from_query() {
        let (o, prev) = log_options(&q(&[
            ("follow", "true"),
            ("tailLines", "10"),
            ("timestamps", "true"),
            ("previous", "true"),
            ("limitBytes", "100"),
        ]))
        .unwrap();
        assert!(o.follow && o.timestamps && prev);
        assert_eq!(o.tail_lines, Some(10));
        assert_eq!(o.limit_bytes, Some(100));
        let (o, _) = log_options(&q(&[("sinceTime", "2024-01-02T03:04:05Z")])).unwrap();
        assert_eq!(o.since, Some("2024-01-02T03:04:05Z".parse().unwrap()));
        let (o, _) = log_options(&q(&[("sinceSeconds", "60")])).unwrap();
        let age = jiff::Timestamp::now().as_second() - o.since.unwrap().as_second();
        assert!((59..=61).contains(&age));
        assert!(log_options(&q(&[("tailLines", "x")])).is_err());
    }

    #[test]
    fn serving_cert_is_minted_once_and_usable() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) =
            load_or_create_serving_cert(dir.path(), "node-a", &[IpAddr::from([10, 0, 0, 5])])
                .unwrap();
        let (c2, _) = load_or_create_serving_cert(dir.path(), "node-a", &[]).unwrap();
        assert_eq!(c, c2);
        let cn = common_name(
            CertificateDer::from_pem_slice(c.as_bytes())
                .unwrap()
                .as_ref(),
        )
        .unwrap();
        assert!(cn.starts_with("node-a@"), "{cn}");
        let cfg = ServerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            cert_pem: c.clone(),
            key_pem: k,
            client_ca_pem: c,
        };
        assert!(tls_config(&cfg).is_ok());
    }
}
