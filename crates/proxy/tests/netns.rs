//! The proxy against the real kernel: a node network namespace (`lo`, an
//! `eth0` veth whose peer stays inside, a `skiff0` bridge) with two "pod"
//! namespaces on the bridge running small TCP servers, and the real `nft`
//! and `ip` run inside the node namespace. Root only: skipped otherwise.
//!
//! `cargo test -p proxy --test netns -- --nocapture` prints the sync times
//! for 1,000 Services × 10 endpoints.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy::{Config, Proxier, SyncKind};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn tools_present() -> bool {
    ["nft", "ip"].iter().all(|t| {
        Command::new(t)
            .arg("-V")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })
}

fn skip() -> bool {
    if !is_root() || !tools_present() {
        eprintln!("skipped: needs root, nft and ip");
        return true;
    }
    false
}

fn sh(args: &[&str]) -> Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {args:?}"))?;
    if !out.status.success() {
        bail!("{args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace of this test, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Result<Netns> {
        let name = format!("skp-{tag}-{}", std::process::id());
        let _ = sh(&["ip", "netns", "del", &name]);
        sh(&["ip", "netns", "add", &name])?;
        let ns = Netns(name);
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["ip", "-n", &self.0];
        all.extend_from_slice(args);
        sh(&all)
    }

    fn exec(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["ip", "netns", "exec", &self.0];
        all.extend_from_slice(args);
        sh(&all)
    }

    /// Moves the calling thread into this namespace.
    fn enter(&self) -> Result<()> {
        let f = std::fs::File::open(format!("/var/run/netns/{}", self.0))?;
        // SAFETY: a valid namespace fd; setns affects only this thread.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh(&["ip", "netns", "del", &self.0]);
    }
}

/// The node (172.30.0.2 on eth0, 10.42.0.1 on skiff0) and its pods
/// (10.42.0.11, 10.42.0.12) each serving `podN from <client ip>` on 8080.
struct Cluster {
    node: Netns,
    pods: Vec<Netns>,
}

const NODE_IP: &str = "172.30.0.2";

fn cluster(tag: &str, pods: usize) -> Result<Cluster> {
    let node = Netns::new(&format!("{tag}n"))?;
    node.ip(&[
        "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p",
    ])?;
    node.ip(&["link", "set", "eth0", "up"])?;
    node.ip(&["link", "set", "eth0p", "up"])?;
    node.ip(&["addr", "add", &format!("{NODE_IP}/24"), "dev", "eth0"])?;
    node.ip(&["route", "add", "default", "dev", "eth0"])?;
    node.ip(&["link", "add", "skiff0", "type", "bridge"])?;
    node.ip(&["link", "set", "skiff0", "up"])?;
    node.ip(&["addr", "add", "10.42.0.1/24", "dev", "skiff0"])?;
    node.exec(&["sysctl", "-qw", "net.ipv4.ip_forward=1"])?;
    let mut out = Cluster {
        node,
        pods: Vec::new(),
    };
    for i in 1..=pods {
        let pod = Netns::new(&format!("{tag}p{i}"))?;
        let host_if = format!("vp{i}");
        out.node.ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns", &pod.0,
        ])?;
        out.node
            .ip(&["link", "set", &host_if, "master", "skiff0", "up"])?;
        out.node
            .exec(&["bridge", "link", "set", "dev", &host_if, "hairpin", "on"])?;
        pod.ip(&["link", "set", "eth0", "up"])?;
        pod.ip(&[
            "addr",
            "add",
            &format!("10.42.0.{}/24", 10 + i),
            "dev",
            "eth0",
        ])?;
        pod.ip(&["route", "add", "default", "via", "10.42.0.1"])?;
        serve(&pod, format!("pod{i}"), 8080)?;
        out.pods.push(pod);
    }
    Ok(out)
}

/// Answers `name from <peer ip>` to every connection, in `ns`, forever
/// (the thread ends with the test process).
fn serve(ns: &Netns, name: String, port: u16) -> Result<()> {
    let path = format!("/var/run/netns/{}", ns.0);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let bound = (|| -> Result<TcpListener> {
            let f = std::fs::File::open(&path)?;
            // SAFETY: as in Netns::enter.
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                bail!("setns: {}", std::io::Error::last_os_error());
            }
            Ok(TcpListener::bind(("0.0.0.0", port))?)
        })();
        let listener = match bound {
            Ok(l) => {
                let _ = tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let peer = conn
                .peer_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            let _ = std::io::Write::write_all(&mut conn, format!("{name} from {peer}").as_bytes());
        }
    });
    rx.recv()?
}

/// Connects (2 s timeout) and reads the answer.
fn request(addr: &str) -> std::io::Result<String> {
    let addr: SocketAddr = addr.parse().map_err(std::io::Error::other)?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// `request` from inside namespace `ns`.
fn request_from(ns: &Netns, addr: &str) -> std::io::Result<String> {
    let path = format!("/var/run/netns/{}", ns.0);
    let addr = addr.to_string();
    std::thread::spawn(move || {
        let f = std::fs::File::open(&path)?;
        // SAFETY: as in Netns::enter.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        request(&addr)
    })
    .join()
    .map_err(|_| std::io::Error::other("client thread panicked"))?
}

fn service(name: &str, spec: serde_json::Value, status: serde_json::Value) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "ns", "name": name},
            "spec": spec, "status": status
        }))
        .expect("valid Service"),
    )
}

/// One slice of `svc` with endpoints `(ip, node)` on port 8080.
fn slice(svc: &str, endpoints: &[(&str, &str)]) -> Arc<EndpointSlice> {
    let eps: Vec<_> = endpoints
        .iter()
        .map(|(ip, node)| serde_json::json!({"addresses": [ip], "nodeName": node, "conditions": {"ready": true}}))
        .collect();
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "ns", "name": format!("{svc}-abcde"),
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": eps
        }))
        .expect("valid EndpointSlice"),
    )
}

fn config() -> Config {
    Config::new(
        "node-a",
        vec![NODE_IP.parse().expect("ip")],
        "10.43.0.0/16",
        "10.42.0.0/16",
    )
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// Answers of `n` requests to `addr` from the node, by pod name.
fn spread(addr: &str, n: usize) -> Result<std::collections::BTreeMap<String, usize>> {
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..n {
        let answer = request(addr).with_context(|| format!("request to {addr}"))?;
        let pod = answer.split(' ').next().unwrap_or_default().to_string();
        *seen.entry(pod).or_insert(0) += 1;
    }
    Ok(seen)
}

fn assert_refused_fast(result: std::io::Result<String>, started: Instant, what: &str) {
    let elapsed = started.elapsed();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => panic!("{what}: expected connection refused, got {other:?}"),
    }
    assert!(
        elapsed < Duration::from_millis(500),
        "{what}: took {elapsed:?}"
    );
}

#[test]
fn services_in_a_network_namespace() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let c = cluster("f", 2)?;
    // This test's thread becomes the node: nft and ip run in its namespace.
    c.node.enter()?;
    let rt = runtime()?;
    let mut p = Proxier::new(&config())?;

    rt.block_on(async {
        proxy::routing::ensure(p.service_cidrs()).await?;
        proxy::routing::enable_route_localnet()?;
        anyhow::Ok(())
    })?;

    let web_spec = serde_json::json!({
        "type": "NodePort", "clusterIP": "10.43.0.100",
        "ports": [{"name": "http", "port": 80, "nodePort": 30080}]
    });
    p.update_service(service("web", web_spec.clone(), serde_json::json!({})));
    p.update_endpoint_slice(slice(
        "web",
        &[("10.42.0.11", "node-a"), ("10.42.0.12", "node-b")],
    ));
    p.update_service(service(
        "empty",
        serde_json::json!({"clusterIP": "10.43.0.101", "ports": [{"name": "http", "port": 80}]}),
        serde_json::json!({}),
    ));
    p.update_service(service(
        "lb",
        serde_json::json!({"type": "LoadBalancer", "clusterIP": "10.43.0.102",
                           "externalTrafficPolicy": "Local",
                           "ports": [{"name": "http", "port": 81, "nodePort": 30081}]}),
        serde_json::json!({"loadBalancer": {"ingress": [{"ip": NODE_IP}]}}),
    ));
    p.update_endpoint_slice(slice(
        "lb",
        &[("10.42.0.11", "node-a"), ("10.42.0.12", "node-b")],
    ));
    p.update_service(service(
        "sticky",
        serde_json::json!({"clusterIP": "10.43.0.103", "sessionAffinity": "ClientIP",
                           "ports": [{"name": "http", "port": 80}]}),
        serde_json::json!({}),
    ));
    p.update_endpoint_slice(slice(
        "sticky",
        &[("10.42.0.11", "node-a"), ("10.42.0.12", "node-a")],
    ));
    p.update_service(service(
        "headless",
        serde_json::json!({"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}),
        serde_json::json!({}),
    ));
    p.update_endpoint_slice(slice("headless", &[("10.42.0.11", "node-a")]));

    let stats = rt.block_on(p.sync())?.context("first sync")?;
    assert_eq!(stats.kind, SyncKind::Full);
    eprintln!("full sync of 4 Services: {:?}", stats.duration);

    // ClusterIP from the node, over both endpoints.
    let seen = spread("10.43.0.100:80", 40)?;
    assert_eq!(seen.len(), 2, "both endpoints answer: {seen:?}");
    // NodePort on the node address and on 127.0.0.1.
    assert!(spread(&format!("{NODE_IP}:30080"), 20)?.len() == 2);
    assert!(spread("127.0.0.1:30080", 20)?.len() == 2);
    // From a pod, including to itself (hairpin).
    let mut from_pod = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let answer = request_from(&c.pods[0], "10.43.0.100:80").context("pod to ClusterIP")?;
        from_pod.insert(answer);
    }
    assert!(
        from_pod.iter().any(|a| a.starts_with("pod1")),
        "hairpin: {from_pod:?}"
    );
    assert!(
        from_pod.iter().any(|a| a.starts_with("pod2")),
        "{from_pod:?}"
    );
    // A pod reaching itself sees the Service's masquerade, not its own address.
    assert!(
        from_pod
            .iter()
            .all(|a| !a.starts_with("pod1") || !a.ends_with("from 10.42.0.11")),
        "{from_pod:?}"
    );

    // No endpoints, unknown address, wrong port: refused at once, from the
    // node and from a pod.
    for addr in [
        "10.43.0.101:80",
        "10.43.0.200:80",
        "10.43.0.100:81",
        "10.43.0.104:80",
    ] {
        let t = Instant::now();
        assert_refused_fast(request(addr), t, &format!("node to {addr}"));
        let t = Instant::now();
        assert_refused_fast(request_from(&c.pods[0], addr), t, &format!("pod to {addr}"));
    }

    // LoadBalancer ingress IP with externalTrafficPolicy Local: the node's
    // own traffic is short-circuited to all endpoints.
    assert!(!spread(&format!("{NODE_IP}:81"), 10)?.is_empty());
    // Same Service's NodePort from a pod to the node address.
    request_from(&c.pods[1], &format!("{NODE_IP}:30081")).context("pod to NodePort")?;

    // Session affinity: one client, one endpoint.
    assert_eq!(spread("10.43.0.103:80", 20)?.len(), 1);

    // Headless: no rules.
    let table = sh(&["nft", "list", "table", "ip", "skiff"])?;
    assert!(!table.contains("ns/headless"));
    assert!(table.contains("ns/web/tcp/http"));

    // One endpoint goes: a partial sync, and only pod1 answers.
    p.update_endpoint_slice(slice("web", &[("10.42.0.11", "node-a")]));
    let stats = rt.block_on(p.sync())?.context("partial sync")?;
    assert_eq!(stats.kind, SyncKind::Partial);
    assert_eq!(stats.services, 1);
    eprintln!("partial sync, one endpoint removed: {:?}", stats.duration);
    let seen = spread("10.43.0.100:80", 20)?;
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec!["pod1"], "{seen:?}");

    // A failed transaction leaves the previous rules in force, and the
    // next sync is a full one. Break the table behind the proxier's back:
    // its next partial sync deletes an element that is no longer there.
    sh(&[
        "nft",
        "delete",
        "element",
        "ip",
        "skiff",
        "service-ips",
        "{ 10.43.0.100 . tcp . 80 }",
    ])?;
    p.update_endpoint_slice(slice("web", &[]));
    let failed = rt.block_on(p.sync());
    assert!(failed.is_err(), "{failed:?}");
    let table = sh(&["nft", "list", "table", "ip", "skiff"])?;
    assert!(
        table.contains("dnat to 10.42.0.11:8080"),
        "previous rules stay: {table}"
    );
    assert!(p.needs_sync());
    let stats = rt
        .block_on(p.sync())?
        .context("full sync after a failure")?;
    assert_eq!(stats.kind, SyncKind::Full);
    // No endpoints now: rejected at once.
    let t = Instant::now();
    assert_refused_fast(request("10.43.0.100:80"), t, "web without endpoints");
    // Back again.
    p.update_endpoint_slice(slice("web", &[("10.42.0.12", "node-b")]));
    let stats = rt.block_on(p.sync())?.context("partial sync")?;
    assert_eq!(stats.kind, SyncKind::Partial);
    assert_eq!(
        spread("10.43.0.100:80", 5)?.keys().collect::<Vec<_>>(),
        vec!["pod2"]
    );

    // Deleting the Service removes its rules.
    p.delete_service("ns", "web");
    p.delete_endpoint_slice("ns", "web-abcde");
    rt.block_on(p.sync())?;
    let table = sh(&["nft", "list", "table", "ip", "skiff"])?;
    assert!(!table.contains("10.43.0.100"), "{table}");
    assert!(!table.contains("ns/web/"), "{table}");
    let t = Instant::now();
    assert_refused_fast(request("10.43.0.100:80"), t, "deleted web");

    // Cleanup removes the table and the routing, nothing else.
    rt.block_on(proxy::cleanup("skiff"))?;
    assert!(sh(&["nft", "list", "table", "ip", "skiff"]).is_err());
    assert!(!sh(&["ip", "rule"])?.contains("4343"));
    assert!(sh(&["ip", "route", "show", "table", "4343"])
        .unwrap_or_default()
        .trim()
        .is_empty());
    // Idempotent.
    rt.block_on(proxy::cleanup("skiff"))?;
    Ok(())
}

#[test]
fn proxy_down_keeps_service_cidr_on_the_node() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let c = cluster("r", 1)?;
    c.node.enter()?;
    let rt = runtime()?;
    let p = Proxier::new(&config())?;
    rt.block_on(proxy::routing::ensure(p.service_cidrs()))?;
    rt.block_on(proxy::routing::ensure(p.service_cidrs()))?; // idempotent
    assert_eq!(
        sh(&["ip", "rule", "show", "pref", "4343"])?.lines().count(),
        1
    );
    let tx_before = std::fs::read_to_string("/sys/class/net/eth0/statistics/tx_packets")?;
    // No nftables rules at all: a pod gets host-unreachable at once, the
    // node's own connection goes nowhere; nothing leaves through eth0.
    let t = Instant::now();
    let r = request_from(&c.pods[0], "10.43.0.100:80");
    assert!(
        r.is_err() && t.elapsed() < Duration::from_millis(500),
        "{r:?} {:?}",
        t.elapsed()
    );
    let addr: SocketAddr = "10.43.0.100:80".parse()?;
    assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err());
    let tx_after = std::fs::read_to_string("/sys/class/net/eth0/statistics/tx_packets")?;
    assert_eq!(tx_before, tx_after, "service traffic left through eth0");
    rt.block_on(proxy::cleanup("skiff"))?;
    assert!(!sh(&["ip", "rule"])?.contains("4343"));
    Ok(())
}

#[test]
fn sync_times_with_1000_services() -> Result<()> {
    if skip() {
        return Ok(());
    }
    let node = Netns::new("perf")?;
    node.enter()?;
    let rt = runtime()?;
    let mut p = Proxier::new(&config())?;
    let endpoints = |i: usize, extra: usize| -> Vec<(String, String)> {
        (0..10 + extra)
            .map(|j| {
                (
                    format!("10.42.{}.{}", i / 200, (i % 200) + j),
                    format!("node-{}", j % 3),
                )
            })
            .collect()
    };
    let build = |i: usize, extra: usize| {
        let eps = endpoints(i, extra);
        let refs: Vec<(&str, &str)> = eps.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        slice(&format!("s{i}"), &refs)
    };
    for i in 0..1000 {
        p.update_service(service(
            &format!("s{i}"),
            serde_json::json!({"type": "NodePort", "clusterIP": format!("10.43.{}.{}", 1 + i / 250, i % 250),
                               "ports": [{"name": "http", "port": 80, "nodePort": 30000 + i}]}),
            serde_json::json!({}),
        ));
        p.update_endpoint_slice(build(i, 0));
    }
    let t = Instant::now();
    let full = rt.block_on(p.sync())?.context("full sync")?;
    eprintln!(
        "PROXY-BENCH full sync, 1000 services x 10 endpoints: {:?} (nft script {} KiB; wall {:?})",
        full.duration,
        full.bytes / 1024,
        t.elapsed()
    );
    let mut partials = Vec::new();
    for round in 0..5 {
        p.update_endpoint_slice(build(500 + round, 1));
        let s = rt.block_on(p.sync())?.context("partial sync")?;
        assert_eq!(s.kind, SyncKind::Partial);
        partials.push(s.duration);
    }
    eprintln!(
        "PROXY-BENCH partial sync, one endpoint added, 1000 services installed: {partials:?}"
    );
    let table = sh(&["nft", "list", "chains", "ip"])?;
    let chains = table
        .lines()
        .filter(|l| l.trim_start().starts_with("chain "))
        .count();
    eprintln!("PROXY-BENCH chains in table: {chains}");
    assert!(chains > 11_000);
    rt.block_on(proxy::cleanup("skiff"))?;
    Ok(())
}
