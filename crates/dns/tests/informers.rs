//! `dns::run` over the real shared informers, fed by a fake API server that
//! lists fixed Namespaces, Services and EndpointSlices and holds watches open.

mod common;

use std::time::Duration;

use bytes::Bytes;
use client::informer::Informers;
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use http_body_util::Full;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn list(kind: &str, api_version: &str, items: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": "10"}, "items": items})
}

fn fake_api() -> kube::Client {
    let svc = tower::service_fn(move |req: hyper::Request<kube::client::Body>| {
        let path = req.uri().path().to_string();
        let watch = req.uri().query().unwrap_or_default().contains("watch=true");
        async move {
            if watch {
                // Nothing changes: the watch stays open until the test ends.
                tokio::time::sleep(Duration::from_secs(300)).await;
            }
            let body = match path.as_str() {
                "/api/v1/namespaces" => list(
                    "NamespaceList",
                    "v1",
                    json!([{"metadata": {"name": "default", "resourceVersion": "1"}}]),
                ),
                "/api/v1/services" => list(
                    "ServiceList",
                    "v1",
                    json!([
                        {"metadata": {"name": "web", "namespace": "default", "resourceVersion": "2"},
                         "spec": {"type": "ClusterIP", "clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}},
                        {"metadata": {"name": "nginx", "namespace": "default", "resourceVersion": "3"},
                         "spec": {"clusterIP": "None", "clusterIPs": ["None"],
                                  "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}}
                    ]),
                ),
                "/apis/discovery.k8s.io/v1/endpointslices" => list(
                    "EndpointSliceList",
                    "discovery.k8s.io/v1",
                    json!([{"metadata": {"name": "nginx-x1", "namespace": "default", "resourceVersion": "4",
                                         "labels": {"kubernetes.io/service-name": "nginx"}},
                            "addressType": "IPv4",
                            "endpoints": [{"addresses": ["10.42.0.10"], "hostname": "web-0", "conditions": {"ready": true}}],
                            "ports": [{"name": "web", "port": 80, "protocol": "TCP"}]}]),
                ),
                _ => {
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"})
                }
            };
            let resp = hyper::Response::builder()
                .status(if body["kind"] == "Status" { 404 } else { 200 })
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.to_string())))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(resp)
        }
    });
    kube::Client::new(svc, "default")
}

#[tokio::test]
async fn answers_from_shared_informers() -> anyhow::Result<()> {
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0")?;
        s.local_addr()?.port()
    };
    let listen: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let informers = Informers::new(fake_api());
    let shutdown = CancellationToken::new();
    let config = dns::Config {
        listen: vec![listen],
        upstreams: vec!["127.0.0.1:9".parse()?],
        ..dns::Config::default()
    };
    let server = tokio::spawn(dns::run(informers.clone(), config, None, shutdown.clone()));
    informers.start(shutdown.clone());

    // Until the caches are listed, a miss is SERVFAIL; then answers come.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let m = loop {
        if let Ok(m) = udp_query(
            listen,
            "web.default.svc.cluster.local.",
            RecordType::A,
            None,
        )
        .await
        {
            if m.metadata.response_code == ResponseCode::NoError {
                break m;
            }
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no answer from the informer caches"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(answers(&m), ["A 10.43.0.20"]);
    let m = udp_query(
        listen,
        "web-0.nginx.default.svc.cluster.local.",
        RecordType::A,
        None,
    )
    .await?;
    assert_eq!(answers(&m), ["A 10.42.0.10"]);
    let m = udp_query(
        listen,
        "nope.default.svc.cluster.local.",
        RecordType::A,
        None,
    )
    .await?;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server).await???;
    Ok(())
}
