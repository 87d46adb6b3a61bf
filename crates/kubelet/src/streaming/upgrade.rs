//! The HTTP/1.1 upgrade to the runtime's stream server (`http://127.0.0.1:<port>/exec/<token>`
//! from CRI): one request, the 101 answer, then the raw connection.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const HEADER_PROTOCOL_VERSION: &str = "X-Stream-Protocol-Version";
pub const SPDY_31: &str = "SPDY/3.1";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEAD: usize = 64 * 1024;

/// The connection after the runtime's answer. For a 101, reads and writes
/// continue the upgraded protocol (bytes the server sent right after its
/// answer are kept in the buffer).
pub type RuntimeIo = BufReader<TcpStream>;

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names lowercase, in order.
    pub headers: Vec<(String, String)>,
    pub io: RuntimeIo,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body of a refusal (what upstream shows after "unable to upgrade
    /// connection: "), read up to its length or 64 KiB.
    pub async fn body(mut self) -> String {
        let len = self
            .header("content-length")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(MAX_HEAD)
            .min(MAX_HEAD);
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while got < len {
            match tokio::time::timeout(Duration::from_secs(5), self.io.read(&mut buf[got..])).await
            {
                Ok(Ok(n)) if n > 0 => got += n,
                _ => break,
            }
        }
        buf.truncate(got);
        String::from_utf8_lossy(&buf).trim_end().to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("invalid stream URL {0:?}")]
    Url(String),
    #[error("connecting to the runtime's stream server at {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the runtime's stream server: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid answer from the runtime's stream server: {0}")]
    Answer(String),
}

/// Sends `method url` with `Connection: Upgrade`, `Upgrade: <upgrade>` and
/// `headers`, and reads the answer's head.
pub async fn request(
    url: &str,
    method: &str,
    upgrade: &str,
    headers: &[(String, String)],
) -> Result<Answer, UpgradeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| UpgradeError::Url(url.to_string()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(UpgradeError::Url(url.to_string()));
    }
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
        .await
        .map_err(|_| UpgradeError::Connect {
            addr: authority.to_string(),
            source: std::io::ErrorKind::TimedOut.into(),
        })?
        .map_err(|source| UpgradeError::Connect {
            addr: authority.to_string(),
            source,
        })?;
    let _ = tcp.set_nodelay(true);
    let mut io = BufReader::new(tcp);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: Upgrade\r\nUpgrade: {upgrade}\r\nContent-Length: 0\r\n"
    );
    for (n, v) in headers {
        if v.contains(['\r', '\n']) || n.contains(['\r', '\n', ':']) {
            continue;
        }
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    io.get_mut().write_all(head.as_bytes()).await?;
    read_head(io).await
}

async fn read_head(mut io: RuntimeIo) -> Result<Answer, UpgradeError> {
    let mut line = String::new();
    let mut total = 0usize;
    let n = io.read_line(&mut line).await?;
    if n == 0 {
        return Err(UpgradeError::Answer("connection closed".into()));
    }
    total += n;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| UpgradeError::Answer(format!("status line {:?}", line.trim_end())))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        let n = io.read_line(&mut line).await?;
        total += n;
        if n == 0 || total > MAX_HEAD {
            return Err(UpgradeError::Answer("incomplete header".into()));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if let Some((name, value)) = l.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    Ok(Answer {
        status,
        headers,
        io,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn upgrade_keeps_bytes_sent_after_the_answer() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(req.starts_with("POST /exec/tok HTTP/1.1\r\n"), "{req}");
            assert!(req.contains("X-Stream-Protocol-Version: v4.channel.k8s.io\r\n"));
            s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\nearly")
                .await
                .unwrap();
        });
        let mut a = request(
            &format!("http://{addr}/exec/tok"),
            "POST",
            SPDY_31,
            &[(HEADER_PROTOCOL_VERSION.into(), "v4.channel.k8s.io".into())],
        )
        .await
        .unwrap();
        assert_eq!(a.status, 101);
        assert_eq!(
            a.header("x-stream-protocol-version"),
            Some("v4.channel.k8s.io")
        );
        let mut rest = Vec::new();
        a.io.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"early");
    }

    #[tokio::test]
    async fn refusal_body_is_readable() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 12\r\n\r\nnot allowed\n")
                .await
                .unwrap();
        });
        let a = request(&format!("http://{addr}/x"), "POST", SPDY_31, &[])
            .await
            .unwrap();
        assert_eq!(a.status, 403);
        assert_eq!(a.body().await, "not allowed");
        assert!(matches!(
            request("https://x/y", "GET", SPDY_31, &[]).await,
            Err(UpgradeError::Url(_))
        ));
    }
}
