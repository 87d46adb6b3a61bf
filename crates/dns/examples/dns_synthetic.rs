//! Serves the cluster DNS over a synthetic cluster of 1,000 ClusterIP
//! Services (10 namespaces, 10 endpoints each), for load tools such as
//! Debian's `dnsperf`, and prints its RSS:
//!
//! ```text
//! cargo run -p dns --release --example dns_synthetic -- 127.0.0.1:5300 60
//! dnsperf -s 127.0.0.1 -p 5300 -d queries.txt -l 10 -c 32 -Q 200000
//! ```
//!
//! The first argument is the listen address, the second how many seconds
//! to serve; `queries.txt` (one `svc<i>.ns<i%10>.svc.cluster.local A` a
//! line) is written next to the binary's working directory as
//! `dns-synthetic-queries.txt`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use dns::{Cluster, Config, Server};
use k8s_openapi::api::core::v1::{Namespace, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio_util::sync::CancellationToken;

const SERVICES: usize = 1000;
const ENDPOINTS: usize = 10;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        ..Default::default()
    }
}

fn load(cluster: &Cluster) {
    for n in 0..10 {
        cluster.apply_namespace(&Namespace {
            metadata: ObjectMeta {
                name: Some(format!("ns{n}")),
                ..Default::default()
            },
            ..Default::default()
        });
    }
    for i in 0..SERVICES {
        let ns = format!("ns{}", i % 10);
        let name = format!("svc{i}");
        let ip = format!("10.43.{}.{}", i / 250 + 1, i % 250 + 1);
        cluster.apply_service(&Service {
            metadata: meta(&ns, &name),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                cluster_ip: Some(ip.clone()),
                cluster_ips: Some(vec![ip]),
                ports: Some(vec![ServicePort {
                    name: Some("http".into()),
                    port: 80,
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut m = meta(&ns, &format!("{name}-abcde"));
        m.labels = Some(
            [(
                client::informer::SERVICE_NAME_LABEL.to_string(),
                name.clone(),
            )]
            .into(),
        );
        cluster.apply_endpoint_slice(&EndpointSlice {
            metadata: m,
            address_type: "IPv4".into(),
            endpoints: (0..ENDPOINTS)
                .map(|e| Endpoint {
                    addresses: vec![format!(
                        "10.42.{}.{}",
                        (i * ENDPOINTS + e) / 250,
                        (i * ENDPOINTS + e) % 250 + 1
                    )],
                    conditions: Some(EndpointConditions {
                        ready: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .collect(),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port: Some(8080),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
        });
    }
    cluster.set_synced();
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:5300".into())
        .parse()?;
    let seconds: u64 = args.next().unwrap_or_else(|| "60".into()).parse()?;
    let mut queries = std::fs::File::create("dns-synthetic-queries.txt")?;
    for i in 0..SERVICES {
        writeln!(queries, "svc{i}.ns{}.svc.cluster.local A", i % 10)?;
    }
    let before = rss_kib();
    let cluster = Arc::new(Cluster::new());
    load(&cluster);
    let config = Config {
        listen: vec![listen],
        // Only cluster names are asked; nothing should go out.
        upstreams: vec!["127.0.0.1:9".parse()?],
        ..Config::default()
    };
    let server = Server::bind(config, cluster).await?;
    println!(
        "serving {SERVICES} services on {:?} for {seconds}s; RSS {before} KiB before loading, {} KiB loaded",
        server.local_addrs(),
        rss_kib()
    );
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.cancel();
    });
    server.run(shutdown).await?;
    println!("RSS at the end {} KiB", rss_kib());
    Ok(())
}
