//! Service networking on a real node: `skiff server --disable-agent` and
//! `skiff agent` (its proxy and cluster DNS) in a network namespace the
//! benchmark creates, with an `eth0` carrying the node address like a real
//! node. Measured in one run, each beside its floor:
//!
//! 1. requests to the demo app through a ClusterIP against straight to the
//!    pod IP, from the same client in the node's own network namespace
//!    (the nat output path): one connection per request, one after another
//!    (interleaved), then several at once;
//! 2. rule programming with many selector-less Services and hand-written
//!    EndpointSlices: last write → rules in force, then single endpoint
//!    changes, beside a raw `nft -f` transaction in a scratch table;
//! 3. the cluster DNS under `dnsperf` (service A records), at the
//!    `kube-dns` ClusterIP and at the node IP, beside a canned UDP responder
//!    on 127.0.0.1; the agent's memory before and after the Services.
//!
//! "In force" is seen by the kernel itself: the endpoints are extra /32
//! addresses of the node's `eth0` and the benchmark listens on
//! [`OPEN_PORT`]; slices point at [`CLOSED_PORT`] (refused at once) until a
//! change points one at the open port, so a TCP connect to the Service's
//! clusterIP succeeds exactly when the new rule is in the kernel.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::Bytes;
use hyper::StatusCode;
use serde_json::json;

use crate::client::Client;
use crate::create::describe;
use crate::node::{in_namespace, require_images, start_node, Netns, PhaseOutcome, Procs, Samples};
use crate::schedule::create_namespace;
use crate::server::{rss_of, Server};
use crate::stats::{mib, ms, Latencies};

const NAMESPACE: &str = "bench";
/// The node's address on its `eth0` (as in the e2e tests).
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 2);
/// The `kube-system/kube-dns` Service's clusterIP.
pub const CLUSTER_DNS: Ipv4Addr = Ipv4Addr::new(10, 43, 0, 10);
const DEMO: &str = "localhost/skiff-demo:0.1";
const IMAGES: &[&str] = &["pause", "demo"];
/// The port the benchmark listens on: an endpoint here accepts.
pub const OPEN_PORT: u16 = 7777;
/// Nothing listens here: an endpoint here refuses at once (RST).
pub const CLOSED_PORT: u16 = 7776;
const SERVICE_PORT: u16 = 80;
/// Pause between connect attempts while polling for a rule change: the
/// resolution of the rule timings, and a bound on conntrack churn.
const POLL_GAP: Duration = Duration::from_micros(250);
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n";

pub struct Config {
    /// Selector-less Services (each with one EndpointSlice) for the rule
    /// and DNS figures.
    pub services: usize,
    /// Endpoints per slice (distinct node addresses 172.31.1.1...).
    pub endpoints: usize,
    /// Concurrent API clients writing the Services and slices.
    pub clients: usize,
    /// Sequential requests per target (pod IP, ClusterIP).
    pub requests: usize,
    /// Concurrent request loops, and how long each target is loaded.
    pub concurrency: usize,
    pub load_seconds: u64,
    /// Single EndpointSlice changes timed (each opened, then closed again).
    pub changes: usize,
    /// Seconds of each dnsperf run.
    pub dns_seconds: u64,
    /// Bounds each wait (pod Ready, rules in force, DNS answering).
    pub timeout: Duration,
    /// `<target>/images` with the `make images` tarballs.
    pub images_dir: PathBuf,
}

/// One DNS load run against one server.
pub struct DnsRun {
    pub target: String,
    /// `dnsperf`, or `rust-udp` when dnsperf could not be used.
    pub tool: &'static str,
    pub qps: f64,
    pub latency: Samples,
    pub completed: u64,
    pub lost: u64,
    /// Response codes seen, e.g. `NOERROR 51234`.
    pub rcodes: String,
}

#[derive(Default)]
pub struct Outcome {
    /// Agent spawn to the Node being Ready.
    pub node_ready: Duration,
    /// Sequential GETs, a new connection each: through the ClusterIP, and
    /// straight to the pod IP (the floor), interleaved.
    pub seq_svc: Samples,
    pub seq_pod: Samples,
    pub seq_errors: usize,
    /// Pod Ready → the first answer through the ClusterIP.
    pub svc_first_answer: Option<Duration>,
    /// GETs/s with `concurrency` loops, and their failures.
    pub rps_svc: Option<f64>,
    pub rps_pod: Option<f64>,
    pub load_errors: usize,
    /// Services and slices written, and the time all the writes took.
    pub written: usize,
    pub write_elapsed: Duration,
    /// Last write's response → a connect to the last Service succeeds.
    pub initial: Option<Duration>,
    /// Single slice changes: PATCH response → in force, to the open port
    /// and back to the closed one; the PATCHes' own times.
    pub change_open: Samples,
    pub change_close: Samples,
    pub change_ack: Samples,
    pub changes_missed: usize,
    /// `nft -f` floors: one set element added and deleted, and a no-op
    /// transaction; before the Services and with them in place.
    pub nft_elem_before: Samples,
    pub nft_empty_before: Samples,
    pub nft_elem: Samples,
    pub nft_empty: Samples,
    /// `nft list table ip skiff | wc -l` with the Services in place.
    pub table_lines: Option<usize>,
    pub dns: Vec<DnsRun>,
    /// Agent VmRSS (KiB): idle after the node became Ready, with the demo
    /// pod after the requests (before the Services), and with the Services.
    pub agent_rss_idle: u64,
    pub agent_rss_before: u64,
    pub agent_rss_after: u64,
    /// Parts that could not be measured, with the reason.
    pub notes: Vec<String>,
    /// Server and agent log lines at WARN/ERROR, labelled.
    pub problems: Vec<String>,
}

/// Runs the whole phase in a network namespace of its own, on a thread
/// that joins it (see [`crate::node::run`]). Blocking.
pub fn run(bin: &Path, dir: &Path, cfg: Config) -> Result<Outcome> {
    require_images(&cfg.images_dir, IMAGES)?;
    ensure!(cfg.services >= 2, "BENCH_SVC_COUNT must be at least 2");
    ensure!(
        (1..=250).contains(&cfg.endpoints),
        "BENCH_SVC_ENDPOINTS must be 1-250 (one node address each)"
    );
    let ns = Netns::create()?;
    node_network(&ns, cfg.endpoints)?;
    let (bin, dir) = (bin.to_path_buf(), dir.to_path_buf());
    in_namespace(
        "service",
        &ns,
        bin.clone(),
        dir.clone(),
        async move |procs| {
            let r = run_in(&bin, &dir, &cfg, procs).await;
            remove_pods(procs, &dir.join("agent")).await;
            r
        },
    )
}

impl PhaseOutcome for Outcome {
    fn problems(&mut self) -> &mut Vec<String> {
        &mut self.problems
    }
}

/// The node's `eth0` (a veth whose peer stays inside, so nothing leaves)
/// with the node address, a default route over it, and one /32 per
/// endpoint address.
fn node_network(ns: &Netns, endpoints: usize) -> Result<()> {
    let mut steps = vec![
        "link add eth0 type veth peer name eth0-peer".to_string(),
        "link set eth0-peer up".into(),
        format!("addr add {NODE_IP}/24 dev eth0"),
        "link set eth0 up".into(),
        "route add default dev eth0".into(),
    ];
    steps.extend((0..endpoints).map(|i| format!("addr add {}/32 dev eth0", endpoint_ip(i))));
    for step in steps {
        let ok = Command::new("ip")
            .args(["-n", &ns.name])
            .args(step.split(' '))
            .status()?;
        ensure!(ok.success(), "ip -n {} {step} failed", ns.name);
    }
    Ok(())
}

fn endpoint_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(172, 31, 1, (i + 1) as u8)
}

async fn remove_pods(procs: &Procs, data: &Path) {
    let Some(server) = procs.server.as_ref() else {
        return;
    };
    if let Ok(mut c) = server.client().await {
        let _ = c
            .call(
                hyper::Method::DELETE,
                &format!("/api/v1/namespaces/{NAMESPACE}/pods?gracePeriodSeconds=0"),
                None,
                None,
            )
            .await;
    }
    let socket = data.join("agent/containerd/containerd.sock");
    let Ok(rt) =
        kubelet::cri::Runtime::connect(&socket.display().to_string(), Duration::from_secs(2)).await
    else {
        return;
    };
    let mut r = rt.runtime.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let left = r
            .list_pod_sandbox(kubelet::cri::api::ListPodSandboxRequest { filter: None })
            .await
            .map(|s| s.into_inner().items.len())
            .unwrap_or(0);
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("  ! pod sandboxes still there 30 s after deleting the pods");
}

async fn run_in(bin: &Path, dir: &Path, cfg: &Config, procs: &mut Procs) -> Result<Outcome> {
    let mut o = Outcome::default();
    // The control plane with its controllers (endpoints, node IPAM); the
    // `kubernetes` Endpoints carry the node address.
    let node_ip = NODE_IP.to_string();
    let node = start_node(
        bin,
        dir,
        (&cfg.images_dir, IMAGES),
        procs,
        &["--advertise-address", &node_ip],
        &["--node-ip", &node_ip],
    )
    .await?;
    o.node_ready = node.node_ready;
    let (agent_pid, mut c) = (node.agent_pid, node.client);
    let server = procs.server.as_ref().context("server not running")?;
    create_namespace(&mut c, NAMESPACE).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    o.agent_rss_idle = rss_of(agent_pid)?;

    eprintln!("\n  requests: demo app through its ClusterIP and straight to the pod IP");
    if let Err(e) = requests(&mut c, cfg, &mut o).await {
        eprintln!("    ! {e:#}");
        o.notes.push(format!("requests: {e:#}"));
    }
    // The agent settles (the demo pod's first status writes) before it is
    // measured without the Services.
    tokio::time::sleep(Duration::from_secs(2)).await;
    o.agent_rss_before = rss_of(agent_pid)?;

    eprintln!(
        "\n  rules: {} Services x {} endpoints",
        cfg.services, cfg.endpoints
    );
    let mut written = false;
    if let Err(e) = rules(server, cfg, &mut o, &mut written).await {
        eprintln!("    ! {e:#}");
        o.notes.push(format!("rules: {e:#}"));
    }
    o.agent_rss_after = rss_of(agent_pid)?;
    eprintln!(
        "    agent RSS {} idle, {} before the Services, {} with them",
        mib(o.agent_rss_idle),
        mib(o.agent_rss_before),
        mib(o.agent_rss_after)
    );

    if written {
        eprintln!("\n  DNS: service A records under load");
        if let Err(e) = dns(dir, cfg, &mut o).await {
            eprintln!("    ! {e:#}");
            o.notes.push(format!("dns: {e:#}"));
        }
    } else {
        o.notes
            .push("dns: not measured (the Services were not all written)".into());
    }
    Ok(o)
}

// ---- 1. requests --------------------------------------------------------

async fn requests(c: &mut Client, cfg: &Config, o: &mut Outcome) -> Result<()> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "demo", "labels": {"app": "demo"}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "demo",
                "image": DEMO,
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http"},
                    "periodSeconds": 1,
                },
            }],
        },
    });
    post(c, &format!("/api/v1/namespaces/{NAMESPACE}/pods"), &pod).await?;
    let svc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "demo"},
        "spec": {
            "selector": {"app": "demo"},
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http"}],
        },
    });
    let created = post(c, &format!("/api/v1/namespaces/{NAMESPACE}/services"), &svc).await?;
    let cluster_ip = cluster_ip_of(&created)?;
    let pod_ip = wait_pod_ready(c, "demo", cfg.timeout).await?;
    let ready_at = Instant::now();
    let pod_addr = SocketAddr::from((pod_ip, 8080));
    let svc_addr = SocketAddr::from((cluster_ip, SERVICE_PORT));
    eprintln!("    pod {pod_ip}:8080 Ready; Service demo {cluster_ip}:{SERVICE_PORT}");
    ensure!(
        blocking(move || wait_http(pod_addr, Duration::from_secs(30)))
            .await?
            .is_some(),
        "the demo pod does not answer on {pod_addr}"
    );
    let timeout = cfg.timeout;
    let through = blocking(move || wait_http(svc_addr, timeout)).await?;
    o.svc_first_answer = through.map(|_| ready_at.elapsed());
    let mut targets = vec![pod_addr];
    match o.svc_first_answer {
        Some(t) => {
            eprintln!(
                "    the ClusterIP answered {} after the pod was Ready",
                ms(t)
            );
            targets.push(svc_addr);
        }
        None => {
            let note = format!(
                "requests: {svc_addr} did not answer within {} s: only the pod IP measured",
                timeout.as_secs()
            );
            eprintln!("    ! {note}");
            o.notes.push(note);
        }
    }

    let (n, t2) = (cfg.requests, targets.clone());
    let (mut lat, errors) = blocking(move || sequential(&t2, n)).await?;
    o.seq_errors = errors;
    o.seq_pod = Samples(Latencies::new(std::mem::take(&mut lat[0])));
    if let Some(l) = lat.get_mut(1) {
        o.seq_svc = Samples(Latencies::new(std::mem::take(l)));
    }
    eprintln!(
        "    {n} sequential GETs each: pod IP p50 {} p99 {}{} ({errors} failed)",
        ms(o.seq_pod.pct(50.0)),
        ms(o.seq_pod.pct(99.0)),
        if o.seq_svc.len() > 0 {
            format!(
                "; ClusterIP p50 {} p99 {}",
                ms(o.seq_svc.pct(50.0)),
                ms(o.seq_svc.pct(99.0))
            )
        } else {
            String::new()
        }
    );

    // Two halves per target, alternating, so drift in the machine's load
    // hits both alike.
    let (conc, half) = (
        cfg.concurrency.max(1),
        Duration::from_secs(cfg.load_seconds) / 2,
    );
    let mut totals = vec![(0usize, Duration::ZERO); targets.len()];
    for _ in 0..2 {
        for (i, addr) in targets.iter().copied().enumerate() {
            let (done, errors, took) = blocking(move || concurrent(addr, conc, half)).await?;
            totals[i].0 += done;
            totals[i].1 += took;
            o.load_errors += errors;
        }
    }
    let rates: Vec<f64> = totals
        .iter()
        .map(|(done, took)| *done as f64 / took.as_secs_f64())
        .collect();
    o.rps_pod = rates.first().copied();
    o.rps_svc = rates.get(1).copied();
    eprintln!(
        "    {conc} loops, {} s per target: pod IP {:.0} GETs/s{} ({} failed)",
        cfg.load_seconds,
        rates[0],
        o.rps_svc
            .map(|r| format!(", ClusterIP {r:.0} GETs/s"))
            .unwrap_or_default(),
        o.load_errors
    );
    Ok(())
}

/// Polls the pod until it is Ready; returns its IP.
async fn wait_pod_ready(c: &mut Client, name: &str, timeout: Duration) -> Result<Ipv4Addr> {
    let deadline = Instant::now() + timeout;
    let path = format!("/api/v1/namespaces/{NAMESPACE}/pods/{name}");
    loop {
        let pod: serde_json::Value = serde_json::from_slice(&c.get_ok(&path, "GET pod").await?)?;
        let ready = pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        if let (true, Some(ip)) = (ready, pod["status"]["podIP"].as_str()) {
            return ip.parse().with_context(|| format!("podIP {ip}"));
        }
        if Instant::now() > deadline {
            bail!(
                "pod {name} not Ready within {} s (phase {})",
                timeout.as_secs(),
                pod["status"]["phase"]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One GET / on a new connection, read to the server's close; its time.
fn http_get(addr: SocketAddr, buf: &mut Vec<u8>) -> std::io::Result<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(REQUEST)?;
    buf.clear();
    s.read_to_end(buf)?;
    let took = t.elapsed();
    if !buf.starts_with(b"HTTP/1.1 200") || !buf.windows(10).any(|w| w == b"hello from") {
        return Err(std::io::Error::other("not a 200 from the demo app"));
    }
    Ok(took)
}

/// Until a GET to `addr` succeeds; None after `timeout`.
fn wait_http(addr: SocketAddr, timeout: Duration) -> Option<Duration> {
    let (t, mut buf) = (Instant::now(), Vec::new());
    while t.elapsed() < timeout {
        if http_get(addr, &mut buf).is_ok() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// `n` GETs to each target, interleaved (so drift hits all alike), after
/// a short warm-up; per target the latencies, and the failures.
fn sequential(targets: &[SocketAddr], n: usize) -> (Vec<Vec<Duration>>, usize) {
    let mut buf = Vec::with_capacity(256);
    for _ in 0..50 {
        for a in targets {
            let _ = http_get(*a, &mut buf);
        }
    }
    let mut lat = vec![Vec::with_capacity(n); targets.len()];
    let mut errors = 0;
    for _ in 0..n {
        for (i, a) in targets.iter().enumerate() {
            match http_get(*a, &mut buf) {
                Ok(d) => lat[i].push(d),
                Err(_) => errors += 1,
            }
        }
    }
    (lat, errors)
}

/// `loops` threads GETting `addr` back to back for `secs`: GETs done,
/// failed, and the time taken.
fn concurrent(addr: SocketAddr, loops: usize, secs: Duration) -> (usize, usize, Duration) {
    let start = Instant::now();
    let threads: Vec<_> = (0..loops)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut ok, mut failed, mut buf) = (0, 0, Vec::with_capacity(256));
                while start.elapsed() < secs {
                    match http_get(addr, &mut buf) {
                        Ok(_) => ok += 1,
                        Err(_) => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    for t in threads {
        let (o, f) = t.join().unwrap_or((0, 0));
        ok += o;
        failed += f;
    }
    (ok, failed, start.elapsed())
}

// ---- 2. rules -----------------------------------------------------------

async fn rules(server: &Server, cfg: &Config, o: &mut Outcome, written: &mut bool) -> Result<()> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, OPEN_PORT))
        .with_context(|| format!("listening on :{OPEN_PORT}"))?;
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let acceptor = tokio::spawn(async move {
        loop {
            // Accepted and dropped: the connect was all that mattered.
            let _ = listener.accept().await;
        }
    });
    let r = rules_with_listener(server, cfg, o, written).await;
    acceptor.abort();
    r
}

async fn rules_with_listener(
    server: &Server,
    cfg: &Config,
    o: &mut Outcome,
    written: &mut bool,
) -> Result<()> {
    let reps = 20;
    let (e, n) = blocking(move || nft_floor(reps)).await??;
    (o.nft_elem_before, o.nft_empty_before) = (Samples(e), Samples(n));
    eprintln!(
        "    floor before the Services: nft -f add+delete element p50 {}, no-op p50 {}",
        ms(o.nft_elem_before.pct(50.0)),
        ms(o.nft_empty_before.pct(50.0))
    );

    let count = cfg.services;
    let last = count - 1;
    let start = Instant::now();
    let ips = post_all(server, cfg.clients.max(1), 0..count, service_json).await?;
    let ips: Vec<Ipv4Addr> = ips
        .into_iter()
        .map(|b| cluster_ip_of(&b))
        .collect::<Result<_>>()?;
    post_all(server, cfg.clients.max(1), 0..last, |i| {
        slice_json(i, CLOSED_PORT, cfg.endpoints)
    })
    .await?;
    // The last write alone, so its response is the last one.
    let mut c = server.client().await?;
    post(
        &mut c,
        &slices_path(),
        &slice_json(last, OPEN_PORT, cfg.endpoints),
    )
    .await?;
    let acked = Instant::now();
    o.write_elapsed = start.elapsed();
    o.written = 2 * count;
    *written = true;
    let target = SocketAddr::from((ips[last], SERVICE_PORT));
    let timeout = cfg.timeout;
    o.initial = blocking(move || poll_connect(target, true, acked, timeout)).await?;
    eprintln!(
        "    {} writes in {} ({:.0}/s); last write -> {target} accepts: {}",
        o.written,
        ms(o.write_elapsed),
        o.written as f64 / o.write_elapsed.as_secs_f64(),
        o.initial
            .map(ms)
            .unwrap_or_else(|| "NOT within the timeout".into())
    );
    o.table_lines = blocking(|| {
        Command::new("nft")
            .args(["list", "table", "ip", "skiff"])
            .stderr(Stdio::null())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| out.stdout.iter().filter(|&&b| b == b'\n').count())
    })
    .await?;
    let (e, n) = blocking(move || nft_floor(reps)).await??;
    (o.nft_elem, o.nft_empty) = (Samples(e), Samples(n));
    eprintln!(
        "    floor with them: nft -f add+delete element p50 {}, no-op p50 {}; table ip skiff {} lines",
        ms(o.nft_elem.pct(50.0)),
        ms(o.nft_empty.pct(50.0)),
        o.table_lines.map(|l| l.to_string()).unwrap_or_else(|| "-".into())
    );
    if o.initial.is_none() {
        bail!(
            "the last Service ({target}) never accepted within {} s: single changes not measured",
            timeout.as_secs()
        );
    }

    // Single changes, each to another Service (from the middle on), opened
    // and closed again.
    let (mut open, mut close, mut ack) = (Vec::new(), Vec::new(), Vec::new());
    let change_timeout = Duration::from_secs(10);
    for k in 0..cfg.changes {
        let i = (count / 2 + k * 7919) % last;
        let addr = SocketAddr::from((ips[i], SERVICE_PORT));
        for (port, want_open) in [(OPEN_PORT, true), (CLOSED_PORT, false)] {
            let sent = Instant::now();
            patch_slice_port(&mut c, i, port).await?;
            let acked = Instant::now();
            ack.push(acked - sent);
            match blocking(move || poll_connect(addr, want_open, acked, change_timeout)).await? {
                Some(d) if want_open => open.push(d),
                Some(d) => close.push(d),
                None => {
                    o.changes_missed += 1;
                    eprintln!(
                        "    ! svc-{i} to port {port}: not in force within {} s",
                        change_timeout.as_secs()
                    );
                }
            }
        }
    }
    o.change_open = Samples(Latencies::new(open));
    o.change_close = Samples(Latencies::new(close));
    o.change_ack = Samples(Latencies::new(ack));
    eprintln!(
        "    {} single changes: to open p50 {} p99 {}, back to closed p50 {} p99 {} (PATCH p50 {})",
        cfg.changes,
        ms(o.change_open.pct(50.0)),
        ms(o.change_open.pct(99.0)),
        ms(o.change_close.pct(50.0)),
        ms(o.change_close.pct(99.0)),
        ms(o.change_ack.pct(50.0))
    );
    Ok(())
}

fn service_json(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": format!("svc-{i}")},
        "spec": {
            "ports": [{"name": "http", "protocol": "TCP", "port": SERVICE_PORT, "targetPort": CLOSED_PORT}],
        },
    })
}

/// The hand-written slice of Service `svc-<i>`: every endpoint address
/// ready, on `port`.
fn slice_json(i: usize, port: u16, endpoints: usize) -> serde_json::Value {
    let eps: Vec<_> = (0..endpoints)
        .map(|e| json!({"addresses": [endpoint_ip(e).to_string()], "conditions": {"ready": true}}))
        .collect();
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(i),
            "labels": {
                "kubernetes.io/service-name": format!("svc-{i}"),
                "endpointslice.kubernetes.io/managed-by": "skiff-bench",
            },
        },
        "addressType": "IPv4",
        "endpoints": eps,
        "ports": [{"name": "http", "protocol": "TCP", "port": port}],
    })
}

fn slice_name(i: usize) -> String {
    format!("svc-{i}-bench")
}

fn slices_path() -> String {
    format!("/apis/discovery.k8s.io/v1/namespaces/{NAMESPACE}/endpointslices")
}

async fn patch_slice_port(c: &mut Client, i: usize, port: u16) -> Result<()> {
    let body = json!({"ports": [{"name": "http", "protocol": "TCP", "port": port}]});
    let (status, resp) = c
        .patch(
            &format!("{}/{}", slices_path(), slice_name(i)),
            "application/merge-patch+json",
            Bytes::from(body.to_string()),
        )
        .await?;
    ensure!(
        status == StatusCode::OK,
        "patching slice {}: {}",
        slice_name(i),
        describe(status, &resp)
    );
    Ok(())
}

/// POSTs `make(i)` for every `i` in `items` from `clients` connections;
/// the response bodies by item (index `i - items.start`). Services go to
/// the services path, slices to the slices path (by their `kind`).
async fn post_all(
    server: &Server,
    clients: usize,
    items: std::ops::Range<usize>,
    make: impl Fn(usize) -> serde_json::Value,
) -> Result<Vec<Bytes>> {
    let bodies: Vec<serde_json::Value> = items.clone().map(make).collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let results = Arc::new(Mutex::new(vec![Bytes::new(); bodies.len()]));
    let mut tasks = Vec::new();
    for _ in 0..clients.min(bodies.len()).max(1) {
        let mut c = server.client().await?;
        let (bodies, next, results) = (bodies.clone(), next.clone(), results.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(k) else {
                    return anyhow::Ok(());
                };
                let path = if body["kind"] == "Service" {
                    format!("/api/v1/namespaces/{NAMESPACE}/services")
                } else {
                    slices_path()
                };
                let resp = post(&mut c, &path, body).await?;
                results.lock().unwrap_or_else(|e| e.into_inner())[k] = resp;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let out = std::mem::take(&mut *results.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(out)
}

/// Connects to `addr` every [`POLL_GAP`] until the connect succeeds
/// (`want_open`) or is refused (otherwise); the time from `since` to that
/// connect's return, or None after `timeout`. Other failures (no rule yet:
/// a timeout, unreachable) keep it polling.
fn poll_connect(
    addr: SocketAddr,
    want_open: bool,
    since: Instant,
    timeout: Duration,
) -> Option<Duration> {
    loop {
        let r = TcpStream::connect_timeout(&addr, Duration::from_millis(10));
        let at = since.elapsed();
        match r {
            Ok(s) => {
                close_with_reset(s);
                if want_open {
                    return Some(at);
                }
            }
            Err(e) if e.kind() == ErrorKind::ConnectionRefused && !want_open => return Some(at),
            Err(_) => {}
        }
        if at > timeout {
            return None;
        }
        std::thread::sleep(POLL_GAP);
    }
}

/// Closes with a RST (SO_LINGER 0): thousands of polls leave no TIME_WAIT.
fn close_with_reset(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// The floor of one rule change: `nft -f` of a transaction adding and
/// deleting one element of a set in a scratch table (`table ip floor`) of
/// this namespace, and of a no-op transaction (`add table` of the existing
/// table), `reps` times each, interleaved. The table is removed after.
fn nft_floor(reps: usize) -> Result<(Latencies, Latencies)> {
    let dir = tempfile::tempdir()?;
    let file = |name: &str, text: &str| -> Result<PathBuf> {
        let p = dir.path().join(name);
        std::fs::write(&p, text)?;
        Ok(p)
    };
    let setup = file(
        "setup.nft",
        "add table ip floor\nadd set ip floor s { type ipv4_addr; }\n",
    )?;
    let elem = file(
        "elem.nft",
        "add element ip floor s { 10.99.0.1 }\ndelete element ip floor s { 10.99.0.1 }\n",
    )?;
    let noop = file("noop.nft", "add table ip floor\n")?;
    let nft = |f: &Path| -> Result<Duration> {
        let t = Instant::now();
        let out = Command::new("nft").arg("-f").arg(f).output()?;
        let took = t.elapsed();
        ensure!(
            out.status.success(),
            "nft -f {}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(took)
    };
    nft(&setup)?;
    let (mut e, mut n) = (Vec::new(), Vec::new());
    let r = (|| -> Result<()> {
        for _ in 0..reps {
            e.push(nft(&elem)?);
            n.push(nft(&noop)?);
        }
        Ok(())
    })();
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", "floor"])
        .status();
    r?;
    Ok((Latencies::new(e), Latencies::new(n)))
}

// ---- 3. DNS -------------------------------------------------------------

async fn dns(dir: &Path, cfg: &Config, o: &mut Outcome) -> Result<()> {
    let count = cfg.services;
    let last = format!("svc-{}.{NAMESPACE}.svc.cluster.local", count - 1);
    // The cluster DNS must answer from a cache that has every Service.
    let mut targets = Vec::new();
    for (label, ip) in [("cluster DNS", CLUSTER_DNS), ("node IP", NODE_IP)] {
        let (name, timeout) = (last.clone(), cfg.timeout);
        let addr = SocketAddr::from((ip, 53));
        let t = Instant::now();
        let answer = blocking(move || wait_dns(addr, &name, timeout)).await?;
        match answer {
            Some(a) => {
                eprintln!(
                    "    {addr} answers {last} = {a} (after {})",
                    ms(t.elapsed())
                );
                targets.push((format!("{label} {addr}"), addr));
            }
            None => {
                let note = format!(
                    "dns: {addr} gave no A record for {last} within {} s",
                    cfg.timeout.as_secs()
                );
                eprintln!("    ! {note}");
                o.notes.push(note);
            }
        }
    }

    // Random service names, as dnsperf's input.
    let mut rng = XorShift::seeded();
    let names: Vec<String> = (0..10_000)
        .map(|_| format!("svc-{}.{NAMESPACE}.svc.cluster.local", rng.below(count)))
        .collect();
    let queries = dir.join("dns-queries.txt");
    std::fs::write(
        &queries,
        names.iter().map(|n| format!("{n} A\n")).collect::<String>(),
    )?;
    let dnsperf = blocking(ensure_dnsperf).await?;

    // The floor: a canned answer from a UDP socket on 127.0.0.1.
    let responder = Responder::start()?;
    let floor_addr = responder.addr;
    let mut runs = vec![(
        format!("floor: canned UDP responder {floor_addr}"),
        floor_addr,
    )];
    runs.extend(targets);
    let secs = cfg.dns_seconds.max(1);
    for (label, addr) in runs {
        let run = match &dnsperf {
            Ok(()) => {
                let q = queries.clone();
                blocking(move || run_dnsperf(addr, &q, secs)).await?
            }
            Err(e) => Err(anyhow!("{e}")),
        };
        let run = match run {
            Ok(r) => r,
            Err(e) => {
                eprintln!("    ! dnsperf against {addr}: {e:#}; the Rust UDP client instead");
                let names = names.clone();
                blocking(move || udp_load(addr, &names, 4, Duration::from_secs(secs))).await?
            }
        };
        eprintln!(
            "    {label}: {:.0} q/s, p50 {} p99 {} ({} completed, {} lost; {}) [{}]",
            run.qps,
            ms(run.latency.pct(50.0)),
            ms(run.latency.pct(99.0)),
            run.completed,
            run.lost,
            run.rcodes,
            run.tool
        );
        o.dns.push(DnsRun {
            target: label,
            ..run
        });
    }
    drop(responder);
    Ok(())
}

/// Whether `dnsperf` runs; installs Debian's if it is missing.
fn ensure_dnsperf() -> Result<(), String> {
    let present = || {
        Command::new("dnsperf")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if present() {
        return Ok(());
    }
    eprintln!("    dnsperf missing: apt-get install -y dnsperf");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-q", "dnsperf"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok && present() {
        Ok(())
    } else {
        Err("dnsperf is not installed and apt-get install -y dnsperf failed".into())
    }
}

/// `dnsperf -v` for `secs` against `addr`: its own rate, and each
/// query's latency from its verbose lines (`> NOERROR name A 0.000123`).
fn run_dnsperf(addr: SocketAddr, queries: &Path, secs: u64) -> Result<DnsRun> {
    let out = Command::new("dnsperf")
        .arg("-s")
        .arg(addr.ip().to_string())
        .arg("-p")
        .arg(addr.port().to_string())
        .arg("-d")
        .arg(queries)
        .args(["-l", &secs.to_string(), "-t", "2", "-v"])
        .stderr(Stdio::null())
        .output()
        .context("running dnsperf")?;
    ensure!(out.status.success(), "dnsperf exited {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |key: &str| -> Option<f64> {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    let qps =
        field("Queries per second:").context("no \"Queries per second\" in dnsperf's output")?;
    let mut lat = Vec::new();
    let mut rcodes: BTreeMap<String, u64> = BTreeMap::new();
    for l in text.lines().filter_map(|l| l.strip_prefix("> ")) {
        let words: Vec<&str> = l.split_whitespace().collect();
        if let (Some(rc), Some(Ok(s))) = (words.first(), words.last().map(|w| w.parse::<f64>())) {
            lat.push(Duration::from_secs_f64(s));
            *rcodes.entry(rc.to_string()).or_default() += 1;
        }
    }
    Ok(DnsRun {
        target: addr.to_string(),
        tool: "dnsperf",
        qps,
        latency: Samples(Latencies::new(lat)),
        completed: field("Queries completed:").unwrap_or(0.0) as u64,
        lost: field("Queries lost:").unwrap_or(0.0) as u64,
        rcodes: rcodes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The fallback load: `threads` clients, each one query at a time, for
/// `secs`.
fn udp_load(addr: SocketAddr, names: &[String], threads: usize, secs: Duration) -> DnsRun {
    let names = Arc::new(names.to_vec());
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let names = names.clone();
            std::thread::spawn(move || {
                let (mut lat, mut lost, mut rcodes) = (Vec::new(), 0u64, BTreeMap::new());
                let Ok(sock) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
                    return (lat, lost, rcodes);
                };
                let _ = sock.set_read_timeout(Some(Duration::from_secs(1)));
                let mut i = t;
                while start.elapsed() < secs {
                    let id = (i & 0xffff) as u16;
                    let name = &names[i % names.len()];
                    i += threads;
                    let t0 = Instant::now();
                    match query(&sock, addr, id, name) {
                        Ok(a) => {
                            lat.push(t0.elapsed());
                            *rcodes.entry(rcode_name(a.rcode)).or_insert(0u64) += 1;
                        }
                        Err(_) => lost += 1,
                    }
                }
                (lat, lost, rcodes)
            })
        })
        .collect();
    let (mut lat, mut lost, mut rcodes) = (Vec::new(), 0, BTreeMap::<String, u64>::new());
    for h in handles {
        if let Ok((l, n, r)) = h.join() {
            lat.extend(l);
            lost += n;
            for (k, v) in r {
                *rcodes.entry(k).or_default() += v;
            }
        }
    }
    let took = start.elapsed();
    DnsRun {
        target: addr.to_string(),
        tool: "rust-udp",
        qps: lat.len() as f64 / took.as_secs_f64(),
        completed: lat.len() as u64,
        latency: Samples(Latencies::new(lat)),
        lost,
        rcodes: rcodes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// Until `addr` answers an A record for `name`; the address, or None after
/// `timeout`.
fn wait_dns(addr: SocketAddr, name: &str, timeout: Duration) -> Option<Ipv4Addr> {
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    let t = Instant::now();
    let mut id = 1u16;
    while t.elapsed() < timeout {
        id = id.wrapping_add(1);
        if let Ok(a) = query(&sock, addr, id, name) {
            if let Some(ip) = a.first_a {
                return Some(ip);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

struct Answer {
    rcode: u8,
    first_a: Option<Ipv4Addr>,
}

/// One A query over `sock`; waits (the socket's read timeout) for the
/// response with its ID.
fn query(sock: &UdpSocket, addr: SocketAddr, id: u16, name: &str) -> std::io::Result<Answer> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    sock.send_to(&q, addr)?;
    let mut buf = [0u8; 1500];
    loop {
        let (n, _) = sock.recv_from(&mut buf)?;
        let msg = &buf[..n];
        if n < 12 || msg[..2] != id.to_be_bytes() {
            continue;
        }
        return Ok(Answer {
            rcode: msg[3] & 0x0f,
            first_a: first_a(msg),
        });
    }
}

/// The first A record in the answer section of `msg`.
fn first_a(msg: &[u8]) -> Option<Ipv4Addr> {
    let be16 = |i: usize| Some(u16::from_be_bytes([*msg.get(i)?, *msg.get(i + 1)?]));
    let (qd, an) = (be16(4)?, be16(6)?);
    let mut pos = 12;
    for _ in 0..qd {
        pos = skip_name(msg, pos)? + 4;
    }
    for _ in 0..an {
        pos = skip_name(msg, pos)?;
        let (rtype, len) = (be16(pos)?, be16(pos + 8)? as usize);
        let data = pos + 10;
        if rtype == 1 && len == 4 {
            let b = msg.get(data..data + 4)?;
            return Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
        }
        pos = data + len;
    }
    None
}

/// The offset after a (possibly compressed) name at `pos`.
fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            return Some(pos + 1);
        }
        if len & 0xc0 == 0xc0 {
            return Some(pos + 2);
        }
        pos += 1 + len;
    }
}

/// The DNS floor: answers every query on 127.0.0.1 with one canned A
/// record, from one thread; stops when dropped.
struct Responder {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Responder {
    fn start() -> Result<Responder> {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = sock.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let mut reply = Vec::with_capacity(512);
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if canned_answer(&buf[..n], &mut reply) {
                    let _ = sock.send_to(&reply, peer);
                }
            }
        });
        Ok(Responder {
            addr,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The query's header and question, as a response with one A record
/// (10.43.0.1, TTL 5) pointing back at the question's name.
fn canned_answer(query: &[u8], reply: &mut Vec<u8>) -> bool {
    let Some(end) = skip_name(query, 12).map(|p| p + 4) else {
        return false;
    };
    if query.len() < end {
        return false;
    }
    reply.clear();
    reply.extend_from_slice(&query[..2]);
    // QR, opcode QUERY, AA, RD copied; RA; NOERROR; 1 question, 1 answer.
    reply.extend_from_slice(&[0x84 | (query[2] & 0x01), 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    reply.extend_from_slice(&query[12..end]);
    reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 43, 0, 1]);
    true
}

/// A small PRNG for picking names (no crate for it).
struct XorShift(u64);

impl XorShift {
    fn seeded() -> XorShift {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        XorShift(t | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

// ---- helpers ------------------------------------------------------------

/// POSTs `body` and returns the created object; anything but a 201 fails.
async fn post(c: &mut Client, path: &str, body: &serde_json::Value) -> Result<Bytes> {
    let (status, resp) = c.post(path, Bytes::from(body.to_string())).await?;
    ensure!(
        status == StatusCode::CREATED,
        "POST {path} {}: {}",
        body["metadata"]["name"],
        describe(status, &resp)
    );
    Ok(resp)
}

fn cluster_ip_of(service: &Bytes) -> Result<Ipv4Addr> {
    let v: serde_json::Value = serde_json::from_slice(service)?;
    let ip = v["spec"]["clusterIP"]
        .as_str()
        .with_context(|| format!("no clusterIP on Service {}", v["metadata"]["name"]))?;
    ip.parse().with_context(|| format!("clusterIP {ip}"))
}

/// Runs blocking work (sockets, child processes) on the runtime's blocking
/// pool, whose threads are born in the namespace too.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("blocking task: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_responder_answers_queries_and_the_fallback_client_counts_them() {
        let r = Responder::start().expect("responder");
        assert_eq!(
            wait_dns(
                r.addr,
                "svc-1.bench.svc.cluster.local",
                Duration::from_secs(2)
            ),
            Some(Ipv4Addr::new(10, 43, 0, 1))
        );
        let names = vec!["svc-2.bench.svc.cluster.local".to_string()];
        let run = udp_load(r.addr, &names, 2, Duration::from_millis(200));
        assert!(run.completed > 0 && run.lost == 0, "{}", run.rcodes);
        assert_eq!(run.rcodes, format!("NOERROR {}", run.completed));
    }

    #[test]
    fn slices_point_every_endpoint_at_the_port() {
        let s = slice_json(7, OPEN_PORT, 3);
        assert_eq!(
            s["metadata"]["labels"]["kubernetes.io/service-name"],
            "svc-7"
        );
        assert_eq!(s["endpoints"].as_array().map(Vec::len), Some(3));
        assert_eq!(s["endpoints"][2]["addresses"][0], "172.31.1.3");
        assert_eq!(s["ports"][0]["port"], OPEN_PORT);
    }
}
