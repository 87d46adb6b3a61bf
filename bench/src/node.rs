//! The node agent with real containers: `skiff server --disable-agent` (API,
//! scheduler, controllers) and `skiff agent` as its own process, both in a
//! network namespace the benchmark creates. Measured in one run:
//!
//! 1. the floor: containers started straight through the agent's own
//!    containerd (`ctr run --rm`, and CRI RunPodSandbox + CreateContainer +
//!    StartContainer as the agent sends them);
//! 2. pod startup latency through skiff (create → Ready seen by a watch),
//!    one pod at a time and a burst at once;
//! 3. many pods on the one node: time to all Ready, and the agent's,
//!    containerd's and the shims' memory then.
//!
//! The namespace and everything in it (containers, containerd, mounts) are
//! removed at the end whether the run succeeded or not.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kubelet::cri::{api, Runtime};
use serde::Deserialize;
use serde_json::json;

use crate::client::Client;
use crate::create::describe;
use crate::schedule::create_namespace;
use crate::server::{cpu_of, rss_of, Helper, Server};
use crate::stats::{mib, ms, Latencies};

/// [`Latencies`], empty by default.
pub struct Samples(pub Latencies);

impl Default for Samples {
    fn default() -> Self {
        Samples(Latencies::new(Vec::new()))
    }
}

impl std::ops::Deref for Samples {
    type Target = Latencies;
    fn deref(&self) -> &Latencies {
        &self.0
    }
}

const NAMESPACE: &str = "node";
const NODE_NAME: &str = "bench-node";
const BUSYBOX: &str = "localhost/busybox:1.35";
/// The test images `make images` builds, imported by the agent at start.
const IMAGES: &[&str] = &["pause", "busybox"];
/// Where the agent roots its pods' cgroups (its default).
const CGROUP_ROOT: &str = "/kubepods";

pub struct Config {
    /// Pods created one at a time, then as many at once.
    pub pods: usize,
    /// Pods on the node for the time-to-all-Ready and memory figures.
    pub many: usize,
    /// Repetitions of each floor measurement.
    pub floor_reps: usize,
    /// Bounds each wait for pods to become Ready or to go away.
    pub timeout: Duration,
    /// `<target>/images` with the `make images` tarballs.
    pub images_dir: PathBuf,
}

#[derive(Default)]
pub struct Outcome {
    /// `ctr run --rm ... /bin/true`, each run's wall time.
    pub ctr_run: Samples,
    /// CRI RunPodSandbox + CreateContainer + StartContainer, and each step.
    pub cri_total: Samples,
    pub cri_sandbox: Samples,
    pub cri_create: Samples,
    pub cri_start: Samples,
    /// StopPodSandbox + RemovePodSandbox of the floor pods, each.
    pub cri_teardown: Samples,
    /// Agent spawn to the Node being Ready.
    pub node_ready: Duration,
    /// One pod at a time: from the POST being sent to the watch seeing Ready.
    pub serial: Samples,
    /// The same, split at the moments the watch saw the pod bound and Running.
    pub serial_bind: Samples,
    pub serial_ack: Samples,
    /// All at once: each pod's own POST to Ready, and the first POST to the
    /// last Ready.
    pub burst: Samples,
    pub burst_all: Duration,
    /// The floors of the two batches: as many CRI pods started at once.
    pub floor_burst: Burst,
    pub floor_many: Burst,
    /// Deleting a batch (grace 0) until the runtime has no sandbox left.
    pub teardown: Vec<(usize, Duration)>,
    /// First create to all Ready of `many` pods.
    pub many_created: usize,
    pub many_all_ready: Option<Duration>,
    pub many_ready: Samples,
    /// VmRSS in KiB.
    pub agent_rss_idle: u64,
    pub agent_rss_pods: u64,
    pub agent_rss_many: u64,
    pub containerd_rss_many: u64,
    pub shims_rss_many: u64,
    /// The shims' proportional set size: their shared pages counted once.
    pub shims_pss_many: u64,
    pub shims: usize,
    pub server_rss_many: u64,
    /// CPU seconds over the `many` run.
    pub agent_cpu_many: Duration,
    pub containerd_cpu_many: Duration,
    pub server_cpu_many: Duration,
    /// Agent log lines at WARN/ERROR, labelled.
    pub problems: Vec<String>,
}

/// Runs the whole phase in a network namespace of its own, on a thread
/// that joins it (with a runtime whose threads all start there, so every
/// socket and child process is inside). Blocking.
pub fn run(bin: &Path, dir: &Path, cfg: Config) -> Result<Outcome> {
    require_images(&cfg.images_dir, IMAGES)?;
    let ns = Netns::create()?;
    let (bin, dir) = (bin.to_path_buf(), dir.to_path_buf());
    in_namespace("node", &ns, bin.clone(), dir.clone(), async move |procs| {
        run_in(&bin, &dir, &cfg, procs).await
    })
}

/// Fails early when `make images` has not made the phase's images.
pub(crate) fn require_images(images_dir: &Path, names: &[&str]) -> Result<()> {
    for name in names {
        let src = images_dir.join(format!("{name}.tar"));
        ensure!(
            src.exists(),
            "{} is missing: run `make images` first",
            src.display()
        );
    }
    Ok(())
}

/// What a phase that runs a real node reports, with room for the problems
/// its processes logged.
pub(crate) trait PhaseOutcome {
    fn problems(&mut self) -> &mut Vec<String>;
}

impl PhaseOutcome for Outcome {
    fn problems(&mut self) -> &mut Vec<String> {
        &mut self.problems
    }
}

/// Runs `body` on a thread that joins `ns`, with a tokio runtime whose
/// threads all start there (so every socket and child process is inside).
/// Afterwards the server and agent that `body` started are stopped, their
/// logged problems go into the outcome (or are printed with an error), and
/// `skiff killall` runs on `dir/agent`, also after a panic. Blocking.
pub(crate) fn in_namespace<O, F>(
    phase: &'static str,
    ns: &Netns,
    bin: PathBuf,
    dir: PathBuf,
    body: F,
) -> Result<O>
where
    O: PhaseOutcome + Send + 'static,
    F: AsyncFnOnce(&mut Procs) -> Result<O> + Send + 'static,
{
    let path = ns.path();
    let thread = std::thread::Builder::new()
        .name(format!("bench-{phase}"))
        .spawn(move || -> Result<O> {
            enter_netns(&path)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            // Dropped before the runtime (also on a panic): no container
            // outlives the run.
            let _killall = Killall {
                bin,
                data_dir: dir.join("agent"),
            };
            rt.block_on(async {
                let mut procs = Procs::default();
                let r = body(&mut procs).await;
                let problems = procs.stop(phase);
                match r {
                    Ok(mut o) => {
                        o.problems().extend(problems);
                        Ok(o)
                    }
                    Err(e) => {
                        for p in problems.iter().take(20) {
                            eprintln!("  {p}");
                        }
                        Err(e)
                    }
                }
            })
        })?;
    thread
        .join()
        .map_err(|_| anyhow!("the {phase} phase's thread panicked"))?
}

/// The server and agent processes of a phase that runs a real node.
#[derive(Default)]
pub(crate) struct Procs {
    pub(crate) server: Option<Server>,
    pub(crate) agent: Option<Helper>,
}

impl Procs {
    /// Stops both; what their logs say went wrong, for the `phase`.
    pub(crate) fn stop(&mut self, phase: &str) -> Vec<String> {
        let mut problems = Vec::new();
        if let Some(a) = self.agent.as_mut() {
            a.stop();
            problems.extend(a.log_problems(phase));
        }
        if let Some(s) = self.server.as_mut() {
            s.stop();
            problems.extend(s.log_problems(phase));
        }
        problems
    }
}

/// A node that came up: its agent's data dir and pid, a client of the
/// server, and how long the node took to be Ready.
pub(crate) struct StartedNode {
    pub(crate) data: PathBuf,
    pub(crate) agent_pid: u32,
    pub(crate) client: Client,
    pub(crate) node_ready: Duration,
}

/// Starts `skiff server` (control plane alone, with `server_args`) and
/// `skiff agent` (with `agent_args`) as two processes in `dir`, the test
/// images `image_names` (tarballs in `images_dir`) in the agent's import dir, and
/// waits for the node to be Ready.
pub(crate) async fn start_node(
    bin: &Path,
    dir: &Path,
    (images_dir, image_names): (&Path, &[&str]),
    procs: &mut Procs,
    server_args: &[&str],
    agent_args: &[&str],
) -> Result<StartedNode> {
    let (server, ready) = Server::start_with(bin, &dir.join("server"), server_args).await?;
    let server = procs.server.insert(server);
    eprintln!("  server ready in {} (pid {:?})", ms(ready), server.pid());
    let data = dir.join("agent");
    let images = data.join("agent/images");
    std::fs::create_dir_all(&images)?;
    for name in image_names {
        std::fs::copy(
            images_dir.join(format!("{name}.tar")),
            images.join(format!("{name}.tar")),
        )?;
    }
    let kubeconfig = server.kubeconfig();
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "agent".as_ref(),
        "--kubeconfig".as_ref(),
        kubeconfig.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
        "--node-name".as_ref(),
        NODE_NAME.as_ref(),
    ];
    args.extend(agent_args.iter().map(std::ffi::OsStr::new));
    let agent = procs
        .agent
        .insert(Helper::spawn("agent", bin, &args, dir.join("agent.log"))?);
    let agent_pid = agent.pid().context("agent not running")?;
    let mut client = server.client().await?;
    let node_ready = wait_node_ready(&mut client, agent, Duration::from_secs(120)).await?;
    eprintln!(
        "  agent (pid {agent_pid}) registered {NODE_NAME}, Ready after {}",
        ms(node_ready)
    );
    Ok(StartedNode {
        data,
        agent_pid,
        client,
        node_ready,
    })
}

async fn run_in(bin: &Path, dir: &Path, cfg: &Config, procs: &mut Procs) -> Result<Outcome> {
    let mut o = Outcome::default();
    // The control plane alone: scheduler and controllers (node IPAM gives the
    // node its podCIDR), no agent.
    let node = start_node(bin, dir, (&cfg.images_dir, IMAGES), procs, &[], &[]).await?;
    o.node_ready = node.node_ready;
    let (data, agent_pid, mut c) = (node.data, node.agent_pid, node.client);
    let server = procs.server.as_ref().context("server not running")?;
    let socket = data.join("agent/containerd/containerd.sock");
    let rt = Runtime::connect(&socket.display().to_string(), Duration::from_secs(10)).await?;
    let containerd_pid = pid_of_containerd(&data.join("agent/containerd"))
        .context("the agent's containerd process")?;

    floor(&socket, &rt, cfg.floor_reps, &mut o).await?;
    // The agent settles (image GC, first node status) before it is measured.
    tokio::time::sleep(Duration::from_secs(2)).await;
    o.agent_rss_idle = rss_of(agent_pid)?;

    create_namespace(&mut c, NAMESPACE).await?;
    let seen = Arc::new(Seen::default());
    let watcher = start_watch(server, &mut c, &seen).await?;

    eprintln!("\n  {} pods one at a time", cfg.pods);
    let mut ready = Vec::new();
    let (mut bind, mut ack) = (Vec::new(), Vec::new());
    for i in 0..cfg.pods {
        let name = format!("one-{i:03}");
        let sent = Instant::now();
        post_pod(&mut c, &name).await?;
        ack.push(sent.elapsed());
        seen.sent("one", &name, sent);
        let at = seen
            .wait_ready(&name, cfg.timeout)
            .await
            .with_context(|| format!("pod {name} not Ready"))?;
        ready.push(at.saturating_duration_since(sent));
        if let Some(b) = seen.bound_at(&name) {
            bind.push(b.saturating_duration_since(sent));
        }
    }
    o.serial = Samples(Latencies::new(ready));
    o.serial_bind = Samples(Latencies::new(bind));
    o.serial_ack = Samples(Latencies::new(ack));
    eprintln!(
        "    create -> Ready p50 {} p99 {} (bound p50 {})",
        ms(o.serial.pct(50.0)),
        ms(o.serial.pct(99.0)),
        ms(o.serial_bind.pct(50.0))
    );
    o.agent_rss_pods = rss_of(agent_pid)?;
    o.teardown
        .push((cfg.pods, delete_all(&mut c, &rt, &seen, cfg.timeout).await?));

    o.floor_burst = floor_burst(&socket, &rt, "burst", cfg.pods).await?;
    eprintln!("\n  {} pods at once", cfg.pods);
    let (lat, all, _) = burst(server, &seen, "burst", cfg.pods, cfg.pods, cfg.timeout).await?;
    o.burst = Samples(lat);
    o.burst_all = all.context("not all burst pods became Ready")?;
    eprintln!(
        "    create -> Ready p50 {} p99 {}; all Ready after {}",
        ms(o.burst.pct(50.0)),
        ms(o.burst.pct(99.0)),
        ms(o.burst_all)
    );
    o.teardown
        .push((cfg.pods, delete_all(&mut c, &rt, &seen, cfg.timeout).await?));

    o.floor_many = floor_burst(&socket, &rt, "many", cfg.many).await?;
    eprintln!("\n  {} pods on the node", cfg.many);
    let cpu0 = (
        cpu_of(&format!("/proc/{agent_pid}/stat"))?,
        cpu_of(&format!("/proc/{containerd_pid}/stat"))?,
        server.cpu()?,
    );
    let (lat, all, created) = burst(server, &seen, "many", cfg.many, 10, cfg.timeout * 4).await?;
    o.many_created = created;
    o.many_all_ready = all;
    o.many_ready = Samples(lat);
    o.agent_cpu_many = cpu_of(&format!("/proc/{agent_pid}/stat"))?.saturating_sub(cpu0.0);
    o.containerd_cpu_many = cpu_of(&format!("/proc/{containerd_pid}/stat"))?.saturating_sub(cpu0.1);
    o.server_cpu_many = server.cpu()?.saturating_sub(cpu0.2);
    // Memory once the pods have been running for a moment (status writes,
    // probes and the PLEG relist at steady state).
    tokio::time::sleep(Duration::from_secs(3)).await;
    o.agent_rss_many = rss_of(agent_pid)?;
    o.containerd_rss_many = rss_of(containerd_pid)?;
    let shims = shim_pids(&data.join("agent/containerd"));
    o.shims = shims.len();
    o.shims_rss_many = shims.iter().filter_map(|p| rss_of(*p).ok()).sum();
    o.shims_pss_many = shims.iter().filter_map(|p| pss_of(*p)).sum();
    o.server_rss_many = server.rss_kib()?;
    eprintln!(
        "    all Ready after {}; agent RSS {}, containerd {}, {} shims {}",
        all.map(ms).unwrap_or_else(|| "-".into()),
        mib(o.agent_rss_many),
        mib(o.containerd_rss_many),
        o.shims,
        mib(o.shims_rss_many)
    );
    o.teardown.push((
        created,
        delete_all(&mut c, &rt, &seen, cfg.timeout * 4).await?,
    ));
    watcher.abort();
    std::fs::write(dir.join("timeline.tsv"), seen.timeline())?;
    Ok(o)
}

/// Both floors, through the agent's containerd.
async fn floor(socket: &Path, rt: &Runtime, reps: usize, o: &mut Outcome) -> Result<()> {
    eprintln!("\n  floor: {reps}x ctr run --rm {BUSYBOX} /bin/true");
    let mut runs = Vec::new();
    for i in 0..reps {
        let t = Instant::now();
        let out = tokio::process::Command::new("ctr")
            .arg("-a")
            .arg(socket)
            .args(["-n", "k8s.io", "run", "--rm", BUSYBOX])
            .arg(format!("bench-raw{i}"))
            .arg("/bin/true")
            .output()
            .await
            .context("running ctr")?;
        let took = t.elapsed();
        ensure!(
            out.status.success(),
            "ctr run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        runs.push(took);
    }
    o.ctr_run = Samples(Latencies::new(runs));
    eprintln!(
        "    p50 {} p99 {}",
        ms(o.ctr_run.pct(50.0)),
        ms(o.ctr_run.pct(99.0))
    );

    eprintln!("  floor: {reps}x CRI RunPodSandbox + CreateContainer + StartContainer");
    let f = CriFloor::new(socket, rt)?;
    let (mut total, mut sb, mut cr, mut st) = (vec![], vec![], vec![], vec![]);
    let mut made = Vec::new();
    for i in 0..reps {
        let p = f.start(&format!("floor-serial-{i}")).await?;
        total.push(p.steps[0] + p.steps[1] + p.steps[2]);
        sb.push(p.steps[0]);
        cr.push(p.steps[1]);
        st.push(p.steps[2]);
        made.push(p);
    }
    o.cri_total = Samples(Latencies::new(total));
    o.cri_sandbox = Samples(Latencies::new(sb));
    o.cri_create = Samples(Latencies::new(cr));
    o.cri_start = Samples(Latencies::new(st));
    eprintln!(
        "    p50 {} p99 {} (sandbox p50 {}, create {}, start {})",
        ms(o.cri_total.pct(50.0)),
        ms(o.cri_total.pct(99.0)),
        ms(o.cri_sandbox.pct(50.0)),
        ms(o.cri_create.pct(50.0)),
        ms(o.cri_start.pct(50.0))
    );
    let mut down = Vec::new();
    for p in made {
        let t = Instant::now();
        f.remove(p).await?;
        down.push(t.elapsed());
    }
    o.cri_teardown = Samples(Latencies::new(down));
    Ok(())
}

async fn floor_burst(socket: &Path, rt: &Runtime, batch: &str, count: usize) -> Result<Burst> {
    eprintln!("\n  floor: {count} CRI sandbox + create + start at once");
    let b = cri_burst(socket, rt, batch, count).await?;
    eprintln!(
        "    p50 {} p99 {}; all started after {}",
        ms(b.each.pct(50.0)),
        ms(b.each.pct(99.0)),
        ms(b.all)
    );
    Ok(b)
}

/// The floor of a batch: `count` pods started straight through CRI, all at
/// once (one task each), then removed. Each pod's time from its
/// RunPodSandbox to its StartContainer returning, and the first request to
/// the last return.
async fn cri_burst(socket: &Path, rt: &Runtime, batch: &str, count: usize) -> Result<Burst> {
    let f = Arc::new(CriFloor::new(socket, rt)?);
    let start = Instant::now();
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let (f, name) = (f.clone(), format!("floor-{batch}-{i}"));
            tokio::spawn(async move { f.start(&name).await })
        })
        .collect();
    let mut made = Vec::new();
    let mut first_error = None;
    for t in tasks {
        match t.await? {
            Ok(p) => made.push(p),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    let all = start.elapsed();
    let each = made.iter().map(|p| p.steps.iter().sum()).collect();
    let removals: Vec<_> = made
        .into_iter()
        .map(|p| {
            let f = f.clone();
            tokio::spawn(async move { f.remove(p).await })
        })
        .collect();
    for r in removals {
        r.await??;
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(Burst {
        each: Samples(Latencies::new(each)),
        all,
    })
}

#[derive(Default)]
pub struct Burst {
    pub each: Samples,
    pub all: Duration,
}

/// Starts and removes busybox pods through CRI as the agent would.
struct CriFloor {
    rt: Runtime,
    logs: PathBuf,
    memory: u64,
}

/// A floor pod: its sandbox, its UID, and how long RunPodSandbox,
/// CreateContainer and StartContainer took.
struct CriPod {
    sandbox: String,
    uid: String,
    steps: [Duration; 3],
}

impl CriFloor {
    fn new(socket: &Path, rt: &Runtime) -> Result<CriFloor> {
        let logs = socket
            .parent()
            .and_then(Path::parent)
            .map(|a| a.join("bench-floor-logs"))
            .context("agent root")?;
        Ok(CriFloor {
            rt: rt.clone(),
            logs,
            memory: node_memory_bytes(),
        })
    }

    async fn start(&self, name: &str) -> Result<CriPod> {
        let pod = floor_pod(name);
        let (sandbox, container) = floor_configs(&pod, &self.logs, self.memory);
        std::fs::create_dir_all(&sandbox.log_directory)?;
        let mut r = self.rt.runtime.clone();
        let t0 = Instant::now();
        let id = r
            .run_pod_sandbox(api::RunPodSandboxRequest {
                config: Some(sandbox.clone()),
                runtime_handler: String::new(),
            })
            .await
            .context("RunPodSandbox")?
            .into_inner()
            .pod_sandbox_id;
        let t1 = Instant::now();
        let cid = r
            .create_container(api::CreateContainerRequest {
                pod_sandbox_id: id.clone(),
                config: Some(container),
                sandbox_config: Some(sandbox),
            })
            .await
            .context("CreateContainer")?
            .into_inner()
            .container_id;
        let t2 = Instant::now();
        r.start_container(api::StartContainerRequest { container_id: cid })
            .await
            .context("StartContainer")?;
        let t3 = Instant::now();
        Ok(CriPod {
            sandbox: id,
            uid: pod.metadata.uid.unwrap_or_default(),
            steps: [t1 - t0, t2 - t1, t3 - t2],
        })
    }

    /// StopPodSandbox (which kills its containers) and RemovePodSandbox.
    async fn remove(&self, p: CriPod) -> Result<()> {
        let mut r = self.rt.runtime.clone();
        r.stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: p.sandbox.clone(),
        })
        .await
        .context("StopPodSandbox")?;
        r.remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: p.sandbox,
        })
        .await
        .context("RemovePodSandbox")?;
        kubelet::qos::remove_pod_cgroups(CGROUP_ROOT, &p.uid);
        let _ = std::fs::remove_dir_all(self.logs.join(format!(
            "bench-floor_{}_{}",
            floor_name(&p.uid),
            p.uid
        )));
        Ok(())
    }
}

fn floor_name(uid: &str) -> &str {
    uid.rsplit_once('.').map(|(_, n)| n).unwrap_or(uid)
}

/// A pod shaped as the benchmark's (busybox `sleep 3600`), for the floor.
fn floor_pod(name: &str) -> Pod {
    let mut pod: Pod = serde_json::from_value(pod_json(name)).unwrap_or_default();
    pod.metadata.namespace = Some("bench-floor".into());
    pod.metadata.uid = Some(format!("floor{}.{name}", std::process::id()));
    pod
}

/// The sandbox and container configs the agent would send for `pod`,
/// without the pod UID label: the agent only manages sandboxes that have
/// it, so it leaves these alone.
fn floor_configs(
    pod: &Pod,
    logs: &Path,
    memory: u64,
) -> (api::PodSandboxConfig, api::ContainerConfig) {
    let settings = kubelet::sandbox::SandboxSettings {
        cluster_dns: &["10.43.0.10".to_string()],
        cluster_domain: "cluster.local",
        cgroup_root: CGROUP_ROOT,
        log_root: logs,
        host_resolv_conf: "",
    };
    let mut sandbox = kubelet::sandbox::config(pod, 0, &settings);
    sandbox.labels.remove(kubelet::sandbox::POD_UID_LABEL);
    let spec = pod.spec.clone().unwrap_or_default();
    let mut container = kubelet::container::config(
        pod,
        &spec.containers[0],
        kubelet::container::Inputs {
            image: BUSYBOX,
            restart_count: 0,
            envs: vec![],
            mounts: vec![],
            node_memory_bytes: memory,
        },
    );
    container.labels.remove(kubelet::sandbox::POD_UID_LABEL);
    (sandbox, container)
}

fn node_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn pod_json(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "bench-node"}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "sleep",
                "image": BUSYBOX,
                "command": ["sleep", "3600"],
            }],
        },
    })
}

async fn post_pod(c: &mut Client, name: &str) -> Result<()> {
    let (status, body) = c
        .post(
            &format!("/api/v1/namespaces/{NAMESPACE}/pods"),
            Bytes::from(pod_json(name).to_string()),
        )
        .await?;
    ensure!(
        status == StatusCode::CREATED,
        "creating pod {name}: {}",
        describe(status, &body)
    );
    Ok(())
}

/// Creates `count` pods named `<batch>-NNN` from `clients` connections,
/// all at once; each pod's latency from its own POST being sent to Ready,
/// the time from the first POST to the last Ready (None if not all became
/// Ready within `timeout`), and how many were created.
async fn burst(
    server: &Server,
    seen: &Arc<Seen>,
    batch: &'static str,
    count: usize,
    clients: usize,
    timeout: Duration,
) -> Result<(Latencies, Option<Duration>, usize)> {
    let mut conns = Vec::new();
    for _ in 0..clients.min(count).max(1) {
        conns.push(server.client().await?);
    }
    let per = count.div_ceil(conns.len());
    let names: Vec<String> = (0..count).map(|i| format!("{batch}-{i:03}")).collect();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (chunk, mut c) in names.chunks(per).map(<[String]>::to_vec).zip(conns) {
        let seen = seen.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for name in chunk {
                let t = Instant::now();
                post_pod(&mut c, &name).await?;
                seen.sent(batch, &name, t);
                sent.push((name, t));
            }
            anyhow::Ok(sent)
        }));
    }
    let mut sent = Vec::new();
    for t in tasks {
        sent.extend(t.await??);
    }
    let deadline = start + timeout;
    let mut lat = Vec::new();
    let mut last = Some(start);
    for (name, t) in &sent {
        let left = deadline.saturating_duration_since(Instant::now());
        match seen.wait_ready(name, left).await {
            Ok(at) => {
                lat.push(at.saturating_duration_since(*t));
                last = last.map(|l| l.max(at));
            }
            Err(_) => last = None,
        }
    }
    if last.is_none() {
        eprintln!(
            "    ! only {} of {} Ready within {} s",
            lat.len(),
            sent.len(),
            timeout.as_secs()
        );
    }
    Ok((
        Latencies::new(lat),
        last.map(|l| l.saturating_duration_since(start)),
        sent.len(),
    ))
}

/// Deletes every pod of the namespace with grace 0, then waits until the
/// API has none and the runtime no sandbox; returns that time.
async fn delete_all(
    c: &mut Client,
    rt: &Runtime,
    seen: &Arc<Seen>,
    timeout: Duration,
) -> Result<Duration> {
    let t = Instant::now();
    let (status, body) = c
        .call(
            Method::DELETE,
            &format!("/api/v1/namespaces/{NAMESPACE}/pods?gracePeriodSeconds=0"),
            None,
            None,
        )
        .await?;
    ensure!(
        status.is_success(),
        "deleting pods: {}",
        describe(status, &body)
    );
    let mut r = rt.runtime.clone();
    loop {
        let pods = seen.live();
        let sandboxes = r
            .list_pod_sandbox(api::ListPodSandboxRequest { filter: None })
            .await?
            .into_inner()
            .items
            .len();
        if pods == 0 && sandboxes == 0 {
            break;
        }
        if t.elapsed() > timeout {
            bail!(
                "after {} s: {pods} pods, {sandboxes} sandboxes left",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = t.elapsed();
    eprintln!("    deleted (grace 0), sandboxes gone after {}", ms(took));
    Ok(took)
}

/// Polls the node until its Ready condition is True.
async fn wait_node_ready(
    c: &mut Client,
    agent: &mut Helper,
    timeout: Duration,
) -> Result<Duration> {
    let path = format!("/api/v1/nodes/{NODE_NAME}");
    loop {
        let (status, body) = c.get(&path).await?;
        if status == StatusCode::OK {
            let node: serde_json::Value = serde_json::from_slice(&body)?;
            let ready = node["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if ready && node["spec"]["podCIDR"].is_string() {
                return Ok(agent.started.elapsed());
            }
        }
        if let Some(status) = agent.exited() {
            bail!(
                "skiff agent exited ({status}); log:\n{}",
                agent.log_tail(30)
            );
        }
        if agent.started.elapsed() > timeout {
            bail!(
                "node {NODE_NAME} not Ready within {} s; agent log:\n{}",
                timeout.as_secs(),
                agent.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Proportional set size of a process, in KiB.
fn pss_of(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The containerd whose command line names the agent's containerd dir
/// (its shims name the socket too; they are `containerd-shim-*`).
fn pid_of_containerd(dir: &Path) -> Option<u32> {
    processes_naming(dir)
        .into_iter()
        .find(|(_, argv0)| argv0.rsplit('/').next() == Some("containerd"))
        .map(|(pid, _)| pid)
}

fn shim_pids(dir: &Path) -> Vec<u32> {
    processes_naming(dir)
        .into_iter()
        .filter(|(_, argv0)| argv0.contains("containerd-shim"))
        .map(|(pid, _)| pid)
        .collect()
}

/// Processes whose command line mentions `dir`, with their argv[0].
fn processes_naming(dir: &Path) -> Vec<(u32, String)> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let text = String::from_utf8_lossy(&cmd);
            let argv0 = text.split('\0').next().unwrap_or_default().to_owned();
            text.contains(&needle).then_some((pid, argv0))
        })
        .collect()
}

/// When the watch first saw each pod bound and Ready, and which pods exist.
#[derive(Default)]
struct Seen {
    inner: Mutex<SeenInner>,
    changed: tokio::sync::Notify,
}

#[derive(Default)]
struct SeenInner {
    /// Per pod: its batch, when its POST was sent and when the 201 came.
    sent: Vec<(&'static str, String, Instant, Instant)>,
    bound: HashMap<String, Instant>,
    ready: HashMap<String, Instant>,
    live: std::collections::HashSet<String>,
}

impl Seen {
    fn lock(&self) -> std::sync::MutexGuard<'_, SeenInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, kind: &str, pod: &PodView, at: Instant) {
        let name = pod.metadata.name.clone();
        let mut s = self.lock();
        if kind == "DELETED" {
            s.live.remove(&name);
        } else {
            s.live.insert(name.clone());
            if pod.spec.node_name.as_deref().is_some_and(|n| !n.is_empty()) {
                s.bound.entry(name.clone()).or_insert(at);
            }
            let ready = pod
                .status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready && pod.metadata.deletion_timestamp.is_none() {
                s.ready.entry(name).or_insert(at);
            }
        }
        drop(s);
        self.changed.notify_waiters();
    }

    fn sent(&self, batch: &'static str, name: &str, sent: Instant) {
        let now = Instant::now();
        self.lock().sent.push((batch, name.to_owned(), sent, now));
    }

    /// One line per pod created: batch, name, the POST's wall-clock time
    /// (Unix seconds), then ms from it to the 201, to bound and to Ready; for
    /// lining up with the agent's and containerd's logs.
    fn timeline(&self) -> String {
        let (base, wall) = (Instant::now(), std::time::SystemTime::now());
        let unix = |t: Instant| {
            wall.checked_sub(base.saturating_duration_since(t))
                .and_then(|w| w.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64())
                .unwrap_or_default()
        };
        let after = |from: Instant, to: Option<&Instant>| {
            to.map(|t| {
                format!(
                    "{:.1}",
                    t.saturating_duration_since(from).as_secs_f64() * 1e3
                )
            })
            .unwrap_or_else(|| "-".into())
        };
        let s = self.lock();
        let mut out = String::from("batch\tpod\tsent_unix\tack_ms\tbound_ms\tready_ms\n");
        for (batch, name, sent, ack) in &s.sent {
            out.push_str(&format!(
                "{batch}\t{name}\t{:.6}\t{}\t{}\t{}\n",
                unix(*sent),
                after(*sent, Some(ack)),
                after(*sent, s.bound.get(name)),
                after(*sent, s.ready.get(name)),
            ));
        }
        out
    }

    fn live(&self) -> usize {
        self.lock().live.len()
    }

    fn bound_at(&self, name: &str) -> Option<Instant> {
        self.lock().bound.get(name).copied()
    }

    /// When the watch saw `name` Ready; waits up to `timeout` for it.
    async fn wait_ready(&self, name: &str, timeout: Duration) -> Result<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if let Some(at) = self.lock().ready.get(name) {
                return Ok(*at);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                bail!("{name} not Ready within {} s", timeout.as_secs());
            }
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
    deletion_timestamp: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SpecView {
    node_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct StatusView {
    conditions: Vec<ConditionView>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ConditionView {
    #[serde(rename = "type")]
    type_: String,
    status: String,
}

/// Opens a watch on the namespace's pods (from a LIST's resourceVersion)
/// and records into `seen` until aborted.
async fn start_watch(
    server: &Server,
    c: &mut Client,
    seen: &Arc<Seen>,
) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let body = c
        .get_ok(&format!("/api/v1/namespaces/{NAMESPACE}/pods"), "LIST pods")
        .await?;
    let list: serde_json::Value = serde_json::from_slice(&body)?;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("no resourceVersion on the pod list")?
        .to_owned();
    let (addr, tls) = server.endpoint()?;
    let mut wc = Client::connect(addr, tls).await?;
    let resp = wc
        .send(
            Method::GET,
            &format!("/api/v1/namespaces/{NAMESPACE}/pods?watch=true&resourceVersion={rv}"),
            None,
            None,
        )
        .await?;
    ensure!(
        resp.status() == StatusCode::OK,
        "watch answered {}",
        resp.status()
    );
    let seen = seen.clone();
    Ok(tokio::spawn(async move {
        let _conn = wc;
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let now = Instant::now();
            let Ok(data) = frame?.into_data() else {
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
                ensure!(ev.type_ != "ERROR", "watch ERROR event: {}", ev.object);
                if let Ok(pod) = serde_json::from_value::<PodView>(ev.object) {
                    seen.record(&ev.type_, &pod, now);
                }
            }
            buf.drain(..start);
        }
        bail!("the pod watch ended")
    }))
}

/// A network namespace with only `lo` up, deleted on drop.
pub(crate) struct Netns {
    pub(crate) name: String,
}

impl Netns {
    pub(crate) fn create() -> Result<Netns> {
        let name = format!("skiff-bench-{}", std::process::id());
        let ok = Command::new("ip").args(["netns", "add", &name]).status()?;
        ensure!(ok.success(), "ip netns add {name} failed (root needed)");
        let ns = Netns { name };
        let ok = Command::new("ip")
            .args(["-n", &ns.name, "link", "set", "lo", "up"])
            .status()?;
        ensure!(ok.success(), "setting lo up in {}", ns.name);
        Ok(ns)
    }

    pub(crate) fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Moves the calling thread into the network namespace at `path`; threads
/// and processes it starts afterwards are born there.
fn enter_netns(path: &Path) -> Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    use std::os::fd::AsRawFd;
    // SAFETY: setns(2) on an fd we own; it affects only this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    ensure!(
        rc == 0,
        "setns({}): {}",
        path.display(),
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// `skiff killall --data-dir D` (run from the namespace's thread): every
/// pod, containerd, its shims and their mounts go before the namespace.
struct Killall {
    bin: PathBuf,
    data_dir: PathBuf,
}

impl Drop for Killall {
    fn drop(&mut self) {
        if !self.data_dir.exists() {
            return;
        }
        let status = Command::new(&self.bin)
            .arg("killall")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .env("SKIFF_LOG", "warn")
            .status();
        if !status.as_ref().is_ok_and(|s| s.success()) {
            eprintln!(
                "  ! skiff killall --data-dir {} failed: {status:?}",
                self.data_dir.display()
            );
        }
    }
}
