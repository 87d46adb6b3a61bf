//! A minimal HTTPS client for the API server: one keep-alive HTTP/1.1
//! connection per [`Client`], authenticated with the admin client
//! certificate the server wrote into its data dir.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

/// The TLS settings every connection to one server uses.
pub fn tls_config(data_dir: &Path) -> Result<Arc<rustls::ClientConfig>> {
    let tls = data_dir.join("server/tls");
    let pem = |name: &str| -> Result<Vec<u8>> {
        std::fs::read(tls.join(name))
            .with_context(|| format!("reading {}", tls.join(name).display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem("server-ca.crt")?.as_slice()) {
        roots.add(cert.context("server CA certificate")?)?;
    }
    let chain = rustls_pemfile::certs(&mut pem("client-admin.crt")?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .context("admin client certificate")?;
    let key = rustls_pemfile::private_key(&mut pem("client-admin.key")?.as_slice())
        .context("admin client key")?
        .context("no private key in client-admin.key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One HTTPS connection to the API server.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Client {
    pub async fn connect(addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> Result<Client> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(ServerName::from(addr.ip()), tcp)
            .await
            .context("TLS handshake")?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Client {
            sender,
            host: addr.to_string(),
        })
    }

    /// Sends a request and returns the response with its body unread.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>> {
        self.send_typed(method, path, accept, "application/json", body)
            .await
    }

    /// Like [`Client::send`], with the body's content type given.
    pub async fn send_typed(
        &mut self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        content_type: &str,
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>> {
        self.sender.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host)
            .header(ACCEPT, accept.unwrap_or("application/json"));
        if body.is_some() {
            req = req.header(CONTENT_TYPE, content_type);
        }
        let req = req.body(Full::new(body.unwrap_or_default()))?;
        Ok(self.sender.send_request(req).await?)
    }

    /// Sends a request and reads the whole response body.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        accept: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes)> {
        let resp = self.send(method, path, accept, body).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    pub async fn get(&mut self, path: &str) -> Result<(StatusCode, Bytes)> {
        self.call(Method::GET, path, None, None).await
    }

    /// A GET that must answer 200 OK; `what` names it in the error.
    pub async fn get_ok(&mut self, path: &str, what: &str) -> Result<Bytes> {
        let (status, body) = self.get(path).await?;
        anyhow::ensure!(
            status == StatusCode::OK,
            "{what}: {}",
            crate::create::describe(status, &body)
        );
        Ok(body)
    }

    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<(StatusCode, Bytes)> {
        self.call(Method::POST, path, None, Some(body)).await
    }

    /// A PATCH with the given patch content type.
    pub async fn patch(
        &mut self,
        path: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes)> {
        let resp = self
            .send_typed(Method::PATCH, path, None, content_type, Some(body))
            .await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// Percent-encodes a query parameter value (continue tokens, resource versions).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
