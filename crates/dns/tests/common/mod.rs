//! Objects and a wire client shared by the integration tests and the bench.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

pub fn namespace(name: &str) -> Namespace {
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub fn service(ns: &str, name: &str, ip: &str, ports: &[(&str, i32)]) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            type_: Some(
                if ip.is_empty() {
                    "ExternalName"
                } else {
                    "ClusterIP"
                }
                .into(),
            ),
            cluster_ip: Some(ip.into()).filter(|s: &String| !s.is_empty()),
            cluster_ips: Some(vec![ip.into()]).filter(|_| !ip.is_empty()),
            ports: Some(
                ports
                    .iter()
                    .map(|(n, p)| ServicePort {
                        name: Some(n.to_string()),
                        port: *p,
                        protocol: Some("TCP".into()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn external(ns: &str, name: &str, target: &str) -> Service {
    let mut s = service(ns, name, "", &[]);
    if let Some(spec) = s.spec.as_mut() {
        spec.external_name = Some(target.into());
    }
    s
}

/// A slice of ready endpoints: (address, hostname).
pub fn slice(
    ns: &str,
    name: &str,
    svc: &str,
    eps: &[(&str, Option<&str>)],
    port: i32,
) -> EndpointSlice {
    let mut m = meta(ns, name);
    m.labels = Some([("kubernetes.io/service-name".to_string(), svc.to_string())].into());
    EndpointSlice {
        metadata: m,
        address_type: "IPv4".into(),
        endpoints: eps
            .iter()
            .map(|(a, h)| Endpoint {
                addresses: vec![a.to_string()],
                hostname: h.map(str::to_string),
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some("web".into()),
            port: Some(port),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
    }
}

pub fn query_bytes(name: &str, qtype: RecordType, edns: Option<u16>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_ascii(name).expect("test name"),
        qtype,
    ));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m.to_vec().expect("encode query")
}

pub async fn udp_query(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    edns: Option<u16>,
) -> anyhow::Result<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").await?;
    socket
        .send_to(&query_bytes(name, qtype, edns), server)
        .await?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf)).await??;
    Ok(Message::from_vec(&buf[..n])?)
}

pub async fn tcp_query(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
) -> anyhow::Result<Message> {
    let mut stream = TcpStream::connect(server).await?;
    let q = query_bytes(name, qtype, None);
    stream.write_u16(q.len() as u16).await?;
    stream.write_all(&q).await?;
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read_u16()).await?? as usize;
    let mut buf = vec![0u8; n];
    stream.read_exact(&mut buf).await?;
    Ok(Message::from_vec(&buf)?)
}

/// The answers as `type data` lines.
pub fn answers(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect()
}
