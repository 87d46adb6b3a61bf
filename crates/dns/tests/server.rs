//! The server over real sockets on 127.0.0.1: cluster names over UDP and
//! TCP, forwarding to a fake upstream, truncation, failures.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dns::{Cluster, Config, Server};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;

/// A resolver that answers every A query with 192.0.2.1, except
/// `big.example.`: truncated over UDP, 60 addresses over TCP.
struct FakeUpstream {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
}

fn upstream_answer(query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let mut m = Message::response(q.metadata.id, q.metadata.op_code);
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.queries = q.queries.clone();
    let question = q.queries.first()?;
    if question.name().to_ascii() == "big.example." {
        if tcp {
            for i in 0..60u8 {
                m.add_answer(Record::from_rdata(
                    question.name().clone(),
                    60,
                    RData::A(A(Ipv4Addr::new(198, 51, 100, i))),
                ));
            }
        } else {
            m.metadata.truncation = true;
        }
    } else if question.query_type() == RecordType::A {
        m.add_answer(Record::from_rdata(
            question.name().clone(),
            60,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
        ));
    }
    m.to_vec().ok()
}

async fn fake_upstream(shutdown: CancellationToken) -> anyhow::Result<FakeUpstream> {
    let udp = UdpSocket::bind("127.0.0.1:0").await?;
    let addr = udp.local_addr()?;
    let tcp = TcpListener::bind(addr).await?;
    let queries = Arc::new(AtomicUsize::new(0));
    let (count, stop) = (queries.clone(), shutdown.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                r = udp.recv_from(&mut buf) => {
                    let Ok((n, peer)) = r else { continue };
                    count.fetch_add(1, Ordering::SeqCst);
                    if let Some(a) = upstream_answer(&buf[..n], false) {
                        let _ = udp.send_to(&a, peer).await;
                    }
                }
            }
        }
    });
    let (count, stop) = (queries.clone(), shutdown.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = (tokio::select! {
                _ = stop.cancelled() => return,
                r = tcp.accept() => r,
            }) else {
                continue;
            };
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let Ok(n) = s.read_u16().await else { return };
                let mut buf = vec![0u8; n as usize];
                if s.read_exact(&mut buf).await.is_err() {
                    return;
                }
                if let Some(a) = upstream_answer(&buf, true) {
                    let _ = s.write_u16(a.len() as u16).await;
                    let _ = s.write_all(&a).await;
                }
            });
        }
    });
    Ok(FakeUpstream { addr, queries })
}

fn test_cluster() -> Arc<Cluster> {
    let c = Arc::new(Cluster::new());
    c.apply_namespace(&namespace("default"));
    c.apply_service(&service("default", "web", "10.43.0.20", &[("http", 80)]));
    c.apply_service(&service("default", "nginx", "None", &[("web", 80)]));
    c.apply_endpoint_slice(&slice(
        "default",
        "nginx-1",
        "nginx",
        &[("10.42.0.10", Some("web-0")), ("10.42.0.11", Some("web-1"))],
        80,
    ));
    c.apply_service(&external("default", "ext", "example.com"));
    c.set_synced();
    c
}

async fn start(
    cluster: Arc<Cluster>,
    upstreams: Vec<SocketAddr>,
    shutdown: &CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let config = Config {
        listen: vec!["127.0.0.1:0".parse()?],
        upstreams,
        ..Config::default()
    };
    let server = Server::bind(config, cluster).await?;
    let addr = server.local_addrs()[0];
    tokio::spawn(server.run(shutdown.clone()));
    Ok(addr)
}

#[tokio::test]
async fn cluster_names_over_udp_and_tcp() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let upstream = fake_upstream(shutdown.clone()).await?;
    let cluster = test_cluster();
    let server = start(cluster.clone(), vec![upstream.addr], &shutdown).await?;

    let m = udp_query(
        server,
        "web.default.svc.cluster.local.",
        RecordType::A,
        None,
    )
    .await?;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(answers(&m), ["A 10.43.0.20"]);
    assert_eq!(m.answers[0].ttl, 5);

    let m = tcp_query(
        server,
        "web-0.nginx.default.svc.cluster.local.",
        RecordType::A,
    )
    .await?;
    assert_eq!(answers(&m), ["A 10.42.0.10"]);

    let m = tcp_query(
        server,
        "_web._tcp.nginx.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .await?;
    assert_eq!(answers(&m).len(), 2);
    assert_eq!(m.additionals.len(), 2);

    let m = udp_query(
        server,
        "nope.default.svc.cluster.local.",
        RecordType::A,
        Some(1232),
    )
    .await?;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    assert!(m.edns.is_some(), "an EDNS query gets an OPT record back");

    let m = udp_query(
        server,
        "web.default.svc.cluster.local.",
        RecordType::AAAA,
        None,
    )
    .await?;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);

    let m = udp_query(server, "20.0.43.10.in-addr.arpa.", RecordType::PTR, None).await?;
    assert_eq!(answers(&m), ["PTR web.default.svc.cluster.local."]);
    assert_eq!(
        upstream.queries.load(Ordering::SeqCst),
        0,
        "cluster names never go upstream"
    );

    // A change is answered at once: the index is read per query.
    let t = Instant::now();
    cluster.apply_service(&service("default", "late", "10.43.0.99", &[("http", 80)]));
    let m = udp_query(
        server,
        "late.default.svc.cluster.local.",
        RecordType::A,
        None,
    )
    .await?;
    assert_eq!(answers(&m), ["A 10.43.0.99"]);
    assert!(t.elapsed() < Duration::from_secs(1));
    cluster.delete_service(&service("default", "late", "10.43.0.99", &[]));
    let m = udp_query(
        server,
        "late.default.svc.cluster.local.",
        RecordType::A,
        None,
    )
    .await?;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn forwards_other_names() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let upstream = fake_upstream(shutdown.clone()).await?;
    let server = start(test_cluster(), vec![upstream.addr], &shutdown).await?;

    let m = udp_query(server, "example.com.", RecordType::A, None).await?;
    assert_eq!(answers(&m), ["A 192.0.2.1"]);
    assert!(
        m.metadata.recursion_available,
        "the upstream's answer as it gave it"
    );
    let m = tcp_query(server, "example.com.", RecordType::A).await?;
    assert_eq!(answers(&m), ["A 192.0.2.1"]);

    // Reverse names that are not the cluster's fall through to the upstream.
    let before = upstream.queries.load(Ordering::SeqCst);
    let m = udp_query(server, "1.2.0.192.in-addr.arpa.", RecordType::PTR, None).await?;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(upstream.queries.load(Ordering::SeqCst), before + 1);

    // ExternalName: the CNAME, then what the upstream says of the target.
    let m = udp_query(
        server,
        "ext.default.svc.cluster.local.",
        RecordType::A,
        None,
    )
    .await?;
    assert_eq!(answers(&m), ["CNAME example.com.", "A 192.0.2.1"]);

    // Truncated over UDP: asked again over TCP; the full answer goes to a
    // client that can take it, a truncated one to a client that cannot.
    let m = udp_query(server, "big.example.", RecordType::A, Some(4096)).await?;
    assert_eq!(m.answers.len(), 60);
    assert!(!m.metadata.truncation);
    let m = udp_query(server, "big.example.", RecordType::A, None).await?;
    assert!(m.metadata.truncation);
    let m = tcp_query(server, "big.example.", RecordType::A).await?;
    assert_eq!(m.answers.len(), 60);

    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn servfail_without_upstream() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    // Nothing listens there: the upstream refuses at once.
    let dead = {
        let s = UdpSocket::bind("127.0.0.1:0").await?;
        s.local_addr()?
    };
    let server = start(test_cluster(), vec![dead], &shutdown).await?;
    let m = udp_query(server, "example.com.", RecordType::A, None).await?;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    // An ExternalName whose target cannot be resolved: NODATA, as CoreDNS.
    let m = udp_query(
        server,
        "ext.default.svc.cluster.local.",
        RecordType::A,
        None,
    )
    .await?;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.answers.is_empty());
    // Cluster names do not need the upstream.
    let m = udp_query(
        server,
        "web.default.svc.cluster.local.",
        RecordType::A,
        None,
    )
    .await?;
    assert_eq!(answers(&m), ["A 10.43.0.20"]);
    shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn bind_errors_are_returned() -> anyhow::Result<()> {
    let taken = UdpSocket::bind("127.0.0.1:0").await?;
    let config = Config {
        listen: vec![taken.local_addr()?],
        upstreams: vec!["127.0.0.1:9".parse()?],
        ..Config::default()
    };
    let err = Server::bind(config, Arc::new(Cluster::new())).await.err();
    assert!(
        matches!(
            err,
            Some(dns::Error::Bind {
                protocol: "udp",
                ..
            })
        ),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn malformed_queries() -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let server = start(test_cluster(), vec!["127.0.0.1:9".parse()?], &shutdown).await?;
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    // A header claiming one question, and no question.
    socket
        .send_to(&[0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff], server)
        .await?;
    let mut buf = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf)).await??;
    let m = Message::from_vec(&buf[..n])?;
    assert_eq!(m.metadata.id, 0x1234);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    shutdown.cancel();
    Ok(())
}
