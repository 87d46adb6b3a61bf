//! tcpSocket probes (upstream `pkg/probe/tcp`), and the dialer the HTTP
//! probe shares, with Go's error wording since it ends up in events.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

use super::worker::Outcome;

/// `net.JoinHostPort`: IPv6 literals get brackets.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An OS error as Go prints it: `connection refused`, not
/// `Connection refused (os error 111)`.
pub fn go_errno(e: &io::Error) -> String {
    let text = match e.raw_os_error() {
        Some(code) => {
            let s = io::Error::from_raw_os_error(code).to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
        None => e.to_string(),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Connects as Go's dialer would, failing with Go's message
/// (`dial tcp 10.42.0.5:80: connect: connection refused`).
pub async fn dial(host: &str, port: u16) -> Result<TcpStream, String> {
    let addr = join_host_port(host, port);
    let addrs: Vec<std::net::SocketAddr> = match tokio::net::lookup_host(&addr).await {
        Ok(a) => a.collect(),
        Err(_) => return Err(format!("dial tcp: lookup {host}: no such host")),
    };
    let mut last = format!("dial tcp: lookup {host}: no such host");
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("dial tcp {a}: connect: {}", go_errno(&e)),
        }
    }
    Err(last)
}

/// Succeeds if a TCP connection opens within the timeout.
pub async fn probe(host: &str, port: u16, timeout: Duration) -> Outcome {
    match tokio::time::timeout(timeout, dial(host, port)).await {
        Ok(Ok(_conn)) => Outcome::Success(String::new()),
        Ok(Err(msg)) => Outcome::Failure(msg),
        Err(_) => Outcome::Failure(format!(
            "dial tcp {}: i/o timeout",
            join_host_port(host, port)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_and_closed_ports() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let ok = probe("127.0.0.1", port, Duration::from_secs(1)).await;
        assert_eq!(ok, Outcome::Success(String::new()));
        drop(l);
        let closed = probe("127.0.0.1", port, Duration::from_secs(1)).await;
        assert_eq!(
            closed,
            Outcome::Failure(format!(
                "dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
    }

    #[test]
    fn host_port() {
        assert_eq!(join_host_port("::1", 80), "[::1]:80");
        assert_eq!(join_host_port("10.0.0.1", 80), "10.0.0.1:80");
    }
}
