//! Scheduling throughput: `skiff hollow-nodes` registers many nodes, the
//! benchmark creates many pending pods with requests (no scheduler runs, so
//! this is the API's create rate: the floor), then the standalone
//! `skiff scheduler` starts and a watch records when each pod is first seen
//! bound and first seen Running.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::client::Client;
use crate::create::{describe, progress, Tally};
use crate::server::{cpu_of, Helper, Server};
use crate::stats::{mib, Latencies};

const NAMESPACE: &str = "sched";
/// Pods are spread over this many `group` label values.
pub const GROUPS: usize = 50;

pub struct Config {
    pub nodes: usize,
    pub pods: usize,
    pub clients: usize,
    /// From the scheduler's start until every pod must be bound and Running.
    pub timeout: Duration,
    /// Each pod has required podAntiAffinity on its group per hostname.
    pub anti_affinity: bool,
}

pub struct Outcome {
    /// `skiff hollow-nodes` spawn to its "registered" line.
    pub registration: Duration,
    pub hollow_rss_kib: u64,
    pub created: usize,
    pub create_elapsed: Duration,
    pub create_latencies: Latencies,
    pub create_errors: BTreeMap<String, u64>,
    /// Pods seen bound / Running by the watch.
    pub bound: usize,
    pub running: usize,
    /// From the scheduler's spawn, as the watch saw them.
    pub first_bind: Option<Duration>,
    pub last_bind: Option<Duration>,
    pub last_running: Option<Duration>,
    /// Scheduler spawn to all bound (or to the timeout); the CPU figures
    /// cover this window.
    pub window: Duration,
    /// Measured when all were bound (or at the timeout).
    pub scheduler_rss_kib: Option<u64>,
    pub scheduler_cpu: Duration,
    pub server_cpu: Duration,
    pub hollow_cpu: Duration,
    /// This process (the pod watch, mostly) over the same window.
    pub bench_cpu: Duration,
    pub server_rss_kib: u64,
    /// Set when the scheduler process ended on its own.
    pub scheduler_exited: Option<String>,
    pub watch_restarts: u64,
    /// MODIFIED events the pod watch got: the API's writes to the pods.
    pub modified: u64,
    pub placement: Placement,
}

impl Outcome {
    /// Binds per second from the first bind to the last.
    pub fn bind_rate(&self) -> f64 {
        match (self.first_bind, self.last_bind) {
            (Some(f), Some(l)) if self.bound > 1 && l > f => {
                (self.bound - 1) as f64 / (l - f).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    /// Binds per second from the scheduler's spawn to the last bind.
    pub fn rate_from_start(&self) -> f64 {
        match self.last_bind {
            Some(l) if !l.is_zero() => self.bound as f64 / l.as_secs_f64(),
            _ => 0.0,
        }
    }

    pub fn create_rate(&self) -> f64 {
        self.created as f64 / self.create_elapsed.as_secs_f64()
    }
}

/// From a LIST of the pods after the run.
#[derive(Default)]
pub struct Placement {
    pub listed: usize,
    pub unbound: usize,
    pub nodes_used: usize,
    pub max_per_node: usize,
    /// Pods beyond the first of their group on one hostname.
    pub violations: usize,
    /// Unbound pods by their PodScheduled condition's reason and message.
    pub pending: BTreeMap<String, u64>,
}

/// The processes of one run; stopped in reverse order of start.
#[derive(Default)]
pub struct Procs {
    pub server: Option<Server>,
    pub hollow: Option<Helper>,
    pub scheduler: Option<Helper>,
    pub controller_manager: Option<Helper>,
}

impl Procs {
    /// Stops every process, collecting their logs' WARN/ERROR lines.
    pub fn stop(&mut self, label: &str, problems: &mut Vec<String>) {
        for h in [
            self.controller_manager.as_mut(),
            self.scheduler.as_mut(),
            self.hollow.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            h.stop();
            problems.extend(h.log_problems(label));
        }
        if let Some(s) = self.server.as_mut() {
            s.stop();
            problems.extend(s.log_problems(label));
        }
    }
}

/// One run on a fresh data dir `dir`. The child processes are stopped and
/// their logs' WARN/ERROR lines collected whether or not it succeeds.
pub async fn run(
    bin: &Path,
    dir: &Path,
    cfg: &Config,
    label: &str,
    problems: &mut Vec<String>,
) -> Result<Outcome> {
    let mut procs = Procs::default();
    let r = run_in(bin, dir, cfg, &mut procs).await;
    procs.stop(label, problems);
    r
}

async fn run_in(bin: &Path, dir: &Path, cfg: &Config, procs: &mut Procs) -> Result<Outcome> {
    let (server, ready) = Server::start(bin, dir).await?;
    let server = procs.server.insert(server);
    eprintln!(
        "  server ready in {:.0} ms (pid {:?})",
        ready.as_secs_f64() * 1000.0,
        server.pid()
    );
    let kubeconfig = server.kubeconfig();

    let hollow = procs
        .hollow
        .insert(start_hollow_nodes(bin, dir, cfg.nodes, &kubeconfig)?);
    let (registration, hollow_rss_kib) = wait_registered(hollow, cfg.nodes).await?;
    let mut c = server.client().await?;
    create_namespace(&mut c, NAMESPACE).await?;

    let created = create_pods(server, NAMESPACE, cfg.pods, cfg.clients, cfg.anti_affinity).await?;
    let Tally { latencies, errors } = created.0;
    let (create_elapsed, expected) = (created.1, latencies.len());
    eprintln!(
        "  {expected} pods created in {:.1} s ({:.0}/s){}",
        create_elapsed.as_secs_f64(),
        expected as f64 / create_elapsed.as_secs_f64(),
        if errors.is_empty() {
            String::new()
        } else {
            format!("; {} failed", errors.values().sum::<u64>())
        }
    );
    ensure!(expected > 0, "no pod was created: {errors:?}");

    // The watch starts from a resourceVersion before the scheduler exists.
    let seen = Arc::new(Seen::default());
    let watcher = start_pod_watch(server, &mut c, NAMESPACE, &seen).await?;

    let (server_cpu0, hollow_cpu0) = (server.cpu()?, hollow.cpu()?);
    let bench_cpu0 = cpu_of("/proc/self/stat")?;
    let scheduler = procs.scheduler.insert(Helper::spawn(
        "scheduler",
        bin,
        &["scheduler", "--kubeconfig", &kubeconfig.to_string_lossy()],
        dir.join("scheduler.log"),
    )?);
    let start = scheduler.started;
    eprintln!(
        "  skiff scheduler started (pid {:?}); waiting for {expected} binds",
        scheduler.pid()
    );

    let deadline = start + cfg.timeout;
    let mut at_bound: Option<Window> = None;
    let mut scheduler_exited = None;
    let mut last_print = Instant::now();
    let mut last_counts = (0, 0);
    loop {
        let (bound, running) = seen.counts();
        let now = Instant::now();
        if at_bound.is_none() && (bound >= expected || now > deadline) {
            at_bound = Some(Window {
                elapsed: start.elapsed(),
                scheduler_rss_kib: scheduler.rss_kib().ok(),
                scheduler_cpu: scheduler.cpu().unwrap_or_default(),
                server_cpu: server.cpu()?.saturating_sub(server_cpu0),
                hollow_cpu: hollow.cpu()?.saturating_sub(hollow_cpu0),
                bench_cpu: cpu_of("/proc/self/stat")?.saturating_sub(bench_cpu0),
            });
        }
        if running >= expected || now > deadline {
            break;
        }
        if let Some(status) = scheduler.exited() {
            scheduler_exited = Some(format!(
                "{status}; log tail: {}",
                scheduler.log_tail(5).replace('\n', " | ")
            ));
            eprintln!(
                "  ! skiff scheduler exited ({status}); log:\n{}",
                scheduler.log_tail(20)
            );
            break;
        }
        if watcher.is_finished() {
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(2) {
            eprintln!(
                "  after {:.0} s: {bound} bound (+{:.0}/s), {running} Running (+{:.0}/s)",
                start.elapsed().as_secs_f64(),
                (bound - last_counts.0) as f64 / last_print.elapsed().as_secs_f64(),
                (running - last_counts.1) as f64 / last_print.elapsed().as_secs_f64(),
            );
            last_print = Instant::now();
            last_counts = (bound, running);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let w = match at_bound {
        Some(w) => w,
        None => Window {
            elapsed: start.elapsed(),
            scheduler_rss_kib: scheduler.rss_kib().ok(),
            scheduler_cpu: scheduler.cpu().unwrap_or_default(),
            server_cpu: server.cpu()?.saturating_sub(server_cpu0),
            hollow_cpu: hollow.cpu()?.saturating_sub(hollow_cpu0),
            bench_cpu: cpu_of("/proc/self/stat")?.saturating_sub(bench_cpu0),
        },
    };
    let server_rss_kib = server.rss_kib().unwrap_or(0);
    let watch_error = if watcher.is_finished() {
        Some(match watcher.await {
            Ok(Ok(())) => "the pod watch ended".to_owned(),
            Ok(Err(e)) => format!("the pod watch failed: {e:#}"),
            Err(e) => format!("the pod watch task: {e}"),
        })
    } else {
        watcher.abort();
        None
    };
    if let Some(e) = &watch_error {
        eprintln!("  ! {e}");
    }

    let times =
        |m: &Mutex<HashMap<String, Instant>>| -> (usize, Option<Duration>, Option<Duration>) {
            let m = m.lock().unwrap_or_else(|e| e.into_inner());
            let first = m.values().min().map(|t| t.saturating_duration_since(start));
            let last = m.values().max().map(|t| t.saturating_duration_since(start));
            (m.len(), first, last)
        };
    let (bound, first_bind, last_bind) = times(&seen.bound);
    let (running, _, last_running) = times(&seen.running);
    eprintln!(
        "  {bound}/{expected} bound (first after {:.2} s, last after {:.2} s), {running} Running (last after {:.2} s)",
        first_bind.unwrap_or_default().as_secs_f64(),
        last_bind.unwrap_or_default().as_secs_f64(),
        last_running.unwrap_or_default().as_secs_f64()
    );
    if bound < expected {
        eprintln!(
            "  ! not all pods were bound; scheduler log tail:\n{}",
            scheduler.log_tail(20)
        );
    }

    let placement = placement(server).await?;
    Ok(Outcome {
        registration,
        hollow_rss_kib,
        created: expected,
        create_elapsed,
        create_latencies: Latencies::new(latencies),
        create_errors: errors,
        bound,
        running,
        first_bind,
        last_bind,
        last_running,
        window: w.elapsed,
        scheduler_rss_kib: w.scheduler_rss_kib,
        scheduler_cpu: w.scheduler_cpu,
        server_cpu: w.server_cpu,
        hollow_cpu: w.hollow_cpu,
        bench_cpu: w.bench_cpu,
        server_rss_kib,
        scheduler_exited: scheduler_exited.or(watch_error),
        watch_restarts: seen.restarts.load(Ordering::Relaxed),
        modified: seen.modified.load(Ordering::Relaxed),
        placement,
    })
}

/// Spawns `skiff hollow-nodes` with `nodes` roomy nodes over 10 zones.
pub fn start_hollow_nodes(
    bin: &Path,
    dir: &Path,
    nodes: usize,
    kubeconfig: &Path,
) -> Result<Helper> {
    let count = nodes.to_string();
    Helper::spawn(
        "hollow-nodes",
        bin,
        &[
            "hollow-nodes",
            "--count",
            &count,
            "--zones",
            "10",
            "--cpu",
            "32",
            "--memory",
            "256Gi",
            "--pods",
            "110",
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
        ],
        dir.join("hollow-nodes.log"),
    )
}

/// Waits for the hollow nodes' "registered" line; the time since spawn and
/// their RSS then.
pub async fn wait_registered(hollow: &mut Helper, nodes: usize) -> Result<(Duration, u64)> {
    let registration = hollow
        .wait_for_line("hollow nodes registered", Duration::from_secs(180))
        .await?;
    let rss = hollow.rss_kib().unwrap_or(0);
    eprintln!(
        "  {nodes} hollow nodes registered in {:.1} s (pid {:?}, RSS {})",
        registration.as_secs_f64(),
        hollow.pid(),
        mib(rss)
    );
    Ok((registration, rss))
}

/// Creates a namespace; it must not exist.
pub async fn create_namespace(c: &mut Client, name: &str) -> Result<()> {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    let (status, body) = c
        .post("/api/v1/namespaces", Bytes::from(ns.to_string()))
        .await?;
    ensure!(
        status == StatusCode::CREATED,
        "creating namespace {name}: {}",
        describe(status, &body)
    );
    Ok(())
}

/// Figures taken when all pods were bound (or at the timeout).
struct Window {
    elapsed: Duration,
    scheduler_rss_kib: Option<u64>,
    scheduler_cpu: Duration,
    server_cpu: Duration,
    hollow_cpu: Duration,
    bench_cpu: Duration,
}

/// A pod as the benchmark creates it: one container with requests, and in
/// the anti-affinity run a required anti-affinity to its own group on
/// `kubernetes.io/hostname`.
pub fn pod(namespace: &str, index: usize, anti_affinity: bool) -> Bytes {
    let group = format!("g{}", index % GROUPS);
    let mut body = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("pod-{index:05}"),
            "namespace": namespace,
            "labels": {"app": "bench", "group": group},
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "busybox",
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
            }],
        },
    });
    if anti_affinity {
        body["spec"]["affinity"] = json!({
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "labelSelector": {"matchLabels": {"group": group}},
                    "topologyKey": "kubernetes.io/hostname",
                }],
            },
        });
    }
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

/// Creates `count` pods in `namespace` from `clients` connections; the
/// tally of 201s and failures, and the wall time.
pub async fn create_pods(
    server: &Server,
    namespace: &'static str,
    count: usize,
    clients: usize,
    anti_affinity: bool,
) -> Result<(Tally, Duration)> {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let ticker = progress("pods", done.clone());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut client = server.client().await?;
        let (next, done) = (next.clone(), done.clone());
        let (pods, anti) = (count, anti_affinity);
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let path = format!("/api/v1/namespaces/{namespace}/pods");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= pods {
                    break;
                }
                let t = Instant::now();
                let outcome = client.post(&path, pod(namespace, i, anti)).await;
                if !tally.record(outcome, t, &done) {
                    break;
                }
            }
            tally
        }));
    }
    let tally = Tally::join(tasks).await?;
    let elapsed = started.elapsed();
    ticker.abort();
    Ok((tally, elapsed))
}

/// When the watch first saw each pod bound, and Running.
#[derive(Default)]
pub struct Seen {
    bound: Mutex<HashMap<String, Instant>>,
    running: Mutex<HashMap<String, Instant>>,
    restarts: AtomicU64,
    modified: AtomicU64,
}

impl Seen {
    pub fn counts(&self) -> (usize, usize) {
        let n =
            |m: &Mutex<HashMap<String, Instant>>| m.lock().unwrap_or_else(|e| e.into_inner()).len();
        (n(&self.bound), n(&self.running))
    }

    fn record(&self, pod: &PodView, at: Instant) {
        if pod.spec.node_name.as_deref().is_some_and(|n| !n.is_empty()) {
            self.bound
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(pod.metadata.name.clone())
                .or_insert(at);
        }
        if pod.status.phase.as_deref() == Some("Running") {
            self.running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(pod.metadata.name.clone())
                .or_insert(at);
        }
    }
}

#[derive(Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    type_: String,
    object: serde_json::Value,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PodView {
    metadata: MetaView,
    spec: SpecView,
    status: StatusView,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MetaView {
    name: String,
    resource_version: String,
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SpecView {
    node_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StatusView {
    phase: Option<String>,
    conditions: Vec<ConditionView>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConditionView {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    reason: String,
    message: String,
}

#[derive(Deserialize)]
struct PodList {
    metadata: MetaView,
    items: Vec<PodView>,
}

/// Watches the benchmark's pods from `rv`, recording into `seen`, until
/// aborted. Reconnects from the last resourceVersion when the stream ends,
/// and lists again after an ERROR event (e.g. 410 Gone).
pub async fn watch(
    addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    namespace: &'static str,
    rv: String,
    seen: Arc<Seen>,
    ready: tokio::sync::oneshot::Sender<Result<()>>,
) -> Result<()> {
    let mut ready = Some(ready);
    let mut rv = Some(rv);
    let mut attempt = 0u32;
    loop {
        let opened = async {
            let mut client = Client::connect(addr, tls.clone()).await?;
            let from = match rv.clone() {
                Some(rv) => rv,
                None => relist(&mut client, namespace, &seen).await?,
            };
            let path =
                format!("/api/v1/namespaces/{namespace}/pods?watch=true&resourceVersion={from}");
            let resp = client.send(Method::GET, &path, None, None).await?;
            ensure!(
                resp.status() == StatusCode::OK,
                "watch answered {}",
                resp.status()
            );
            anyhow::Ok((client, resp, from))
        }
        .await;
        let (_client, resp, from) = match opened {
            Ok(x) => x,
            Err(e) => {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(e));
                    return Ok(());
                }
                attempt += 1;
                if attempt > 20 {
                    return Err(e.context("reopening the pod watch 20 times"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        attempt = 0;
        rv = Some(from);
        if let Some(tx) = ready.take() {
            let _ = tx.send(Ok(()));
        }
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        'stream: while let Some(Ok(frame)) = body.frame().await {
            let now = Instant::now();
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            let mut start = 0;
            while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
                let line = &buf[start..start + pos];
                start += pos + 1;
                let Ok(ev) = serde_json::from_slice::<WatchEvent>(line) else {
                    continue;
                };
                if ev.type_ == "ERROR" {
                    eprintln!("  ! pod watch ERROR event: {}", ev.object);
                    rv = None;
                    break 'stream;
                }
                let Ok(pod) = serde_json::from_value::<PodView>(ev.object) else {
                    continue;
                };
                if !pod.metadata.resource_version.is_empty() {
                    rv = Some(pod.metadata.resource_version.clone());
                }
                if ev.type_ == "MODIFIED" {
                    seen.modified.fetch_add(1, Ordering::Relaxed);
                }
                if ev.type_ == "ADDED" || ev.type_ == "MODIFIED" {
                    seen.record(&pod, now);
                }
            }
            buf.drain(..start);
        }
        seen.restarts.fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts [`watch`] on the namespace's pods from the current
/// resourceVersion and waits until it is open.
pub async fn start_pod_watch(
    server: &Server,
    c: &mut Client,
    namespace: &'static str,
    seen: &Arc<Seen>,
) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let body = c
        .get_ok(
            &format!("/api/v1/namespaces/{namespace}/pods?limit=1"),
            "LIST pods",
        )
        .await?;
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("no resourceVersion on the pod list")?
        .to_owned();
    let (addr, tls) = server.endpoint()?;
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn(watch(addr, tls, namespace, rv, seen.clone(), ready_tx));
    match tokio::time::timeout(Duration::from_secs(30), ready_rx).await {
        Ok(Ok(Ok(()))) => Ok(watcher),
        Ok(Ok(Err(e))) => Err(e.context("opening the pod watch")),
        Ok(Err(_)) | Err(_) => bail!("the pod watch did not start within 30 s"),
    }
}

/// Records every listed pod as seen now; returns the list's resourceVersion.
async fn relist(client: &mut Client, namespace: &str, seen: &Seen) -> Result<String> {
    let body = client
        .get_ok(&format!("/api/v1/namespaces/{namespace}/pods"), "LIST pods")
        .await?;
    let list: PodList = serde_json::from_slice(&body)?;
    let now = Instant::now();
    for pod in &list.items {
        seen.record(pod, now);
    }
    Ok(list.metadata.resource_version)
}

/// Where the pods ended up, from a LIST of them and of the nodes.
async fn placement(server: &Server) -> Result<Placement> {
    let mut c = server.client().await?;
    let body = c.get_ok("/api/v1/nodes", "LIST nodes").await?;
    #[derive(Deserialize)]
    struct NodeList {
        items: Vec<PodView>,
    }
    let nodes: NodeList = serde_json::from_slice(&body)?;
    let hostname: HashMap<String, String> = nodes
        .items
        .into_iter()
        .map(|n| {
            let h = n
                .metadata
                .labels
                .get("kubernetes.io/hostname")
                .cloned()
                .unwrap_or_else(|| n.metadata.name.clone());
            (n.metadata.name, h)
        })
        .collect();

    let body = c
        .get_ok(&format!("/api/v1/namespaces/{NAMESPACE}/pods"), "LIST pods")
        .await?;
    let pods: PodList = serde_json::from_slice(&body)?;
    let mut p = Placement {
        listed: pods.items.len(),
        ..Placement::default()
    };
    let mut per_node: HashMap<String, usize> = HashMap::new();
    let mut group_hosts: HashSet<(String, String)> = HashSet::new();
    for pod in &pods.items {
        match pod.spec.node_name.as_deref().filter(|n| !n.is_empty()) {
            Some(node) => {
                *per_node.entry(node.to_owned()).or_insert(0) += 1;
                let host = hostname.get(node).cloned().unwrap_or_else(|| node.into());
                let group = pod
                    .metadata
                    .labels
                    .get("group")
                    .cloned()
                    .unwrap_or_default();
                if !group_hosts.insert((group, host)) {
                    p.violations += 1;
                }
            }
            None => {
                p.unbound += 1;
                let why = pod
                    .status
                    .conditions
                    .iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False")
                    .map(|c| {
                        let m: String = c.message.chars().take(120).collect();
                        format!("{}: {m}", c.reason)
                    })
                    .unwrap_or_else(|| "no PodScheduled=False condition".into());
                *p.pending.entry(why).or_insert(0) += 1;
            }
        }
    }
    p.nodes_used = per_node.len();
    p.max_per_node = per_node.values().copied().max().unwrap_or(0);
    Ok(p)
}
