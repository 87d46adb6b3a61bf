//! Throughput and latency of service lookups with 1,000 Services over
//! loopback, and the memory they take. Prints, never asserts:
//!
//! ```text
//! cargo test -p dns --release --test bench -- --ignored --nocapture
//! ```

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use dns::{Cluster, Config, Server};
use hickory_proto::rr::RecordType;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

const SERVICES: usize = 1000;
const ENDPOINTS: usize = 10;
const CLIENTS: usize = 32;
const RUN: Duration = Duration::from_secs(5);

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

/// 1,000 ClusterIP Services in 10 namespaces, each with a slice of 10
/// endpoints, as the proxy benchmark has them.
pub fn load(cluster: &Cluster) {
    for n in 0..10 {
        cluster.apply_namespace(&namespace(&format!("ns{n}")));
    }
    for i in 0..SERVICES {
        let ns = format!("ns{}", i % 10);
        let name = format!("svc{i}");
        let ip = format!("10.43.{}.{}", i / 250 + 1, i % 250 + 1);
        cluster.apply_service(&service(&ns, &name, &ip, &[("http", 80)]));
        let eps: Vec<String> = (0..ENDPOINTS)
            .map(|e| {
                format!(
                    "10.42.{}.{}",
                    (i * ENDPOINTS + e) / 250,
                    (i * ENDPOINTS + e) % 250 + 1
                )
            })
            .collect();
        let eps: Vec<(&str, Option<&str>)> = eps.iter().map(|a| (a.as_str(), None)).collect();
        cluster.apply_endpoint_slice(&slice(&ns, &format!("{name}-abcde"), &name, &eps, 8080));
    }
    cluster.set_synced();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench() -> anyhow::Result<()> {
    let rss_start = rss_kib();
    let cluster = Arc::new(Cluster::new());
    let t = Instant::now();
    load(&cluster);
    let load_time = t.elapsed();
    let rss_loaded = rss_kib();

    let shutdown = CancellationToken::new();
    let config = Config {
        listen: vec!["127.0.0.1:0".parse()?],
        upstreams: vec!["127.0.0.1:9".parse()?],
        ..Config::default()
    };
    let server = Server::bind(config, cluster.clone()).await?;
    let addr = server.local_addrs()[0];
    tokio::spawn(server.run(shutdown.clone()));

    let names: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..SERVICES)
            .map(|i| {
                query_bytes(
                    &format!("svc{i}.ns{}.svc.cluster.local.", i % 10),
                    RecordType::A,
                    None,
                )
            })
            .collect(),
    );
    let deadline = Instant::now() + RUN;
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let names = names.clone();
        clients.spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await?;
            socket.connect(addr).await?;
            let mut buf = vec![0u8; 4096];
            let mut lat = Vec::new();
            let mut i = c * 31;
            while Instant::now() < deadline {
                let q = &names[i % names.len()];
                i += 1;
                let t = Instant::now();
                socket.send(q).await?;
                match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await {
                    Ok(Ok(_)) => lat.push(t.elapsed()),
                    _ => lat.push(Duration::from_secs(1)),
                }
            }
            anyhow::Ok(lat)
        });
    }
    let mut lat = Vec::new();
    while let Some(r) = clients.join_next().await {
        lat.extend(r??);
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "dns bench: {SERVICES} services x {ENDPOINTS} endpoints, {CLIENTS} UDP clients over loopback for {RUN:?}"
    );
    println!(
        "  {} queries, {:.0} queries/s, p50 {:?}, p99 {:?}, p99.9 {:?}",
        lat.len(),
        lat.len() as f64 / RUN.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(0.999)
    );
    println!(
        "  index load {load_time:?}; RSS {rss_start} KiB before, {rss_loaded} KiB after loading (+{} KiB), {} KiB after the run (client included)",
        rss_loaded.saturating_sub(rss_start),
        rss_kib()
    );
    shutdown.cancel();
    Ok(())
}
