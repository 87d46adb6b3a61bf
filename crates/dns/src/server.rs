//! The listeners: UDP and TCP on every listen address, DNS messages in and
//! out with hickory-proto. Cluster names are answered on the receiving task
//! (no I/O but the reply); forwarded queries get a task of their own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::DNSClass;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::forward::{self, Forwarder};
use crate::kubernetes::{Chase, Kubernetes, Outcome};
use crate::{Config, Error};

/// The UDP payload size every client may receive (RFC 1035).
const MIN_UDP_SIZE: usize = 512;
/// What the server advertises in its OPT record (the DNS flag day value).
const EDNS_PAYLOAD: u16 = 1232;
/// A TCP client that sends nothing for this long is hung up on.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// Answers one message at a time, from the index or the upstreams.
pub(crate) struct Handler {
    cluster: Arc<Cluster>,
    zone: Kubernetes,
    forwarder: Forwarder,
}

/// What is left to do for a query after the index was consulted.
pub(crate) enum Step {
    /// The reply (or nothing, for messages that get none).
    Done(Option<Vec<u8>>),
    Forward {
        query: Vec<u8>,
        failed: Message,
        tcp: bool,
        max_udp: usize,
    },
    Chase {
        reply: Message,
        chase: Chase,
        tcp: bool,
        max_udp: usize,
    },
}

/// Encodes `msg`, cut to `max` bytes: additional records go first, then
/// answers, with TC set when answers had to go.
fn encode_within(msg: &mut Message, max: usize) -> Option<Vec<u8>> {
    let bytes = msg.to_vec().ok()?;
    if bytes.len() <= max {
        return Some(bytes);
    }
    msg.additionals.clear();
    if let Ok(b) = msg.to_vec() {
        if b.len() <= max {
            return Some(b);
        }
    }
    msg.metadata.truncation = true;
    msg.authorities.clear();
    while !msg.answers.is_empty() {
        let keep = msg.answers.len() / 2;
        msg.answers.truncate(keep);
        if let Ok(b) = msg.to_vec() {
            if b.len() <= max {
                return Some(b);
            }
        }
    }
    msg.to_vec().ok()
}

fn reply_to(query: &Message, rcode: ResponseCode) -> Message {
    let mut m = Message::response(query.metadata.id, query.metadata.op_code);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.checking_disabled = query.metadata.checking_disabled;
    m.metadata.response_code = rcode;
    m.queries = query.queries.clone();
    if query.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        m.set_edns(edns);
    }
    m
}

fn encode(mut m: Message, tcp: bool, max_udp: usize) -> Option<Vec<u8>> {
    encode_within(&mut m, if tcp { u16::MAX as usize } else { max_udp })
}

impl Handler {
    pub fn new(cluster: Arc<Cluster>, config: &Config) -> Handler {
        let local_ips: Vec<IpAddr> = config
            .listen
            .iter()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
            .collect();
        let upstreams = if config.upstreams.is_empty() {
            match std::fs::read_to_string(forward::RESOLV_CONF) {
                Ok(text) => forward::parse_resolv_conf(&text),
                Err(e) => {
                    tracing::warn!(path = forward::RESOLV_CONF, error = %e, "no upstream resolvers");
                    Vec::new()
                }
            }
        } else {
            config.upstreams.clone()
        };
        let upstreams: Vec<SocketAddr> = upstreams
            .into_iter()
            .filter(|u| {
                let me = forward::is_self(u, &config.listen);
                if me {
                    tracing::warn!(upstream = %u, "skipping upstream: it is this server");
                }
                !me
            })
            .collect();
        Handler {
            cluster,
            zone: Kubernetes::new(&config.cluster_domain, config.ttl, local_ips),
            forwarder: Forwarder::new(upstreams),
        }
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        self.forwarder.upstreams()
    }

    /// Everything that needs no I/O.
    pub fn answer(&self, bytes: &[u8], tcp: bool) -> Step {
        let query = match Message::from_vec(bytes) {
            Ok(q) => q,
            Err(_) if bytes.len() >= 12 && bytes[2] & 0x80 == 0 => {
                // The header is there: say the message was malformed.
                let mut m =
                    Message::response(u16::from_be_bytes([bytes[0], bytes[1]]), OpCode::Query);
                m.metadata.response_code = ResponseCode::FormErr;
                return Step::Done(m.to_vec().ok());
            }
            Err(_) => return Step::Done(None),
        };
        if query.metadata.message_type != MessageType::Query {
            return Step::Done(None);
        }
        let max_udp = query.edns.as_ref().map_or(MIN_UDP_SIZE, |e| {
            (e.max_payload() as usize).max(MIN_UDP_SIZE)
        });
        if query.metadata.op_code != OpCode::Query {
            return Step::Done(encode(reply_to(&query, ResponseCode::NotImp), tcp, max_udp));
        }
        let [q] = query.queries.as_slice() else {
            return Step::Done(encode(
                reply_to(&query, ResponseCode::FormErr),
                tcp,
                max_udp,
            ));
        };
        let outcome = if q.query_class() == DNSClass::IN {
            let st = self.cluster.read();
            self.zone.resolve(
                &st,
                self.cluster.has_synced(),
                self.cluster.serial(),
                q.name(),
                q.query_type(),
            )
        } else {
            Outcome::Forward
        };
        match outcome {
            Outcome::Forward => Step::Forward {
                query: bytes.to_vec(),
                failed: reply_to(&query, ResponseCode::ServFail),
                tcp,
                max_udp,
            },
            Outcome::Reply(r) => {
                let mut m = reply_to(&query, r.rcode);
                m.metadata.authoritative = r.rcode != ResponseCode::Refused;
                m.answers = r.answers;
                m.authorities = r.authorities;
                m.additionals = r.additionals;
                match r.chase {
                    Some(chase) => Step::Chase {
                        reply: m,
                        chase,
                        tcp,
                        max_udp,
                    },
                    None => Step::Done(encode(m, tcp, max_udp)),
                }
            }
        }
    }

    /// The rest: upstream queries.
    pub async fn complete(&self, step: Step) -> Option<Vec<u8>> {
        match step {
            Step::Done(reply) => reply,
            Step::Forward {
                query,
                failed,
                tcp,
                max_udp,
            } => match self.forwarder.forward(&query, tcp, max_udp).await {
                Some(answer) => Some(answer),
                None => encode(failed, tcp, max_udp),
            },
            Step::Chase {
                mut reply,
                chase,
                tcp,
                max_udp,
            } => {
                // As CoreDNS: the CNAME and what the target resolves to, or
                // NODATA when the upstreams cannot be asked.
                if let Some(upstream) = self.forwarder.lookup(&chase.target, chase.qtype).await {
                    reply.answers = chase.prefix;
                    reply.answers.extend(upstream.answers.iter().cloned());
                    reply.authorities.clear();
                    reply.metadata.truncation |= upstream.metadata.truncation;
                }
                encode(reply, tcp, max_udp)
            }
        }
    }
}

/// Bound listeners, ready to serve.
pub struct Server {
    udp: Vec<Arc<UdpSocket>>,
    tcp: Vec<TcpListener>,
    addrs: Vec<SocketAddr>,
    handler: Arc<Handler>,
}

impl Server {
    /// Binds UDP and TCP on every listen address (port 0 picks one free
    /// port for both) and reads the upstreams.
    pub async fn bind(config: Config, cluster: Arc<Cluster>) -> Result<Server, Error> {
        if config.listen.is_empty() {
            return Err(Error::NoListenAddress);
        }
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        let mut addrs = Vec::new();
        for addr in &config.listen {
            let u = UdpSocket::bind(addr).await.map_err(|source| Error::Bind {
                protocol: "udp",
                address: *addr,
                source,
            })?;
            let bound = u.local_addr().map_err(|source| Error::Bind {
                protocol: "udp",
                address: *addr,
                source,
            })?;
            let t = TcpListener::bind(bound)
                .await
                .map_err(|source| Error::Bind {
                    protocol: "tcp",
                    address: bound,
                    source,
                })?;
            udp.push(Arc::new(u));
            tcp.push(t);
            addrs.push(bound);
        }
        let mut config = config;
        config.listen = addrs.clone();
        let handler = Arc::new(Handler::new(cluster, &config));
        tracing::info!(listen = ?addrs, upstreams = ?handler.upstreams(), domain = %config.cluster_domain, "cluster DNS listening");
        Ok(Server {
            udp,
            tcp,
            addrs,
            handler,
        })
    }

    /// The bound addresses (UDP and TCP share each).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Serves until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let mut tasks = JoinSet::new();
        // One receiver per core on each UDP socket, so answers use them all.
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        for socket in &self.udp {
            for _ in 0..workers {
                tasks.spawn(serve_udp(
                    socket.clone(),
                    self.handler.clone(),
                    shutdown.clone(),
                ));
            }
        }
        for listener in self.tcp {
            tasks.spawn(serve_tcp(listener, self.handler.clone(), shutdown.clone()));
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

async fn serve_udp(socket: Arc<UdpSocket>, handler: Arc<Handler>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; 65535];
    let mut pending = JoinSet::new();
    loop {
        let (n, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        while pending.try_join_next().is_some() {}
        match handler.answer(&buf[..n], false) {
            Step::Done(Some(reply)) => {
                if let Err(e) = socket.send_to(&reply, peer).await {
                    tracing::debug!(%peer, error = %e, "udp send failed");
                }
            }
            Step::Done(None) => {}
            step => {
                let (socket, handler, shutdown) =
                    (socket.clone(), handler.clone(), shutdown.clone());
                pending.spawn(async move {
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        reply = handler.complete(step) => {
                            if let Some(reply) = reply {
                                let _ = socket.send_to(&reply, peer).await;
                            }
                        }
                    }
                });
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, handler: Arc<Handler>, shutdown: CancellationToken) {
    let mut conns = JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "tcp accept failed");
                    continue;
                }
            },
        };
        while conns.try_join_next().is_some() {}
        let (handler, shutdown) = (handler.clone(), shutdown.clone());
        conns.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = serve_conn(stream, &handler) => {}
            }
        });
    }
    conns.shutdown().await;
}

/// Length-prefixed messages on one connection, answered in order.
async fn serve_conn(mut stream: TcpStream, handler: &Handler) -> std::io::Result<()> {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => len as usize,
            _ => return Ok(()),
        };
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await?;
        let step = handler.answer(&buf, true);
        if let Some(reply) = handler.complete(step).await {
            let Ok(n) = u16::try_from(reply.len()) else {
                return Ok(());
            };
            let mut out = Vec::with_capacity(reply.len() + 2);
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&reply);
            stream.write_all(&out).await?;
        }
    }
}
