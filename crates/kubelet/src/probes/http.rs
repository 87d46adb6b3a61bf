//! httpGet probes (upstream `pkg/probe/http`): GET with `kube-probe/1.33`,
//! no keep-alive, no certificate checks for HTTPS, redirects followed only to
//! the same host, at most 10 KiB of body read; 200–399 passes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::tcp::{dial, join_host_port};
use super::worker::Outcome;

/// The kubelet's probe User-Agent (`kube-probe/<major>.<minor>`).
pub const USER_AGENT: &str = "kube-probe/1.33";
/// Upstream reads at most this much of a probe's response body.
const MAX_BODY: usize = 10 * 1024;
const MAX_REDIRECTS: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpProbe {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

/// Where one request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Target {
    https: bool,
    host: String,
    port: u16,
    path: String,
}

impl Target {
    fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!(
            "{scheme}://{}{}",
            join_host_port(&self.host, self.port),
            self.path
        )
    }

    /// Resolves a `Location` header against this URL.
    fn join(&self, location: &str) -> Option<Target> {
        let (https, rest) = if let Some(r) = location.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = location.strip_prefix("https://") {
            (true, r)
        } else if location.starts_with('/') {
            return Some(Target {
                path: location.to_string(),
                ..self.clone()
            });
        } else {
            // Relative to the current directory.
            let dir = match self.path.rfind('/') {
                Some(i) => &self.path[..=i],
                None => "/",
            };
            return Some(Target {
                path: format!("{dir}{location}"),
                ..self.clone()
            });
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']')?;
            let port = v6[end + 1..].strip_prefix(':');
            (v6[..end].to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        Some(Target {
            https,
            host,
            port,
            path: path.to_string(),
        })
    }
}

struct Response {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl HttpProbe {
    pub fn url(&self) -> String {
        self.target().url()
    }

    fn target(&self) -> Target {
        Target {
            https: self.https,
            host: self.host.clone(),
            port: self.port,
            path: self.path.clone(),
        }
    }

    pub async fn probe(&self) -> Outcome {
        let mut target = self.target();
        let deadline = tokio::time::Instant::now() + self.timeout;
        for hop in 0.. {
            let url = target.url();
            let resp = match tokio::time::timeout_at(deadline, self.request(&target)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => return Outcome::Failure(format!("Get \"{url}\": {e}")),
                Err(_) => {
                    return Outcome::Failure(format!(
                        "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
                    ))
                }
            };
            let follow = matches!(resp.status.as_u16(), 301 | 302 | 303 | 307 | 308);
            if let (true, Some(next)) = (
                follow,
                resp.location.as_deref().and_then(|l| target.join(l)),
            ) {
                // Another host: stop and judge the redirect itself (a warning).
                if next.host == self.host {
                    if hop >= MAX_REDIRECTS {
                        let url = next.url();
                        return Outcome::Failure(format!(
                            "Get \"{url}\": stopped after 10 redirects"
                        ));
                    }
                    target = next;
                    continue;
                }
            }
            return classify(resp);
        }
        Outcome::Error("unreachable".into())
    }

    async fn request(&self, t: &Target) -> Result<Response, String> {
        let tcp = dial(&t.host, t.port).await?;
        if t.https {
            let tls = tls_connector()?
                .connect(server_name(&t.host)?, tcp)
                .await
                .map_err(|e| format!("tls: {e}"))?;
            self.send(tls, t).await
        } else {
            self.send(tcp, t).await
        }
    }

    async fn send<S>(&self, io: S, t: &Target) -> Result<Response, String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| e.to_string())?;
        let conn = tokio::spawn(conn);
        let req = self.build(t)?;
        let result = async {
            let resp = sender.send_request(req).await.map_err(|e| {
                if e.is_incomplete_message() {
                    "EOF".to_string()
                } else {
                    e.to_string()
                }
            })?;
            let status = resp.status();
            let location = resp
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while buf.len() < MAX_BODY {
                match body.frame().await {
                    Some(Ok(f)) => {
                        if let Some(d) = f.data_ref() {
                            buf.extend_from_slice(d);
                        }
                    }
                    Some(Err(e)) => return Err(e.to_string()),
                    None => break,
                }
            }
            buf.truncate(MAX_BODY);
            Ok(Response {
                status,
                location,
                body: String::from_utf8_lossy(&buf).into_owned(),
            })
        }
        .await;
        conn.abort();
        result
    }

    fn build(&self, t: &Target) -> Result<Request<Empty<Bytes>>, String> {
        let mut req = Request::get(t.path.as_str())
            .body(Empty::new())
            .map_err(|e| format!("parse \"{}\": {e}", t.url()))?;
        let h = req.headers_mut();
        let mut host = join_host_port(&t.host, t.port);
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("host") {
                host = value.clone();
                continue;
            }
            let (Ok(n), Ok(v)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) else {
                continue;
            };
            h.append(n, v);
        }
        let mut set_default = |name: HeaderName, value: &str| {
            if !h.contains_key(&name) {
                if let Ok(v) = HeaderValue::try_from(value) {
                    h.insert(name, v);
                }
            }
        };
        set_default(hyper::header::USER_AGENT, USER_AGENT);
        set_default(hyper::header::ACCEPT, "*/*");
        h.insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        let host = HeaderValue::try_from(host).map_err(|e| e.to_string())?;
        h.insert(hyper::header::HOST, host);
        Ok(req)
    }
}

fn classify(resp: Response) -> Outcome {
    let code = resp.status.as_u16();
    if (200..400).contains(&code) {
        if code >= 300 {
            return Outcome::Warning(format!(
                "Probe terminated redirects, Response body: {}",
                resp.body
            ));
        }
        return Outcome::Success(resp.body);
    }
    Outcome::Failure(format!("HTTP probe failed with statuscode: {code}"))
}

fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, String> {
    rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    static CONNECTOR: std::sync::OnceLock<Result<tokio_rustls::TlsConnector, String>> =
        std::sync::OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let config = client::tls::unverified_client_config()
                .map_err(|e| format!("tls: {e}"))?
                .with_no_client_auth();
            Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-route-per-path HTTP server on 127.0.0.1 that records requests.
    async fn server(
        routes: Vec<(&'static str, String)>,
    ) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                let mut buf = vec![0; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split(' ').nth(1).unwrap_or("").to_string();
                seen2.lock().unwrap().push(req);
                let resp = routes
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".into()
                    });
                if resp == "hang" {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                }
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        (port, seen)
    }

    fn probe(port: u16, path: &str) -> HttpProbe {
        HttpProbe {
            https: false,
            host: "127.0.0.1".into(),
            port,
            path: path.into(),
            headers: vec![("X-Custom".into(), "yes".into())],
            timeout: Duration::from_secs(1),
        }
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn status_codes_redirects_and_headers() {
        let big = "x".repeat(20_000);
        let (port, seen) = server(vec![
            ("/ok", ok("fine")),
            ("/big", ok(&big)),
            ("/fail", "HTTP/1.1 500 Oops\r\ncontent-length: 0\r\n\r\n".into()),
            ("/hop", "HTTP/1.1 302 Found\r\nlocation: /ok\r\ncontent-length: 0\r\n\r\n".into()),
            (
                "/away",
                "HTTP/1.1 301 Moved\r\nlocation: http://example.invalid/\r\ncontent-length: 3\r\n\r\nbye"
                    .into(),
            ),
            ("/loop", "HTTP/1.1 302 Found\r\nlocation: /loop\r\ncontent-length: 0\r\n\r\n".into()),
            ("/slow", "hang".into()),
        ])
        .await;
        assert_eq!(
            probe(port, "/ok").probe().await,
            Outcome::Success("fine".into())
        );
        let req = seen.lock().unwrap()[0].to_lowercase();
        assert!(req.contains("user-agent: kube-probe/1.33"), "{req}");
        assert!(req.contains("x-custom: yes"), "{req}");
        assert!(req.contains(&format!("host: 127.0.0.1:{port}")), "{req}");
        match probe(port, "/big").probe().await {
            Outcome::Success(b) => assert_eq!(b.len(), MAX_BODY),
            o => panic!("{o:?}"),
        }
        assert_eq!(
            probe(port, "/fail").probe().await,
            Outcome::Failure("HTTP probe failed with statuscode: 500".into())
        );
        assert_eq!(
            probe(port, "/hop").probe().await,
            Outcome::Success("fine".into())
        );
        assert_eq!(
            probe(port, "/away").probe().await,
            Outcome::Warning("Probe terminated redirects, Response body: bye".into())
        );
        assert_eq!(
            probe(port, "/loop").probe().await,
            Outcome::Failure(format!(
                "Get \"http://127.0.0.1:{port}/loop\": stopped after 10 redirects"
            ))
        );
        assert_eq!(
            probe(port, "/slow").probe().await,
            Outcome::Failure(format!(
                "Get \"http://127.0.0.1:{port}/slow\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
            ))
        );
    }

    #[tokio::test]
    async fn refused() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        assert_eq!(
            probe(port, "/").probe().await,
            Outcome::Failure(format!(
                "Get \"http://127.0.0.1:{port}/\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
    }

    #[test]
    fn location_resolution() {
        let t = Target {
            https: false,
            host: "10.0.0.1".into(),
            port: 8080,
            path: "/a/b".into(),
        };
        assert_eq!(t.join("/x").unwrap().url(), "http://10.0.0.1:8080/x");
        assert_eq!(t.join("c").unwrap().url(), "http://10.0.0.1:8080/a/c");
        assert_eq!(t.join("https://h:9/z").unwrap().url(), "https://h:9/z");
        assert_eq!(t.join("http://[::1]/").unwrap().url(), "http://[::1]:80/");
    }
}
