//! Names outside the cluster zone go to the node's resolvers, as CoreDNS's
//! `forward . /etc/resolv.conf` sends them: the query as the client wrote
//! it, over UDP (TCP when the client used TCP, or when a UDP answer comes
//! back truncated), upstreams taken in turn until one answers.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Where the node's resolvers are listed.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// How long one upstream gets to answer before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// The `nameserver` addresses of a resolv.conf, port 53.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next()? == "nameserver").then_some(())?;
            // A scoped IPv6 address (`fe80::1%eth0`) is kept without its scope.
            let ip: IpAddr = words.next()?.split('%').next()?.parse().ok()?;
            Some(SocketAddr::new(ip, 53))
        })
        .collect()
}

/// Whether sending to `upstream` would reach this server itself.
pub fn is_self(upstream: &SocketAddr, listen: &[SocketAddr]) -> bool {
    listen.iter().any(|l| {
        l == upstream
            || (l.port() == upstream.port()
                && l.ip().is_unspecified()
                && (upstream.ip().is_loopback() || upstream.ip().is_unspecified()))
    })
}

pub(crate) struct Forwarder {
    upstreams: Vec<SocketAddr>,
    next: AtomicUsize,
    timeout: Duration,
}

fn message_id(bytes: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
}

fn is_truncated(bytes: &[u8]) -> bool {
    bytes.get(2).is_some_and(|b| b & 0x02 != 0)
}

async fn udp_exchange(
    upstream: SocketAddr,
    query: &[u8],
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let id = message_id(query);
    let mut buf = vec![0u8; 65535];
    tokio::time::timeout(timeout, async {
        loop {
            let n = socket.recv(&mut buf).await?;
            // Only the answer to this query; anything else is stray.
            if n >= 12 && message_id(&buf[..n]) == id {
                return Ok(buf[..n].to_vec());
            }
        }
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream did not answer"))?
}

async fn tcp_exchange(
    upstream: SocketAddr,
    query: &[u8],
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let len = u16::try_from(query.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "query too long"))?;
    tokio::time::timeout(timeout, async {
        let mut stream = TcpStream::connect(upstream).await?;
        let mut out = Vec::with_capacity(query.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(query);
        stream.write_all(&out).await?;
        let n = stream.read_u16().await? as usize;
        let mut buf = vec![0u8; n];
        stream.read_exact(&mut buf).await?;
        Ok(buf)
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "upstream did not answer"))?
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder {
            upstreams,
            next: AtomicUsize::new(0),
            timeout: UPSTREAM_TIMEOUT,
        }
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// The upstreams in the order to try them this time: each query starts
    /// at the next one, so the load spreads.
    fn order(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        let n = self.upstreams.len();
        let start = if n == 0 {
            0
        } else {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        };
        (0..n).map(move |i| self.upstreams[(start + i) % n])
    }

    /// The first answer an upstream gives to `query` (wire format), or
    /// `None` if none does. Over UDP a truncated answer is asked again over
    /// TCP, and the full one returned if it fits in `max_udp`.
    pub async fn forward(&self, query: &[u8], tcp: bool, max_udp: usize) -> Option<Vec<u8>> {
        for upstream in self.order() {
            let answer = if tcp {
                tcp_exchange(upstream, query, self.timeout).await
            } else {
                match udp_exchange(upstream, query, self.timeout).await {
                    Ok(a) if is_truncated(&a) => {
                        match tcp_exchange(upstream, query, self.timeout).await {
                            Ok(full) if full.len() <= max_udp => Ok(full),
                            _ => Ok(a),
                        }
                    }
                    other => other,
                }
            };
            match answer {
                Ok(a) => return Some(a),
                Err(e) => tracing::debug!(%upstream, error = %e, "upstream failed"),
            }
        }
        None
    }

    /// Resolves `name` upstream (for an ExternalName's target).
    pub async fn lookup(&self, name: &Name, qtype: RecordType) -> Option<Message> {
        let mut query = Message::query();
        query.metadata.recursion_desired = true;
        query.add_query(Query::query(name.clone(), qtype));
        let bytes = query.to_vec().ok()?;
        let answer = self.forward(&bytes, false, 65535).await?;
        Message::from_vec(&answer).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf() {
        let text = "# comment\nsearch example.org\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\noptions ndots:5\nnameserver bogus\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                "10.0.0.2:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn never_itself() {
        let listen: Vec<SocketAddr> = vec![
            "10.0.0.5:53".parse().unwrap(),
            "0.0.0.0:5353".parse().unwrap(),
        ];
        assert!(is_self(&"10.0.0.5:53".parse().unwrap(), &listen));
        assert!(is_self(&"127.0.0.1:5353".parse().unwrap(), &listen));
        assert!(!is_self(&"127.0.0.53:53".parse().unwrap(), &listen));
        assert!(!is_self(&"10.0.0.2:53".parse().unwrap(), &listen));
    }
}
